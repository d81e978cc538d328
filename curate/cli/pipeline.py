"""CLI: `curate export`, `curate card`, `curate pipeline` and `curate serve`.

`export` and `card` call the library directly (no orchestrator); `pipeline` runs the
Prefect flow once; `serve` serves it as a deployment that picks up new log files from a
landing folder on a schedule.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from curate.core import settings
from curate.cli.ingest import embed_runtime_option, embed_threads_option, get_lake, json_option, lake_option
from curate.stages import TAGGERS

name_option = click.option("--name", default="chatcurate-demo", show_default=True, help="Dataset name.")
drop_options = [
    click.option("--keep-duplicates", is_flag=True, help="Export duplicates too (default: dropped)."),
    click.option("--keep-contaminated", is_flag=True, help="Export benchmark-contaminated rows too (default: dropped)."),
    click.option("--drop-flagged", is_flag=True, help="Leave out conversations moderation flagged."),
]


def _drop_options(f):
    for opt in reversed(drop_options):
        f = opt(f)
    return f


def _stats_table(title: str, stats: dict) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in stats.items():
        if not isinstance(v, (dict, list)):
            table.add_row(str(k), str(v))
    return table


@click.command("export")
@lake_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="out/export", show_default=True,
              help="Folder that receives the dataset folder NAME/ and NAME.exclusions.parquet.")
@name_option
@_drop_options
@click.option("--license", "license_", default="other", show_default=True, help="Licence id for the card.")
@click.option("--shard-rows", type=int, default=100_000, show_default=True, help="Rows per Parquet shard.")
@click.option("--repo-id", default=None, help="Also push to this Hub dataset repo (needs HF_TOKEN in the environment).")
@click.option("--public", is_flag=True, help="Create the Hub repo public (default private).")
@click.option("--drop-variants", is_flag=True,
              help="Also drop variants (same template, other values: dedup's duplicate_kind 'variant'); kept by default.")
@json_option
def export(lake_root, out_dir, name, keep_duplicates, keep_contaminated, drop_flagged, license_, shard_rows, repo_id,
           public, drop_variants, as_json):
    """Export the lake as a Hugging Face dataset (redacted text only) with its data card.

    Refuses while any conversation to export has no PII annotation (run `curate tag pii`).

    Example: curate export --lake lake --out out/export --drop-flagged
    """
    from curate.export.data_card import card_writer
    from curate.export.export import ExportConfig, export_dataset, push_to_hub

    config = ExportConfig(name=name, drop_duplicates=not keep_duplicates, drop_contaminated=not keep_contaminated,
                          drop_flagged=drop_flagged, license=license_, shard_rows=shard_rows, drop_variants=drop_variants)
    lake = get_lake(lake_root)
    result = export_dataset(lake, Path(out_dir) / name, config, card=card_writer(lake))
    stats = {**result.stats, "path": str(result.path), "exclusions": str(result.exclusions_path)}
    if repo_id:
        token = settings.hf_token()
        if not token:
            raise click.UsageError("--repo-id needs HF_TOKEN in the environment")
        stats["pushed_to"] = push_to_hub(result.path, repo_id, token, private=not public)
    if as_json:
        click.echo(json.dumps(stats, indent=2))
    else:
        Console().print(_stats_table(f"export {name}", stats))


@click.command("card")
@lake_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="data_cards/demo", show_default=True,
              help="Folder for README.md, card_stats.json and images/.")
@name_option
@_drop_options
@click.option("--check", is_flag=True, help="Do not write: exit 1 when the card in --out differs from the lake's.")
def card(lake_root, out_dir, name, keep_duplicates, keep_contaminated, drop_flagged, check):
    """Generate the data card of the lake (statistics, plots, what was removed and why).

    The card is the export's README; it holds no timestamps or paths, so a lake gives
    the same card every time. Refresh the committed demo card after `make run`:

    Example: curate card --lake out/lake --out data_cards/demo
    """
    from curate.export.data_card import card_writer, copy_card, diff_cards
    from curate.export.export import ExportConfig, export_dataset

    config = ExportConfig(name=name, drop_duplicates=not keep_duplicates, drop_contaminated=not keep_contaminated,
                          drop_flagged=drop_flagged)
    lake = get_lake(lake_root)
    with tempfile.TemporaryDirectory() as tmp:
        result = export_dataset(lake, Path(tmp) / name, config, card=card_writer(lake))
        if check:
            problems = diff_cards(result.path, out_dir)
            for p in problems:
                click.echo(f"stale: {p}", err=True)
            if problems:
                click.echo(f"the card in {out_dir} is stale: regenerate it with `curate card --out {out_dir}`", err=True)
                sys.exit(1)
            click.echo(f"{out_dir}: up to date")
            return
        path = copy_card(result.path, out_dir)
    click.echo(str(path))


def _pipeline_kwargs(lake_root, out, inputs, benchmark, llm, llm_url, llm_model, name, keep_duplicates,
                     keep_contaminated, drop_flagged, repo_id):
    from curate.export.export import ExportConfig
    from flows.options import LLMOptions

    return dict(
        lake=Path(lake_root or settings.lake_root()), out=Path(out), inputs=[Path(p) for p in inputs],
        benchmarks=list(benchmark) or ["humaneval"],
        llm=LLMOptions(mode=llm, base_url=llm_url, model=llm_model),
        export=ExportConfig(name=name, drop_duplicates=not keep_duplicates, drop_contaminated=not keep_contaminated,
                            drop_flagged=drop_flagged, repo_id=repo_id),
    )


def _prefect_logs_its_own_way() -> None:
    """Let Prefect format its run lines ("Task run 'dedup-1a2' - Finished in state ...").

    The `curate` group's basicConfig gives the root logger a handler; Prefect, imported after
    it, would then print its lines bare, without run names or times. Before prefect is
    imported, that handler is taken off again, so Prefect sets up its console as it does
    for any flow script.
    """
    if "prefect" not in sys.modules:
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)


def _parameters(kwargs: dict) -> dict:
    """Flow parameters as JSON (what a Prefect deployment stores)."""
    import dataclasses

    def plain(o):
        if hasattr(o, "model_dump"):
            return o.model_dump()
        if dataclasses.is_dataclass(o):
            return dataclasses.asdict(o)
        return str(o)

    return json.loads(json.dumps(kwargs, default=plain))


def _flow_options(f):
    opts = [
        lake_option,
        click.option("--out", default="out", show_default=True, type=click.Path(file_okay=False),
                     help="Where the export, the data card and the decontam report go."),
        click.option("--benchmark", multiple=True, help="Benchmark to check against (repeatable; default humaneval)."),
        click.option("--llm", type=click.Choice(["off", "serve", "endpoint"]), default="off", show_default=True,
                     help="LLM tiers: off, serve (start a local model server for the run), endpoint."),
        click.option("--llm-url", default=None, help="OpenAI-compatible base URL (with --llm endpoint)."),
        click.option("--llm-model", default=None,
                     help="Model name at --llm-url; with --llm serve, the model to serve (a `curate fetch-model` "
                          "name or a path; default smollm2, `make run` serves qwen-coder-1.5b)."),
        name_option,
        *drop_options,
        click.option("--repo-id", default=None, help="Push the export to this Hub dataset repo (needs HF_TOKEN)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@click.command("pipeline")
@click.argument("inputs", nargs=-1, type=click.Path(exists=True))
@_flow_options
@click.option("--card-dir", type=click.Path(file_okay=False), default=None,
              help="Where the data card copy goes (default OUT/data_card).")
@click.option("--skip", multiple=True, type=click.Choice(TAGGERS), help="Leave out a tagger (repeatable).")
@click.option("--no-semantic-dedup", is_flag=True, help="Exact and near dedup only.")
@click.option("--no-judge", is_flag=True, help="With --llm, keep the decontam judge off (the LLM serves the taggers only).")
@click.option("--ray-address", default=None,
              help="Run the stages' tasks on Ray: auto | local | host:6379 | ray://head:10001 "
                   "(default: CURATE_RAY_ADDRESS, else no Ray).")
@embed_threads_option
@embed_runtime_option
@click.option("--strict", is_flag=True, help="Exit 1 when an enrichment stage failed.")
@json_option
@click.option("-q", "--quiet", is_flag=True, help="No stage lines or progress bars on stderr.")
def pipeline_cmd(inputs, lake_root, out, benchmark, llm, llm_url, llm_model, name, keep_duplicates,
                 keep_contaminated, drop_flagged, repo_id, card_dir, skip, no_semantic_dedup, no_judge, ray_address,
                 strict, as_json, quiet):
    """Run the whole pipeline once (ingest, dedup, tag, decontam, review, export) as a Prefect flow.

    Without INPUTS it runs on the bundled demo logs. A rerun skips finished work; a run
    killed half-way resumes where it stopped. What `make run` does:

    Example: curate pipeline --lake out/lake --out out --llm serve --llm-model qwen-coder-1.5b --no-judge
    """
    _prefect_logs_its_own_way()
    from curate.models.serve_model import stop_servers_on_signals

    stop_servers_on_signals()  # SIGTERM/SIGHUP unwind the run: its model server and Prefect's API server stop
    import flows  # noqa: F401 - sets the offline Prefect defaults before prefect is imported
    from curate.core.execution import ray_address as ray_address_of
    from flows import progress
    from flows.pipeline import DEMO_LOGS, pipeline
    from flows.runners import task_runner_for

    from curate.cli.progress import rich_bars

    progress.enable(not quiet, bars=rich_bars)
    kwargs = _pipeline_kwargs(lake_root, out, inputs or [str(DEMO_LOGS)], benchmark, llm, llm_url, llm_model, name,
                              keep_duplicates, keep_contaminated, drop_flagged, repo_id)
    address = ray_address_of(ray_address)
    flow_ = pipeline if address is None else pipeline.with_options(task_runner=task_runner_for(address))
    result = flow_(**kwargs, card_dir=Path(card_dir) if card_dir else None,
                   taggers=[t for t in TAGGERS if t not in skip], semantic_dedup=not no_semantic_dedup,
                   decontam_judge=not no_judge, ray_address=address)
    failed = bool(strict and result.get("failed"))
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        sys.exit(1 if failed else 0)
    table = Table(title="pipeline")
    table.add_column("stage")
    table.add_column("result")
    for stage in ("ingest", "dedup", "decontam", "export"):
        s = result.get(stage, {})
        table.add_row(stage, ", ".join(f"{k}={v}" for k, v in s.items() if isinstance(v, (int, float, bool, str))
                                       and k in ("total", "kept", "new", "skipped", "skipped_missing_stage", "refused")
                                       or k.startswith("dropped_")))
    for tagger, s in result.get("tag", {}).items():
        table.add_row(f"tag {tagger}", ", ".join(f"{k}={v}" for k, v in s.items() if k in ("total", "tagged", "skipped", "failed")))
    Console().print(table)
    click.echo(format_paths(result))
    sys.exit(1 if failed else 0)


def format_paths(result: dict) -> str:
    """Where the run's outputs are, and which stages failed (stdout, after the run)."""
    p, exp = result["paths"], result["export"]
    lines = ["", "pipeline finished"]
    if p.get("export"):
        lines.append(f"  export:          {p['export']}  ({exp.get('kept')} of {exp.get('total')} conversations)")
    else:
        lines.append(f"  export:          not written ({exp.get('refused') or exp.get('skipped_missing_stage')})")
    lines.append(f"  data card:       {p.get('data_card') or 'not written'}")
    lines.append(f"  decontam report: {p.get('decontam_report') or 'not written (' + str(result['decontam'].get('skipped_missing_stage')) + ' missing)'}")
    lines.append(f"  review page:     {p.get('review_page') or 'not written'}")
    lines.append(f"  lake:            {p['lake']}")
    for stage in result.get("failed", []):
        lines.append(f"  WARNING: stage {stage} failed (see the log); its columns are empty and the next run retries it")
    return "\n".join(lines)


