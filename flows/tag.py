"""Flow: the taggers, each writing its own annotation table keyed by conversation_id.

Order: PII first (the export and every later stage that quotes text read its redacted
conversations), then language, moderation (tier 1; tier 2 when an LLM is configured)
and topics. Each tagger only tags conversations missing from its table, so a rerun
or a scheduled run does only the new ones; a tagger whose module is not installed is
skipped with a log line.

    python -m flows.tag --lake out/lake
"""

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import progress
from flows.common import as_stats, fingerprint, lake_state, logger, optional_module, publish_stats, retry_transient, run_once
from flows.options import LLMOptions, chat_client
from flows.runners import run_task

TAGGERS = ("pii", "language", "moderation", "moderation_llm", "topics")
# A failure of these stops the run; the others are enrichments the run can do without.
ESSENTIAL = ("pii",)


def _pii(lake, llm: LLMOptions, advance=None) -> dict | None:
    mod = optional_module("curate.tag.pii")
    return None if mod is None else as_stats(mod.tag_pii(lake, progress=advance))


def _language(lake, llm: LLMOptions, advance=None) -> dict | None:
    mod = optional_module("curate.tag.language")
    return None if mod is None else as_stats(mod.tag_language(lake, progress=advance))


def _moderation(lake, llm: LLMOptions, advance=None) -> dict | None:
    mod = optional_module("moderation.tag")
    return None if mod is None else as_stats(mod.tag_moderation_local(lake, progress=advance))


def _moderation_llm(lake, llm: LLMOptions, advance=None) -> dict | None:
    mod = optional_module("moderation.tag")
    if mod is None:
        return None
    client = chat_client(llm, lake.root)
    try:
        return as_stats(mod.tag_moderation_llm(lake, client, progress=advance))
    finally:
        if client is not None and client.cache is not None:
            client.cache.close()


def _topics(lake, llm: LLMOptions, advance=None) -> dict | None:
    mod = optional_module("curate.tag.topics")
    if mod is None:
        return None
    client = chat_client(llm, lake.root)
    try:
        return as_stats(mod.tag_topics(lake, client=client, progress=advance))
    finally:
        if client is not None and client.cache is not None:
            client.cache.close()


RUNNERS: dict[str, Callable] = {
    "pii": _pii, "language": _language, "moderation": _moderation,
    "moderation_llm": _moderation_llm, "topics": _topics,
}
# Annotation tables a tagger reads besides the conversations (part of its fingerprint).
READS: dict[str, tuple[str, ...]] = {"moderation_llm": ("moderation",), "topics": ("pii",)}


@task(name="tag", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_transient, cache_policy=NO_CACHE,
      task_run_name="tag-{tagger}")
def tag_task(lake: str, tagger: str, llm: LLMOptions) -> dict:
    from curate.core.lake import Lake

    if not _available(tagger):
        return {"skipped_missing_stage": tagger}
    runner = RUNNERS[tagger]
    key = fingerprint("tag", tagger, lake_state(lake, READS.get(tagger, ())),
                      llm.model_dump(exclude={"concurrency", "timeout_s"}))
    def work() -> dict:
        with progress.bar(f"tag {tagger}", _pending(lake, tagger) if progress.enabled() else None) as advance:
            return runner(Lake(lake), llm, advance) or {}

    return run_once(lake, f"tag_{tagger}", key, work)


def _pending(lake: str, tagger: str) -> int | None:
    """Conversations the tagger has still to do, for its progress bar (None when unknown)."""
    from curate.core.lake import Lake
    from curate.tag.tagging import count_pending

    try:
        return count_pending(Lake(lake), tagger)[1]
    except Exception:  # noqa: BLE001 - only a bar's length
        return None


def _available(tagger: str) -> bool:
    module = {"pii": "curate.tag.pii", "language": "curate.tag.language", "moderation": "moderation.tag",
              "moderation_llm": "moderation.tag", "topics": "curate.tag.topics"}[tagger]
    return optional_module(module) is not None


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
