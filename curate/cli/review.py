"""CLI: curate review (the review page) and curate review apply (its decisions)."""

from __future__ import annotations

import json

import click

from curate.cli.ingest import get_lake, json_option, lake_option


@click.group(invoke_without_command=True)
@lake_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Folder for index.html.")
@click.option("--decontam-report", "reports", multiple=True, type=click.Path(file_okay=False),
              help="decontam report folder(s) whose runs/ add n-gram and judge evidence (the pipeline's OUT/decontam).")
@click.option("--max-pairs", type=int, default=2000, show_default=True, help="Flagged pairs embedded in the page.")
@click.option("--max-clusters", type=int, default=1000, show_default=True, help="Duplicate clusters embedded.")
@click.pass_context
def review(ctx, lake_root, out_dir, reports, max_pairs, max_clusters):
    """Write a self-contained review page (DIR/index.html) of what the pipeline flagged.

    Open it from disk; j/k move, a/r accept/reject, u undo, then "Export decisions"
    and record them with `curate review apply`.

    \b
    Examples:
      curate review --lake lake --out out/review --decontam-report out/decontam
      curate review apply ~/Downloads/decisions.jsonl --lake lake
    """
    if ctx.invoked_subcommand is not None:
        return
    if not out_dir:
        raise click.UsageError("pass --out DIR (the page is written to DIR/index.html)")
    from curate.review.page import ReviewConfig, write_review_page

    config = ReviewConfig(max_pairs=max_pairs, max_clusters=max_clusters)
    path = write_review_page(get_lake(lake_root), out_dir, config, decontam_reports=list(reports))
    click.echo(str(path))


@review.command("apply")
@click.argument("decisions", type=click.Path(dir_okay=False, exists=True))
@lake_option
@click.option("--who", help="Who applies the decisions (default: the login name).")
@json_option
def apply_cmd(decisions, lake_root, who, as_json):
    """Record a decisions file exported by the review page in the lake.

    The export and `decontam check --write-clean` then honour it: a rejected flag keeps
    its row, an accepted duplicate or contamination drops it.

    Example: curate review apply decisions.jsonl --lake lake --who alice
    """
    from curate.export.review_decisions import apply_decisions

    stats = apply_decisions(get_lake(lake_root), decisions, who=who)
    if as_json:
        click.echo(json.dumps(stats))
    else:
        parts = ", ".join(f"{k} {v}" for k, v in stats.items() if k not in ("run_id", "decisions"))
        click.echo(f"recorded {stats['decisions']} decisions ({parts or 'none'}) in run {stats['run_id']}")


COMMANDS = [review]
