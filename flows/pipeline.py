"""The main job: ingest -> dedup -> tag -> decontam -> export, as one Prefect flow.

    python -m flows.pipeline --lake out/lake --out out            # what `make run` does
    python -m flows.pipeline --inputs landing/ --llm serve         # with the LLM tiers, own model server
    python -m flows.pipeline --ray-address auto                    # the stages' tasks on a Ray cluster

Every stage is its own subflow with completion markers: a rerun skips finished stages,
a run killed half-way resumes where it stopped, and a run after new log files arrived
does only the new conversations. A stage whose module is not installed is skipped with
a log line. The run ends by printing where the export, the data card and the decontam
report are.
"""

import argparse
import json
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
from flows.options import ExportOptions, LLMOptions, served_llm
from flows.review import review_flow
from flows.runners import connect_ray, task_runner_for, with_runner
from flows.tag import TAGGERS, tag_flow

DEMO_LOGS = Path(__file__).resolve().parents[1] / "curate" / "ingest" / "demo_logs"


@flow(name="pipeline")
def pipeline(
    lake: Path = Path("out/lake"),
    inputs: list[Path] = [DEMO_LOGS],  # noqa: B006 - Prefect copies parameters
    out: Path = Path("out"),
    benchmarks: list[str] = ["humaneval"],  # noqa: B006
    llm: LLMOptions = LLMOptions(),  # noqa: B008
    export: ExportOptions = ExportOptions(),  # noqa: B008
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
    results["export"] = timed("export", export_flow, lake=lake, out=out, options=export, card_dir=card_dir)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the chatcurate pipeline (ingest, dedup, tag, decontam, export).")
    parser.add_argument("--lake", type=Path, default=Path("out/lake"))
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--inputs", type=Path, nargs="+", default=[DEMO_LOGS], help="log files or folders")
    parser.add_argument("--benchmark", action="append", help="repeatable; default humaneval (offline)")
    parser.add_argument("--llm", choices=["off", "serve", "endpoint"], default="off",
                        help="LLM tiers: off, serve (start a local model server), endpoint (--llm-url/--llm-model)")
    parser.add_argument("--llm-url")
    parser.add_argument("--llm-model")
    parser.add_argument("--card-dir", type=Path, default=None, help="where the data card copy goes (default OUT/data_card)")
    parser.add_argument("--name", default="chatcurate-demo", help="dataset name")
    parser.add_argument("--drop-flagged", action="store_true")
    parser.add_argument("--keep-duplicates", action="store_true")
    parser.add_argument("--keep-contaminated", action="store_true")
    parser.add_argument("--repo-id", default=None, help="push the export to this Hub dataset repo (needs HF_TOKEN)")
    parser.add_argument("--skip", action="append", choices=list(TAGGERS), default=[],
                        help="leave out a tagger (repeatable)")
    parser.add_argument("--no-semantic-dedup", action="store_true")
    parser.add_argument("--no-judge", action="store_true",
                        help="with --llm, keep the decontam judge off (the LLM serves the taggers only)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when an enrichment stage failed")
    parser.add_argument("--json", action="store_true", help="print all stats as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no stage lines or progress bars on stderr")
    parser.add_argument("--ray-address", default=None, help="run the stages' tasks on Ray: auto | local | host:6379 | "
                        "ray://head:10001 (default: CURATE_RAY_ADDRESS, else no Ray)")
    args = parser.parse_args(argv)
    progress.enable(not args.quiet)
    llm = LLMOptions(mode=args.llm, base_url=args.llm_url, model=args.llm_model)
    export = ExportOptions(name=args.name, drop_flagged=args.drop_flagged, drop_duplicates=not args.keep_duplicates,
                           drop_contaminated=not args.keep_contaminated, repo_id=args.repo_id)
    address = ray_address_of(args.ray_address)
    flow_ = pipeline if address is None else pipeline.with_options(task_runner=task_runner_for(address))
    result = flow_(lake=args.lake, inputs=args.inputs, out=args.out, benchmarks=args.benchmark or ["humaneval"],
                   llm=llm, export=export, card_dir=args.card_dir,
                   taggers=[t for t in TAGGERS if t not in args.skip], semantic_dedup=not args.no_semantic_dedup,
                   decontam_judge=not args.no_judge, ray_address=address)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    print(format_paths(result), file=sys.stdout)
    return 1 if (args.strict and result.get("failed")) else 0


def format_paths(result: dict) -> str:
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


if __name__ == "__main__":
    sys.exit(main())
