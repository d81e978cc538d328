"""Flow: check the lake's conversations against benchmarks (`decontam.lake`).

Reads the redacted user turns, checks only conversations not yet checked with the same
benchmarks and settings, writes the `decontam` annotation (the export drops flagged
conversations) and the reports: `<out>/decontam/decontam_report.md` for the whole lake,
`<out>/decontam/runs/<run_id>/` with the evidence of each run.

    python -m flows.decontam --lake out/lake --out out --benchmark humaneval
"""

import argparse
import json
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from curate import stages
from curate.core.lake import Lake
from decontam.lake import LakeCheckConfig
from flows import progress
from flows.common import fingerprint, lake_state, logger, publish_stats, retry_transient, run_once
from flows.options import LLMOptions, chat_client
from flows.runners import run_task


@task(name="decontam-check", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_transient, cache_policy=NO_CACHE)
def decontam_task(lake: str, benchmarks: list[str], report_dir: str, llm: LLMOptions, judge: bool) -> dict:
    config = LakeCheckConfig(benchmarks=tuple(benchmarks), report_dir=report_dir)
    if "pii" not in Lake(lake).annotation_tables():
        logger().warning("decontam: no PII annotation yet (it reads redacted text only): skipping this step")
        return {"skipped_missing_stage": "pii"}

    def work() -> dict:
        client = chat_client(llm, lake) if judge else None
        judge_obj = None
        if client is not None:
            from decontam.judge import LLMJudge

            judge_obj = LLMJudge(client, model=llm.model)
        try:
            with progress.steps("decontam") as step:
                return stages.run_decontam(Lake(lake), config, judge=judge_obj, progress=step).as_dict()
        finally:
            if client is not None and client.cache is not None:
                client.cache.close()

    key = fingerprint("decontam", lake_state(lake, ("pii",)), sorted(benchmarks), report_dir,
                      llm.model_dump(exclude={"concurrency", "timeout_s"}) if judge else None)
    return run_once(lake, "decontam", key, work,
                    valid=lambda s: (Path(report_dir) / "decontam_report.md").exists())


@flow(name="decontam")
def decontam_flow(
    lake: Path = Path("out/lake"),
    out: Path = Path("out"),
    benchmarks: list[str] = ["humaneval"],  # noqa: B006 - Prefect copies parameters
    llm: LLMOptions = LLMOptions(),  # noqa: B008
    judge: bool = True,
) -> dict:
    """Flag conversations that quote or rephrase benchmark items; the judge runs when `llm` is on."""
    report_dir = Path(out) / "decontam"
    stats = run_task(decontam_task, str(lake), list(benchmarks), str(report_dir), llm, judge and llm.enabled)
    logger().info("decontam: %s", {k: v for k, v in stats.items() if not isinstance(v, (dict, list))})
    publish_stats("decontam", stats)
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=Path("out/lake"))
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--benchmark", action="append", help="repeatable; default humaneval")
    args = parser.parse_args(argv)
    print(json.dumps(decontam_flow(lake=args.lake, out=args.out, benchmarks=args.benchmark or ["humaneval"]),
                     indent=2, default=str))


if __name__ == "__main__":
    main()
