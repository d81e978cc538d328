"""Flow: the taggers, each writing its own annotation table keyed by conversation_id.

Order: PII first (the export and every later stage that quotes text read its redacted
conversations), then language, moderation (tier 1; tier 2 when an LLM is configured)
and topics. Each tagger only tags conversations missing from its table, so a rerun
or a scheduled run does only the new ones. Each runs through its stage function
(`curate.stages.TAGGERS`).

    python -m flows.tag --lake out/lake
"""

import argparse
import json
import time
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from curate import stages
from curate.core.lake import Lake
from flows import progress
from flows.common import fingerprint, lake_state, logger, publish_stats, retry_transient, run_once
from flows.options import LLMOptions, chat_client
from flows.runners import run_task

TAGGERS = tuple(stages.TAGGERS)  # in the order they run
# A failure of these stops the run; the others are enrichments the run can do without.
ESSENTIAL = ("pii",)
LLM_TAGGERS = ("moderation_llm", "topics")  # these get the run's chat client (None when the LLM is off)


def _run(tagger: str, lake, llm: LLMOptions, advance=None) -> dict:
    """One tagger through its stage function; the LLM ones get a client (and close its cache)."""
    run = stages.TAGGERS[tagger]
    if tagger not in LLM_TAGGERS:
        return run(lake, progress=advance).as_dict()
    client = chat_client(llm, lake.root)
    try:
        return run(lake, client=client, progress=advance).as_dict()
    finally:
        if client is not None and client.cache is not None:
            client.cache.close()


# Annotation tables a tagger reads besides the conversations (part of its fingerprint).
READS: dict[str, tuple[str, ...]] = {"moderation_llm": ("moderation",), "topics": ("pii",)}


@task(name="tag", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_transient, cache_policy=NO_CACHE,
      task_run_name="tag-{tagger}")
def tag_task(lake: str, tagger: str, llm: LLMOptions) -> dict:
    key = fingerprint("tag", tagger, lake_state(lake, READS.get(tagger, ())),
                      llm.model_dump(exclude={"concurrency", "timeout_s"}))

    def work() -> dict:
        with progress.bar(f"tag {tagger}", _pending(lake, tagger) if progress.enabled() else None) as advance:
            return _run(tagger, Lake(lake), llm, advance)

    return run_once(lake, f"tag_{tagger}", key, work)


def _pending(lake: str, tagger: str) -> int | None:
    """Conversations the tagger has still to do, for its progress bar (None when unknown)."""
    from curate.tag.tagging import count_pending

    try:
        return count_pending(Lake(lake), tagger)[1]
    except Exception:  # noqa: BLE001 - only a bar's length
        return None


@flow(name="tag")
def tag_flow(
    lake: Path = Path("out/lake"),
    taggers: list[str] = list(TAGGERS),  # noqa: B006 - Prefect copies parameters
    llm: LLMOptions = LLMOptions(),  # noqa: B008
) -> dict:
    """Run the taggers in order; LLM tiers only when `llm` names a model endpoint."""
    unknown = sorted(set(taggers) - set(TAGGERS))
    if unknown:
        raise ValueError(f"unknown taggers {unknown}; choose from {list(TAGGERS)}")
    results: dict[str, dict] = {}
    for tagger in TAGGERS:
        if tagger not in taggers:
            continue
        if tagger == "moderation_llm" and not llm.enabled:
            logger().info("tag moderation_llm: no LLM configured (llm.mode=off), tier 2 not run")
            continue
        t0 = time.perf_counter()
        progress.stage_started(f"tag {tagger}")
        state = run_task(tag_task, str(lake), tagger, llm, return_state=True)
        wall = round(time.perf_counter() - t0, 2)
        failed = state.is_failed() or state.is_crashed()
        progress.stage_finished(f"tag {tagger}", {"failed": state.message} if failed else state.result(), wall)
        if state.is_failed() or state.is_crashed():  # crashed: a Ray worker died under it
            if tagger in ESSENTIAL:
                state.result()  # raises: nothing may be exported without redaction
            # An enrichment tagger that fails does not stop the run: its columns stay
            # empty, it has no marker so the next run tries again, and the run reports it.
            message = str(state.message or "failed")[:300]
            logger().error("tag %s FAILED, continuing without it: %s", tagger, message)
            results[tagger] = {"failed": message}
            publish_stats(f"tag-{tagger}", results[tagger])
            continue
        stats = {**state.result(), "wall_s": wall}
        results[tagger] = stats
        publish_stats(f"tag-{tagger}", stats)
        logger().info("tag %s: %s", tagger, {k: v for k, v in stats.items() if not isinstance(v, (dict, list))})
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=Path("out/lake"))
    parser.add_argument("--tagger", action="append", choices=TAGGERS, help="repeatable; default: all")
    parser.add_argument("--llm-url", help="OpenAI-compatible endpoint for the LLM tiers")
    parser.add_argument("--llm-model")
    args = parser.parse_args(argv)
    llm = LLMOptions(mode="endpoint", base_url=args.llm_url, model=args.llm_model) if args.llm_url else LLMOptions()
    print(json.dumps(tag_flow(lake=args.lake, taggers=args.tagger or list(TAGGERS), llm=llm), indent=2, default=str))


if __name__ == "__main__":
    main()
