"""CLI: `curate tag moderation` and `curate tag topics` (added to the `tag` group by curate/cli/tag.py)."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from curate.cli.ingest import get_lake, json_option, lake_option

llm_url_option = click.option(
    "--llm-url", default=None,
    help="OpenAI-compatible base URL ending in /v1 (default: $CURATE_LLM_BASE_URL; comma-separated for replicas).",
)
llm_model_option = click.option("--llm-model", default=None, help="Model name at the endpoint (default: $CURATE_LLM_MODEL).")
concurrency_option = click.option("--concurrency", type=int, default=8, show_default=True,
                                  help="LLM requests in flight at once.")
structured_option = click.option(
    "--structured", type=click.Choice(["response_format", "vllm", "none"]), default="response_format",
    show_default=True, help="How JSON output is requested (answers are validated either way).",
)


def _client(lake, llm_url: str | None, llm_model: str | None, concurrency: int, required: bool):
    """A ChatClient from options or CURATE_LLM_* (None when nothing is configured and not required)."""
    from curate.core import settings
    from curate.core.errors import ConfigError
    from curate.models.llm import chat_client, lake_cache_dir

    url = llm_url or settings.llm_base_url()
    model = llm_model or settings.llm_model()
    if not url or not model:
        if required:
            raise ConfigError(
                "--llm needs a model: pass --llm-url and --llm-model, set CURATE_LLM_BASE_URL and CURATE_LLM_MODEL,"
                " or start one with `curate serve-model`"
            )
        return None
    return chat_client(url, model, cache_dir=lake_cache_dir(lake.root), concurrency=concurrency)


def _progress(label: str):
    return Progress(f"[progress.description]{label}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True)


def _print_stats(title: str, stats: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(stats, indent=2, default=str))
        return
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in stats.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                table.add_row(f"{k}.{k2}", str(v2))
        else:
            table.add_row(k, str(v))
    Console().print(table)


@click.command("moderation")
@lake_option
@click.option("--method", type=click.Choice(["rules", "embedding", "hybrid"]), default="rules", show_default=True,
              help="Tier 1 classifier: keyword rules + profanity model, embedding classifier, or both.")
@click.option("--threshold", type=float, default=0.5, show_default=True, help="Tier 1 flag threshold per category.")
@click.option("--band-low", type=float, default=0.25, show_default=True,
              help="Tier 1 top scores in [band-low, threshold) also go to tier 2.")
@click.option("--llm/--no-llm", "use_llm", default=None,
              help="Run tier 2 (default: when an LLM endpoint is configured).")
@llm_url_option
@llm_model_option
@concurrency_option
@structured_option
@click.option("--limit", type=int, default=None, help="Tag at most this many conversations with tier 2 this run.")
@json_option
def moderation_cmd(lake_root, method, threshold, band_low, use_llm, llm_url, llm_model, concurrency, structured,
                   limit, as_json):
    """Moderate every message: tier 1 locally, tier 2 with a served LLM on what tier 1 flags or doubts.

    Writes annotation tables `moderation` (tier 1, LMSYS `openai_moderation` shape) and
    `moderation_llm` (tier 2: category, explanation or error per reviewed message).
    Only conversations not yet tagged are processed.

    Example: curate tag moderation --lake lake --llm-url http://127.0.0.1:8000/v1 --llm-model smollm2
    """
    from moderation.llm_tier import LLMTierConfig
    from moderation.local import LocalConfig
    from moderation.tag import tag_moderation_llm, tag_moderation_local

    local_cfg = LocalConfig(method=method, threshold=threshold, band_low=band_low)
    llm_cfg = LLMTierConfig(structured=structured)
    lake = get_lake(lake_root)
    client = _client(lake, llm_url, llm_model, concurrency, required=bool(use_llm)) if use_llm is not False else None
    out = {}
    with _progress("tier 1") as bar:
        task = bar.add_task("tier 1", total=None)
        out["tier1"] = tag_moderation_local(lake, local_cfg, progress=lambda n: bar.advance(task, n)).as_dict()
    if client is not None:
        try:
            with _progress("tier 2") as bar:
                task = bar.add_task("tier 2", total=None)
                out["tier2"] = tag_moderation_llm(lake, client, llm_cfg, local_config=local_cfg, limit=limit,
                                                  progress=lambda n: bar.advance(task, n)).as_dict()
        finally:
            if client.cache is not None:
                client.cache.close()
    else:
        click.echo("tier 2 not run: no LLM configured (pass --llm-url/--llm-model or set CURATE_LLM_*)", err=True)
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    for tier, stats in out.items():
        _print_stats(f"moderation {tier} run {stats['run_id']}", stats, False)


@click.command("topics")
@lake_option
@click.option("-k", "--k", "k", type=int, default=20, show_default=True, help="Clusters (clamped to distinct prompts).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--refit", is_flag=True, help="Cluster every conversation again instead of assigning new ones.")
@click.option("--llm/--no-llm", "use_llm", default=None,
              help="Label clusters with the LLM (default: when an endpoint is configured; else keywords).")
@llm_url_option
@llm_model_option
@concurrency_option
@structured_option
@json_option
def topics_cmd(lake_root, k, seed, refit, use_llm, llm_url, llm_model, concurrency, structured, as_json):
    """Cluster first user prompts (faiss k-means over stored embeddings) and label each topic.

    Writes annotation tables `topics` (conversation_id, topic_id, topic_label, distance)
    and `topic_labels`. Labels come from the LLM when one is configured, else from
    c-TF-IDF keywords.

    Example: curate tag topics --lake lake -k 20 --no-llm
    """
    from curate.tag.topics import TopicsConfig, tag_topics

    cfg = TopicsConfig(k=k, seed=seed, refit=refit, structured=structured)
    lake = get_lake(lake_root)
    client = _client(lake, llm_url, llm_model, concurrency, required=bool(use_llm)) if use_llm is not False else None
    try:
        stats = tag_topics(lake, cfg, client=client).as_dict()
    finally:
        if client is not None and client.cache is not None:
            client.cache.close()
    if as_json:
        click.echo(json.dumps(stats, indent=2, default=str))
        return
    labels = stats.pop("labels", {})
    _print_stats(f"topics run {stats['run_id']}", stats, False)
    if labels:
        table = Table(title="topic labels")
        table.add_column("topic", justify="right")
        table.add_column("label")
        for t, label in labels.items():
            table.add_row(str(t), label)
        Console().print(table)


COMMANDS = [moderation_cmd, topics_cmd]
