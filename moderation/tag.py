"""Moderation taggers: two annotation tables keyed by conversation_id.

``moderation`` (tier 1, every conversation): ``openai_moderation``, one verdict per
message in message order, shaped like LMSYS-Chat-1M's column
(``{categories: {cat: bool}, category_scores: {cat: float}, flagged}``), plus
``flagged`` (any message), ``flagged_messages``, ``review_messages`` (indices tier 2
should look at) and ``moderation_model``.

``moderation_llm`` (tier 2, every conversation tier 1 has seen, judged or not):
``judgements``, one entry per reviewed message (message_index, role, tier-1 top
category and score, the model's category / flagged / explanation, or an error and
no verdict), plus counts ``judged``, ``llm_flagged``, ``errors`` and the model name.
A conversation with nothing to review gets a row with ``judged = 0`` so a rerun
skips it.

Two tables rather than one merged table because the tiers run at very different
speeds and tier 2 may be absent (no model configured): tier 1 is complete on its own,
and tier 2 adds to it without rewriting it. `merged_sql()` joins them.

Example:
    >>> from curate.core.errors import CurateError
from curate.core.lake import Lake
    >>> stats = tag_moderation_local(Lake("lake"))                      # doctest: +SKIP
    >>> stats = tag_moderation_llm(Lake("lake"), ChatClient.from_env()) # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pyarrow as pa

from curate.core.errors import CurateError
from curate.core.lake import Lake
from curate.models.llm import ChatClient
from curate.tag.tagging import TagStats, run_tagger
from moderation.llm_tier import LLMModerator, LLMTierConfig
from moderation.local import LocalConfig, LocalModerator
from moderation.taxonomy import VERDICT_TYPE, top_category

log = logging.getLogger(__name__)

LOCAL_TABLE = "moderation"
LLM_TABLE = "moderation_llm"

JUDGEMENT_TYPE = pa.struct(
    [
        ("message_index", pa.int32()),
        ("role", pa.string()),
        ("tier1_category", pa.string()),
        ("tier1_score", pa.float32()),
        ("tier1_flagged", pa.bool_()),
        ("category", pa.string()),
        ("flagged", pa.bool_()),
        ("explanation", pa.string()),
        ("error", pa.string()),
        ("attempts", pa.int32()),
        ("truncated", pa.bool_()),
    ]
)

LOCAL_SCHEMA = pa.schema(
    [
        ("conversation_id", pa.string()),
        ("openai_moderation", pa.list_(VERDICT_TYPE)),
        ("flagged", pa.bool_()),
        ("flagged_messages", pa.int32()),
        ("review_messages", pa.list_(pa.int32())),
        ("moderation_model", pa.string()),
    ]
)

LLM_SCHEMA = pa.schema(
    [
        ("conversation_id", pa.string()),
        ("judgements", pa.list_(JUDGEMENT_TYPE)),
        ("judged", pa.int32()),
        ("llm_flagged", pa.int32()),
        ("errors", pa.int32()),
        ("llm_model", pa.string()),
    ]
)


def tag_moderation_local(
    lake: Lake,
    config: LocalConfig | None = None,
    *,
    moderator: LocalModerator | None = None,
    batch_size: int = 2000,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> TagStats:
    """Tier 1 over every conversation not yet in the `moderation` table."""
    config = config or (moderator.config if moderator else LocalConfig())
    mod = moderator or LocalModerator(config)

    def tag_batch(batch: pa.Table) -> pa.Table:
        convs = batch.column("conversation").to_pylist()
        flat = [(m.get("content") or "") for conv in convs for m in (conv or [])]
        verdicts = mod.moderate(flat)
        rows, pos = [], 0
        for conv in convs:
            n = len(conv or [])
            vs = verdicts[pos : pos + n]
            pos += n
            rows.append(
                (vs, any(v["flagged"] for v in vs), sum(v["flagged"] for v in vs),
                 [i for i, v in enumerate(vs) if mod.needs_review(v)])
            )
        return pa.table(
            {
                "conversation_id": batch.column("conversation_id"),
                "openai_moderation": pa.array([r[0] for r in rows], LOCAL_SCHEMA.field("openai_moderation").type),
                "flagged": pa.array([r[1] for r in rows], pa.bool_()),
                "flagged_messages": pa.array([r[2] for r in rows], pa.int32()),
                "review_messages": pa.array([r[3] for r in rows], pa.list_(pa.int32())),
                "moderation_model": pa.array([config.model_id] * len(rows), pa.string()),
            },
            schema=LOCAL_SCHEMA,
        )

    def summarize(result: pa.Table) -> dict:
        return {
            "messages": sum(len(x) for x in result.column("openai_moderation").to_pylist()),
            "flagged_conversations": sum(bool(x) for x in result.column("flagged").to_pylist()),
            "flagged_messages": sum(result.column("flagged_messages").to_pylist()),
            "review_messages": sum(len(x) for x in result.column("review_messages").to_pylist()),
        }

    return run_tagger(lake, LOCAL_TABLE, tag_batch, stage="tag_moderation_local", batch_size=batch_size,
                      limit=limit, progress=progress, summarize=summarize)


def tag_moderation_llm(
    lake: Lake,
    client: ChatClient,
    config: LLMTierConfig | None = None,
    *,
    local_config: LocalConfig | None = None,
    batch_size: int = 200,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> TagStats:
    """Tier 2 over conversations not yet in `moderation_llm`; runs tier 1 first where missing.

    Reviews the messages tier 1 listed in `review_messages` (flagged, or top score in
    the uncertain band). Batches are written as they finish, so an interrupted run keeps
    what it judged; answers are also in the client's response cache.
    """
    config = config or LLMTierConfig()
    local_config = local_config or LocalConfig()
    # Tier 1 is cheap and tier 2 needs its verdicts: bring it up to date over the whole lake.
    tier1 = tag_moderation_local(lake, local_config)
    if tier1.tagged:
        log.info("tier 1 tagged %d conversations before tier 2", tier1.tagged)
    mod = LLMModerator(client, config)
    con = lake.connect()

    def tag_batch(batch: pa.Table) -> pa.Table:
        ids = batch.column("conversation_id").to_pylist()
        t1 = dict(
            con.execute(
                f"SELECT conversation_id, {{'v': openai_moderation, 'r': review_messages}} FROM {LOCAL_TABLE}"
                " WHERE conversation_id IN (SELECT unnest(?))",
                [ids],
            ).fetchall()
        )
        convs = dict(zip(ids, batch.column("conversation").to_pylist()))
        todo: list[tuple[str, int, str, str, dict]] = []  # (conversation_id, index, role, text, tier-1 verdict)
        for cid in ids:
            if cid not in t1:
                raise CurateError(f"conversation {cid} has no tier-1 moderation row; rerun `curate tag moderation`")
            conv, verdicts, review = convs[cid] or [], t1[cid]["v"], t1[cid]["r"] or []
            for i in review:
                msg = conv[i]
                todo.append((cid, i, msg.get("role"), msg.get("content") or "", verdicts[i]))
        judgements = mod.judge([t[3] for t in todo], keys=[f"{t[0]}#{t[1]}" for t in todo])
        per_conv: dict[str, list[dict]] = {cid: [] for cid in ids}
        for (cid, i, role, _text, v1), j in zip(todo, judgements):
            cat, score = top_category(v1["category_scores"])
            per_conv[cid].append(
                {
                    "message_index": i, "role": role, "tier1_category": cat, "tier1_score": score,
                    "tier1_flagged": bool(v1["flagged"]), "category": j.category, "flagged": j.flagged,
                    "explanation": j.explanation, "error": j.error, "attempts": j.attempts,
                    "truncated": j.truncated,
                }
            )
        model = next((j.model for j in judgements if j.model), client.endpoints[0].model)
        lists = [per_conv[cid] for cid in ids]
        return pa.table(
            {
                "conversation_id": pa.array(ids, pa.string()),
                "judgements": pa.array(lists, LLM_SCHEMA.field("judgements").type),
                "judged": pa.array([sum(j["error"] is None for j in js) for js in lists], pa.int32()),
                "llm_flagged": pa.array([sum(bool(j["flagged"]) for j in js) for js in lists], pa.int32()),
                "errors": pa.array([sum(j["error"] is not None for j in js) for js in lists], pa.int32()),
                "llm_model": pa.array([model] * len(ids), pa.string()),
            },
            schema=LLM_SCHEMA,
        )

    def summarize(result: pa.Table) -> dict:
        return {
            "messages_judged": sum(result.column("judged").to_pylist()),
            "messages_llm_flagged": sum(result.column("llm_flagged").to_pylist()),
            "messages_errors": sum(result.column("errors").to_pylist()),
        }

    try:
        stats = run_tagger(lake, LLM_TABLE, tag_batch, stage="tag_moderation_llm", batch_size=batch_size,
                           limit=limit, progress=progress, summarize=summarize)
    finally:
        con.close()
    stats.extra["client"] = client.stats.as_dict()
    stats.extra["invalid_answers"] = mod.invalid_answers
    return stats


def merged_sql() -> str:
    """SQL (over `Lake.connect()` views) with one row per judged message: both tiers side by side.

    `final_flagged` is tier 2's verdict where it gave one, else tier 1's flag.
    """
    return f"""
        SELECT l.conversation_id, j.message_index, j.role, j.tier1_category, j.tier1_score, j.tier1_flagged,
               j.category AS llm_category, j.flagged AS llm_flagged, j.explanation, j.error,
               coalesce(j.flagged, j.tier1_flagged) AS final_flagged
        FROM {LLM_TABLE} l, unnest(l.judgements) AS u(j)
    """