def _start_local_server(home: Path, port: int) -> tuple[subprocess.Popen, str]:
    """`prefect server start` with its scheduler (the ephemeral API schedules nothing)."""
    env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false")
    env.pop("PREFECT_API_URL", None)
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    proc = subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api"
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"prefect server exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.kill()
    raise click.ClickException("prefect server did not answer within 300 s")


@click.command("serve")
@click.option("--landing", type=click.Path(file_okay=False), required=True,
              help="Folder where new log files arrive; each scheduled run ingests what is new there.")
@_flow_options
@click.option("--cron", default=None, help="Cron schedule, e.g. '*/15 * * * *' (default: --interval).")
@click.option("--interval", type=int, default=900, show_default=True, help="Seconds between runs when no --cron.")
@click.option("--deployment", default="landing", show_default=True, help="Deployment name.")
@click.option("--port", type=int, default=4200, show_default=True,
              help="Port of the local Prefect server started when PREFECT_API_URL is not set.")
def serve(landing, lake_root, out, benchmark, llm, llm_url, llm_model, name, keep_duplicates, keep_contaminated,
          drop_flagged, repo_id, cron, interval, deployment, port):
    """Serve the pipeline as a scheduled Prefect deployment over a landing folder.

    Each run ingests only the files that arrived since the last one (the lake's catalog
    and the completion markers skip the rest) and refreshes the export. Without
    PREFECT_API_URL a local Prefect server (with its scheduler) is started for the
    duration. Stop with Ctrl-C.

    Example: curate serve --landing landing/ --lake lake --out out --cron '*/15 * * * *'
    """
    _prefect_logs_its_own_way()
    import flows  # noqa: F401

    Path(landing).mkdir(parents=True, exist_ok=True)
    server = None
    if not os.environ.get("PREFECT_API_URL"):
        server, url = _start_local_server(Path(os.environ.get("PREFECT_HOME", ".prefect")), port)
        os.environ["PREFECT_API_URL"] = url
        click.echo(f"started a local Prefect server at {url}", err=True)
    try:
        from flows.pipeline import pipeline

        kwargs = _pipeline_kwargs(lake_root, out, [landing], benchmark, llm, llm_url, llm_model, name,
                                  keep_duplicates, keep_contaminated, drop_flagged, repo_id)
        params = _parameters(kwargs)
        schedule = {"cron": cron} if cron else {"interval": interval}
        # limit=1: a run that is still going when the next one is due makes it wait,
        # so two runs never write the same lake at once
        pipeline.serve(name=deployment, parameters=params, limit=1, **schedule)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


COMMANDS = [export, card, pipeline_cmd, serve]
