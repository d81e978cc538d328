"""CLI: ingest, sql, stats."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from curate.core import settings

lake_option = click.option(
    "--lake", "lake_root", type=click.Path(file_okay=False), default=None,
    help="Lake root folder (default: $CURATE_LAKE or ./lake).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")


def _set_embed_threads(ctx, param, value):
    if value is not None:  # this process; Ray workers read CURATE_EMBED_THREADS from their environment
        from curate.models.embed import set_default_threads

        set_default_threads(value)
    return value


embed_threads_option = click.option(
    "--embed-threads", type=click.IntRange(min=0), default=None, expose_value=False, callback=_set_embed_threads,
    help="Torch threads for the embedding model on CPU (default: $CURATE_EMBED_THREADS, else 1; 0: torch's own).")


def _set_embed_runtime(ctx, param, value):
    if value is not None:  # this process; Ray workers read CURATE_EMBED_RUNTIME from their environment
        from curate.models.embed import set_default_runtime

        set_default_runtime(value)
    return value


embed_runtime_option = click.option(
    "--embed-runtime", type=click.Choice(["onnx", "torch"]), default=None, expose_value=False,
    callback=_set_embed_runtime,
    help="Runtime of the embedding model on CPU (default: $CURATE_EMBED_RUNTIME, else onnx: the model exported "
         "once to ONNX, same vectors to ~3e-7; torch: sentence-transformers).")


def get_lake(lake_root: str | None):
    from curate.core.lake import Lake

    return Lake(lake_root or settings.lake_root())


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@lake_option
@click.option("--format", "fmt", type=click.Choice(["openai", "sharegpt", "lmsys"]), default=None,
              help="Force the log format (default: detected per file).")
@click.option("--on-change", type=click.Choice(["replace", "skip", "error"]), default="replace", show_default=True,
              help="What to do with a file whose content changed since it was ingested.")
@json_option
def ingest(paths, lake_root, fmt, on_change, as_json):
    """Ingest log files or folders into the lake (incremental and idempotent).

    Example: curate ingest logs/ --lake lake
    """
    from curate.ingest.ingest import IngestConfig, discover
    from curate.ingest.ingest import ingest as run_ingest

    lake = get_lake(lake_root)
    config = IngestConfig(format=fmt, on_change=on_change)
    total = sum(p.stat().st_size for p in discover(paths))
    err = Console(stderr=True)
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("ingesting", total=total)
        stats = run_ingest(lake, paths, config, progress=lambda n: bar.advance(task, n))
    if as_json:
        click.echo(json.dumps({**stats.as_dict(), "per_file": [f.__dict__ for f in stats.files]}, indent=2))
        return
    table = Table(title=f"ingest run {stats.run_id}")
    for col in ("file", "action", "format", "records in", "kept", "quarantined", "reasons"):
        table.add_column(col, justify="right" if col in ("records in", "kept", "quarantined") else "left")
    for f in stats.files:
        table.add_row(f.path, f.action, f.source_format, str(f.records_in), str(f.rows_kept),
                      str(f.rows_quarantined), ", ".join(f"{k}={v}" for k, v in sorted(f.reasons.items())))
    table.add_row("total", "", "", str(stats.total), str(stats.kept), str(stats.quarantined), "", style="bold")
    Console().print(table)


@click.command()
@click.argument("query")
@lake_option
@click.option("--param", "params", multiple=True, help="Positional query parameter for each ? (repeatable).")
@click.option("--format", "out", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--limit", type=int, default=50, show_default=True, help="Rows shown in table format.")
def sql(query, lake_root, params, out, limit):
    """Query the lake with DuckDB SQL over its views.

    Views: conversations, messages, quarantine, source_files, runs and one per annotation table.

    Example: curate sql "SELECT model, count(*) FROM conversations GROUP BY 1"
    """
    lake = get_lake(lake_root)
    con = lake.connect()
    # con.sql gives a relation (Arrow without the copy DuckDB warns about on a DB-API result);
    # None for a statement that returns no rows
    rel = con.sql(query, params=list(params)) if params else con.sql(query)
    if rel is None:
        return
    tbl = rel.to_arrow_table()
    if out == "json":
        for row in tbl.to_pylist():
            click.echo(json.dumps(row, default=str, ensure_ascii=False))
    elif out == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(tbl, sys.stdout.buffer)
    else:
        table = Table()
        for name in tbl.column_names:
            table.add_column(name)
        for row in tbl.slice(0, limit).to_pylist():
            table.add_row(*[_short(v) for v in row.values()])
        Console().print(table)
        if tbl.num_rows > limit:
            click.echo(f"... {tbl.num_rows - limit} more rows (use --limit or --format json)", err=True)


def _short(value, width: int = 80) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


@click.command()
@lake_option
@json_option
def stats(lake_root, as_json):
    """Print lake counts: records in = rows kept + rows quarantined.

    Example: curate stats --lake lake
    """
    lake = get_lake(lake_root)
    s = lake.stats()
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    table = Table(title=f"lake {lake.root}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k in ("source_files", "duplicate_files_skipped", "records_in", "rows_kept", "rows_quarantined", "balanced"):
        table.add_row(k, str(s.get(k)))
    for k, v in s.get("formats", {}).items():
        table.add_row(f"kept format={k}", str(v))
    for k, v in s.get("quarantine_reasons", {}).items():
        table.add_row(f"quarantined reason={k}", str(v))
    for name in lake.annotation_tables():
        n = lake.connect().execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        table.add_row(f"annotation {name}", str(n))
    Console().print(table)


COMMANDS = [ingest, sql, stats]
