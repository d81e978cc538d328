"""CLI: the `curate tag` group: `language`, `pii`, and the moderation and topics commands.

Commands of other features join the group from their own CLI module's `COMMANDS`
(today `curate.cli.moderation`, for `curate tag moderation` and `curate tag topics`).
"""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from curate.cli.ingest import get_lake, json_option, lake_option

limit_option = click.option("--limit", type=int, default=None,
                            help="Tag at most this many conversations this run (the rest wait for the next).")
batch_option = click.option("--batch-size", type=int, default=None,
                            help="Conversations per annotation part (default: the tagger's).")


@click.group("tag")
def tag() -> None:
    """Tag conversations; each tagger writes its own annotation table and skips what it has tagged.

    Example: curate tag pii --lake lake && curate tag language --lake lake
    """


def _run_with_progress(lake, table: str, label: str, run):
    from curate.tag.tagging import count_pending

    _, pending = count_pending(lake, table) if lake.exists() else (0, 0)
    with Progress(f"[progress.description]{label}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=pending)
        return run(lambda n: bar.advance(task, n))


def _print_stats(title: str, stats, as_json: bool, extra_rows=()) -> None:
    data = stats.as_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("total", "tagged", "skipped_already_tagged", "parts_written", "seconds"):
        table.add_row(key, str(data[key]))
    for key, value in sorted(data["extra"].items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(key, str(value))
    for row in extra_rows:
        table.add_row(*row)
    Console().print(table)


@tag.command("language")
@lake_option
@click.option("--languages", default=None,
              help="Comma-separated ISO 639-1 codes to choose from, or 'all' (default: ~45 common languages).")
@click.option("--low-accuracy-min-chars", type=int, default=None,
              help="Texts this long or longer use lingua's fast mode; 0 = always fast (default 120).")
@click.option("--max-chars", type=int, default=None, help="Characters read per message (default 1000).")
@limit_option
@batch_option
@json_option
def language_cmd(lake_root, languages, low_accuracy_min_chars, max_chars, limit, batch_size, as_json):
    """Detect the language of every message and conversation (first user message), offline.

    Writes annotation table `language`: language name and ISO 639-1 code per conversation,
    plus a per-message list. Code blocks, URLs and e-mail addresses are ignored.

    Example: curate tag language --lake lake --languages en,fr,de,es,zh
    """
    from curate.tag.language import LanguageConfig, tag_language

    kwargs = {}
    if languages:
        kwargs["languages"] = tuple(c.strip().lower() for c in languages.split(",") if c.strip())
    for key, value in (("low_accuracy_min_chars", low_accuracy_min_chars), ("max_chars", max_chars),
                       ("batch_size", batch_size)):
        if value is not None:
            kwargs[key] = value
    config = LanguageConfig(**kwargs)  # validated before any data is read
    lake = get_lake(lake_root)
    stats = _run_with_progress(lake, "language", "language",
                               lambda progress: tag_language(lake, config, limit=limit, progress=progress))
    _print_stats(f"tag language run {stats.run_id}", stats, as_json)


@tag.command("pii")
@lake_option
@click.option("--kinds", default=None,
              help="Comma-separated kinds to redact (default all: secret,email,credit_card,ip,phone,address,name).")
@click.option("--phone-regions", default=None,
              help="Comma-separated regions for national phone numbers without +CC (default US,GB,DE,FR,ES,IT,IN,BR,CN,RU).")
@limit_option
@batch_option
@json_option
def pii_cmd(lake_root, kinds, phone_regions, limit, batch_size, as_json):
    """Find and redact PII with consistent placeholders (NAME_1, EMAIL_1, ...) per conversation.

    Writes annotation table `pii`: the redacted conversation, a `redacted` flag, counts per
    kind and span offsets; raw values are never stored. Exports read the redacted text.

    Example: curate tag pii --lake lake --kinds email,phone,secret
    """
    from curate.tag.pii import PIIConfig, tag_pii

    kwargs = {}
    if kinds:
        kwargs["kinds"] = tuple(k.strip().lower() for k in kinds.split(",") if k.strip())
    if phone_regions:
        kwargs["phone_regions"] = tuple(r.strip().upper() for r in phone_regions.split(",") if r.strip())
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    config = PIIConfig(**kwargs)  # validated before any data is read
    lake = get_lake(lake_root)
    stats = _run_with_progress(lake, "pii", "pii",
                               lambda progress: tag_pii(lake, config, limit=limit, progress=progress))
    _print_stats(f"tag pii run {stats.run_id}", stats, as_json)


def _add_extensions() -> None:
    from curate.cli import moderation as cli_moderation

    for command in cli_moderation.COMMANDS:
        tag.add_command(command)


_add_extensions()

COMMANDS = [tag]
