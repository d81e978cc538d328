"""Flow: exact, near and semantic dedup over the lake (`curate.dedup.dedup.run_dedup`).

Dedup writes its verdicts to the `dedup` annotation table (one row per conversation:
kept, or a duplicate of which conversation and why); the export drops duplicates.

    python -m flows.dedup --lake out/lake
"""

import argparse
import dataclasses
import json
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from curate import stages
from curate.core.lake import Lake
from curate.dedup.dedup import DedupConfig
from flows import progress
from flows.common import fingerprint, lake_state, logger, publish_stats, retry_transient, run_once
from flows.runners import run_task


@task(name="dedup", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_transient, cache_policy=NO_CACHE)
def dedup_task(lake: str, semantic: bool) -> dict:
    config = DedupConfig(semantic=semantic)  # validated before any data is read

    def work() -> dict:
        with progress.steps("dedup") as step:
            return stages.run_dedup(Lake(lake), config, progress=step).as_dict()

    key = fingerprint("dedup", lake_state(lake), dataclasses.asdict(config))
    return run_once(lake, "dedup", key, work)


@flow(name="dedup")
def dedup_flow(lake: Path = Path("out/lake"), semantic: bool = True) -> dict:
    """Mark exact, near and (with `semantic`) embedding duplicates in the lake."""
    stats = run_task(dedup_task, str(lake), semantic)
    logger().info("dedup: %s", {k: v for k, v in stats.items() if not isinstance(v, (dict, list))})
    publish_stats("dedup", stats)
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=Path("out/lake"))
    parser.add_argument("--no-semantic", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(dedup_flow(lake=args.lake, semantic=not args.no_semantic), indent=2, default=str))


if __name__ == "__main__":
    main()
