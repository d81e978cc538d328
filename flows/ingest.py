"""Flow: ingest log files into the lake (`curate.ingest.ingest`).

Incremental twice over: the marker skips the whole step when no input file changed
since the last finished run, and `curate.ingest.ingest` itself skips every file whose bytes
it already holds, so a scheduled run reads only what arrived since the last one.

    python -m flows.ingest --lake out/lake curate/ingest/demo_logs
"""

import argparse
import json
from pathlib import Path
from typing import Literal

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from curate import stages
from curate.core.lake import Lake
from flows.common import fingerprint, inputs_state, logger, publish_stats, retry_transient, run_once
from flows.runners import run_task


@task(name="ingest-files", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_transient, cache_policy=NO_CACHE)
def ingest_task(lake: str, inputs: list[str], on_change: str) -> dict:
    from curate.ingest.ingest import IngestConfig  # looked up per run: tests swap it

    config = IngestConfig(on_change=on_change)  # validated before anything is read

    def work() -> dict:
        return stages.run_ingest(Lake(lake), config, inputs=inputs).as_dict()

    key = fingerprint("ingest", inputs_state(inputs), on_change)
    return run_once(lake, "ingest", key, work)


@flow(name="ingest", log_prints=False)
def ingest_flow(
    lake: Path = Path("out/lake"),
    inputs: list[Path] = [Path("curate/ingest/demo_logs")],  # noqa: B006 - Prefect parameters are copied
    on_change: Literal["replace", "skip", "error"] = "replace",
) -> dict:
    """Ingest `inputs` (files or folders) into the lake at `lake`; returns ingest stats."""
    stats = run_task(ingest_task, str(lake), [str(p) for p in inputs], on_change)
    files = stats.get("files", {})
    logger().info(
        "ingest: %s records in, %s kept, %s quarantined; files %s%s",
        stats.get("total"), stats.get("kept"), stats.get("quarantined"), files,
        " (marker: nothing new)" if stats.get("skipped") else "",
    )
    publish_stats("ingest", {k: v for k, v in stats.items() if k != "per_file"})
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", type=Path)
    parser.add_argument("--lake", type=Path, default=Path("out/lake"))
    parser.add_argument("--on-change", choices=["replace", "skip", "error"], default="replace")
    args = parser.parse_args(argv)
    print(json.dumps(ingest_flow(lake=args.lake, inputs=args.inputs, on_change=args.on_change), indent=2, default=str))


if __name__ == "__main__":
    main()
