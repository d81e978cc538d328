"""The main job: ingest -> dedup -> tag -> decontam -> export -> review, as one Prefect flow.

Its command line is the CLI's (`curate.cli.pipeline`):

    curate pipeline --lake out/lake --out out --llm serve --llm-model qwen-coder-1.5b --no-judge   # `make run`
    curate pipeline landing/ --llm serve                               # with the LLM tiers, own model server
    curate pipeline --ray-address auto                                 # the stages' tasks on a Ray cluster

Every stage is its own subflow with completion markers: a rerun skips finished stages,
a run killed half-way resumes where it stopped, and a run after new log files arrived
does only the new conversations. Each subflow calls its stage through `curate.stages`.
"""

import sys
import time
from pathlib import Path

from prefect import flow

from curate.core.execution import ray_address as ray_address_of
from flows import progress
from flows.common import logger, publish_stats
from flows.dedup import dedup_flow
from flows.decontam import decontam_flow
from flows.export import export_flow
from flows.ingest import ingest_flow
from curate.export.export import ExportConfig
from flows.options import LLMOptions, served_llm
from flows.review import review_flow
from flows.runners import connect_ray, with_runner
from flows.tag import TAGGERS, tag_flow

DEMO_LOGS = Path(__file__).resolve().parents[1] / "curate" / "ingest" / "demo_logs"


@flow(name="pipeline")
def pipeline(
    lake: Path = Path("out/lake"),
    inputs: list[Path] = [DEMO_LOGS],  # noqa: B006 - Prefect copies parameters
    out: Path = Path("out"),
    benchmarks: list[str] = ["humaneval"],  # noqa: B006
    llm: LLMOptions = LLMOptions(),  # noqa: B008
    export: ExportConfig = ExportConfig(),  # noqa: B008
    taggers: list[str] = list(TAGGERS),  # noqa: B006
    semantic_dedup: bool = True,
    card_dir: Path | None = None,
    decontam_judge: bool = True,
    ray_address: str | None = None,
) -> dict:
    """Run every stage in order over `inputs`; returns per-stage stats and the output paths.

    With `ray_address` (else `CURATE_RAY_ADDRESS`) each stage's task runs on a Ray worker,
    one stage after the other; the paths must then be on storage every worker sees.
    """
    timings: dict[str, float] = {}
    address = ray_address_of(ray_address)
    if address is not None:
        connect_ray(address)  # once for all stages, not once per subflow
        # Workers need not share the driver's working directory.
        lake, out, inputs = Path(lake).resolve(), Path(out).resolve(), [Path(p).resolve() for p in inputs]
        card_dir = Path(card_dir).resolve() if card_dir else None

    def timed(stage: str, fn, **kwargs):
        t0 = time.perf_counter()
        progress.stage_started(stage)
        result = None
        try:
            result = with_runner(fn, address)(**kwargs)
            return result
        finally:
            timings[stage] = round(time.perf_counter() - t0, 2)
            progress.stage_finished(stage, result, timings[stage])

    t_start = time.perf_counter()
    results: dict = {"ingest": timed("ingest", ingest_flow, lake=lake, inputs=inputs)}
    results["dedup"] = timed("dedup", dedup_flow, lake=lake, semantic=semantic_dedup)
    # The LLM tiers share one model server, started here and stopped when they are done.
    t0 = time.perf_counter()
    if llm.mode == "serve":
        progress.stage_started("llm server")
    with served_llm(llm) as endpoint:
        timings["llm_server_start"] = round(time.perf_counter() - t0, 2)
        if llm.mode == "serve":
            progress.stage_finished("llm server", None, timings["llm_server_start"])
        results["tag"] = timed("tag", tag_flow, lake=lake, taggers=taggers, llm=endpoint)
        results["decontam"] = timed("decontam", decontam_flow, lake=lake, out=out, benchmarks=benchmarks, llm=endpoint,
                                     judge=decontam_judge)
    results["export"] = timed("export", export_flow, lake=lake, out=out, config=export, card_dir=card_dir)
    results["review"] = timed("review", review_flow, lake=lake, out=out)
    timings["total"] = round(time.perf_counter() - t_start, 2)
    results["timings_s"] = timings
    results["paths"] = {
        "export": results["export"].get("path"),
        "data_card": results["export"].get("card"),
        "decontam_report": results["decontam"].get("report"),
        "review_page": results["review"].get("path"),
        "lake": str(lake),
    }
    results["failed"] = sorted(f"tag:{k}" for k, v in results["tag"].items() if "failed" in v)
    results["failed"] += ["review"] if "failed" in results["review"] else []
    summary = {
        "ingest_records_in": results["ingest"].get("total"),
        "ingest_files_new": results["ingest"].get("files", {}).get("ingested", 0),
        **{f"tag_{k}_tagged": v.get("tagged") for k, v in results["tag"].items()},
        "decontam_checked": results["decontam"].get("total"),
        "exported": results["export"].get("kept"),
    }
    publish_stats("pipeline", summary, description="pipeline: what this run did")
    logger().info("pipeline done: %s", results["paths"])
    return results


if __name__ == "__main__":
    sys.exit("the pipeline's command line is `curate pipeline` (or `python -m curate.cli pipeline`), "
             "with the same options; see `curate pipeline --help`")
