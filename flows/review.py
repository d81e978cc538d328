"""Flow: the review page (`curate.review.page`) beside the export and the card.

Writes `<out>/review/index.html` from the lake and the decontam run reports under
`<out>/decontam/`. The page is rebuilt on every run (it reads counts and capped samples
only, so it is cheap); a failure to build it is logged and reported, never fatal.

    python -m flows.review --lake out/lake --out out
"""

import argparse
import json
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from curate import stages
from curate.core.lake import Lake
from flows.common import logger, publish_stats
from flows.runners import run_task


@task(name="review-page", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def review_task(lake: str, out_dir: str, reports: list[str]) -> dict:
    # the page drops no rows: its stats are where it is and how big
    return stages.run_review(Lake(lake), None, out_dir=out_dir, decontam_reports=reports).details


@flow(name="review")
def review_flow(lake: Path = Path("out/lake"), out: Path = Path("out")) -> dict:
    """Write the review page; returns its path and size (or `failed` with the reason)."""
    try:
        stats = run_task(review_task, str(lake), str(Path(out) / "review"), [str(Path(out) / "decontam")])
    except Exception as exc:  # noqa: BLE001 - the export is written already; the page is extra
        logger().warning("review page not written: %s: %s", type(exc).__name__, exc)
        return {"failed": f"{type(exc).__name__}: {exc}"[:300]}
    logger().info("review page: %s", stats["path"])
    publish_stats("review", {"bytes": stats["bytes"]})
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=Path("out/lake"))
    parser.add_argument("--out", type=Path, default=Path("out"))
    args = parser.parse_args(argv)
    print(json.dumps(review_flow(lake=args.lake, out=args.out), indent=2, default=str))


if __name__ == "__main__":
    main()
