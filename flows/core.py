"""The smallest flow on a Ray cluster: ingest and dedup, each task submitted to the runner.

    python -m flows.core --ray-address local --lake out/lake curate/ingest/demo_logs
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from prefect import flow

from flows.dedup import dedup_task
from flows.ingest import ingest_task
from flows.runners import task_runner_for


@flow(name="core-on-ray")
def core_flow(lake: Path = Path("out/lake"), inputs: list[Path] = [Path("curate/ingest/demo_logs")],  # noqa: B006
              semantic: bool = False) -> dict:
    """Ingest then dedup, each submitted to the flow's task runner (Ray when given one)."""
    ingest = ingest_task.submit(str(lake), [str(p) for p in inputs], "replace").result()
    dedup = dedup_task.submit(str(lake), semantic).result()
    return {"ingest": ingest, "dedup": dedup}


def run_core(lake: Path, inputs: list[Path], *, address: str | None = None, semantic: bool = False,
             num_cpus: int | None = None) -> dict:
    """`core_flow` with the task runner for `address` (local thread pool without one)."""
    runner = task_runner_for(address, num_cpus=num_cpus)
    return core_flow.with_options(task_runner=runner)(lake=lake, inputs=inputs, semantic=semantic)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Ingest and dedup with the tasks on a Ray cluster.")
    parser.add_argument("inputs", nargs="+", type=Path)
    parser.add_argument("--lake", type=Path, default=Path("out/lake"))
    parser.add_argument("--ray-address", default=None, help="auto | local | host:6379 | ray://host:10001 "
                        "(default: CURATE_RAY_ADDRESS, else no Ray)")
    parser.add_argument("--semantic", action="store_true")
    args = parser.parse_args(argv)
    result = run_core(args.lake, args.inputs, address=args.ray_address, semantic=args.semantic)
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
