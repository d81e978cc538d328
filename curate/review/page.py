"""The review page: one self-contained HTML file where a person checks what the pipeline flagged.

`write_review_page(lake, out_dir)` writes `out_dir/index.html`: the data is embedded as JSON,
the CSS and JS are inline (`curate/review/review_page.html`), nothing is fetched, and the file opens
from disk. Sections: decontamination (flagged pair side by side with a word-level diff and its
evidence), duplicates (clusters against their kept member), quarantine (counts by reason and an
escaped sample) and moderation and PII (counts and the redacted text of flagged messages).

Only redacted text reaches the page: conversation text comes from the PII annotation's
redacted copy, and free text that never went through the tagger (quarantined raw bytes and
their detail, LLM explanations) is redacted here with the same `PIIRedactor`.

Scale: the embedded data is capped (`ReviewConfig`: pairs, clusters, members per cluster,
samples per reason, flagged messages; each text cut at `max_chars`; at most
`max_section_bytes` of text per list section), the counts are always
the lake's full counts, and the page renders one page of `page_size` items at a time, so a
100k-conversation lake opens as fast as a small one. Capped lists keep the items most worth
a look first: decontamination pairs by ascending score (the least certain flags), clusters
by size.

>>> write_review_page(Lake("lake"), "out/review")   # doctest: +SKIP
PosixPath('out/review/index.html')
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from curate.core.atomic import write_text_atomic
from curate.core.errors import ConfigError, CurateError
from curate.core.lake import Lake

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).with_name("review_page.html")
_DATA_MARK = "/*__REVIEW_DATA__*/"
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
# Evidence keys a decontam match carries that the page shows in their own places.
_MATCH_KEYS = {"benchmark", "test_id", "turn", "decided_by"}


@dataclass(frozen=True, kw_only=True)
class ReviewConfig:
    """What the page embeds. Counts are never capped; lists of items are."""

    max_pairs: int = 2000
    max_clusters: int = 1000
    max_members: int = 20
    max_quarantine_per_reason: int = 20
    max_moderation: int = 1000
    max_pii_samples: int = 200
    # Text bytes (UTF-8) a list section may embed: long conversations fill it before the
    # item caps do, and it keeps the page under 20 MB whatever the texts are.
    max_section_bytes: int = 5_000_000
    max_chars: int = 2000
    page_size: int = 50
    ngram_n: int = 8

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"review: {name} must be a positive integer (got {value!r})")


class ReviewError(CurateError):
    """The review page or a decisions file cannot be used as asked."""


# ---- text helpers ----------------------------------------------------------------------
def word_diff(left: str, right: str) -> list[list]:
    """Word-level diff as [op, text] runs: 0 both, -1 only `left`, 1 only `right`.

    Joining the 0 and -1 runs gives `left` back, the 0 and 1 runs `right`.

    >>> word_diff("the red fox", "the blue fox")
    [[0, 'the '], [-1, 'red'], [1, 'blue'], [0, ' fox']]
    """
    a, b = _TOKEN.findall(left), _TOKEN.findall(right)
    ops: list[list] = []

    def emit(op: int, toks: list[str]) -> None:
        text = "".join(toks)
        if not text:
            return
        if ops and ops[-1][0] == op:
            ops[-1][1] += text
        else:
            ops.append([op, text])

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            emit(0, a[i1:i2])
        else:
            emit(-1, a[i1:i2])
            emit(1, b[j1:j2])
    return ops


def shared_ngrams(a: str, b: str, n: int, examples: int = 3) -> dict:
    """How many normalised word n-grams of `b` also occur in `a`, with a few examples."""
    from decontam.ngram import normalize_tokens

    ta, tb = normalize_tokens(a), normalize_tokens(b)
    grams_a = {tuple(ta[i:i + n]) for i in range(len(ta) - n + 1)}
    seen, shared = set(), []
    for i in range(len(tb) - n + 1):
        g = tuple(tb[i:i + n])
        if g in grams_a and g not in seen:
            seen.add(g)
            shared.append(" ".join(g))
    return {"n": n, "shared": len(shared), "of": max(len(tb) - n + 1, 0), "examples": shared[:examples]}


def _cut(text: str | None, max_chars: int) -> tuple[str, bool]:
    text = text or ""
    return (text, False) if len(text) <= max_chars else (text[:max_chars], True)


def _flatten(messages: list[dict] | None) -> str:
    return "\n".join(f"{m.get('role')}: {m.get('content') or ''}" for m in (messages or []))


def _diff_bytes(ops: list[list]) -> int:
    return sum(len(t.encode("utf-8")) for _, t in ops)


def _redact(redactor, text) -> str | None:
    return redactor.redact_text(str(text))[0] if text else None


def escape_raw(raw: bytes | None) -> str:
    """Raw bytes as text a person can read: invalid UTF-8 and control characters escaped."""
    if raw is None:
        return ""
    text = raw.decode("utf-8", errors="backslashreplace")
    return "".join(
        c if c in "\n\t" or (ord(c) >= 32 and ord(c) != 127) else f"\\x{ord(c):02x}" for c in text
    )


# ---- collecting ------------------------------------------------------------------------
def _columns(con, table: str) -> set[str]:
    return {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}


def _latest(con, table: str) -> str:
    """One row per conversation of an append-only annotation table: the newest run's."""
    cols = _columns(con, table)
    order = next((c for c in ("fit_id", "run_id") if c in cols), None)
    if order is None:
        return f"(SELECT * FROM {table})"
    return (f"(SELECT * FROM {table} QUALIFY row_number() OVER (PARTITION BY conversation_id"
            f" ORDER BY {order} DESC NULLS LAST) = 1)")


def _redacted(con, ids: list[str]) -> dict[str, list[dict]]:
    """Redacted conversations of `ids` from the PII annotation (absent ids: not tagged yet)."""
    has_pii = con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'pii'").fetchone()[0]
    if not ids or not has_pii:  # not tagged yet: nothing may be shown
        return {}
    cols = _columns(con, "pii")
    red = "redacted_conversation" if "redacted_conversation" in cols else "conversation"
    con.register("_review_ids", pa.table({"conversation_id": pa.array(sorted(set(ids)), pa.string())}))
    try:
        rows = con.execute(
            f"SELECT conversation_id, p.{red} FROM {_latest(con, 'pii')} p JOIN _review_ids USING (conversation_id)"
        ).fetchall()
    finally:
        con.unregister("_review_ids")
    return {cid: conv or [] for cid, conv in rows}


class _Benchmarks:
    """Benchmark item texts by (name, id), loaded once per name; None when unavailable."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, str] | None] = {}

    def text(self, name: str, test_id: str) -> str | None:
        if name not in self._items:
            try:
                from decontam.benchmarks import load_benchmark

                b = load_benchmark(name)
                self._items[name] = dict(zip(b.ids, b.texts))
            except Exception as exc:  # noqa: BLE001 - a missing benchmark leaves the page without its text
                log.warning("review: benchmark %s not loadable (%s); its items show the report's text only", name, exc)
                self._items[name] = None
        items = self._items[name]
        return None if items is None else items.get(test_id)


def _report_evidence(report_dirs: list[Path]) -> dict[tuple, dict]:
    """Per flagged pair, the evidence the decontam run reports recorded (n-grams, judge verdict)."""
    out: dict[tuple, dict] = {}
    files: list[Path] = []
    for d in report_dirs:
        if d.is_dir():
            files += sorted(d.glob("runs/*/decontam_report.json"))
            files += [d / "decontam_report.json"] if (d / "decontam_report.json").exists() else []
    for f in files:  # run ids sort by time: a later run's evidence wins
        try:
            report = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("review: cannot read %s (%s)", f, exc)
            continue
        for b in report.get("benchmarks") or []:
            for p in b.get("flagged") or []:
                if isinstance(p, dict) and "train_id" in p:
                    out[(p.get("benchmark"), p.get("test_id"), p["train_id"])] = p
    return out


def _judge(verdict: Any, match: dict) -> dict | None:
    v = dict(verdict) if isinstance(verdict, dict) else {}
    for k in ("judge_label", "judge_reason", "judge_margin"):
        if match.get(k) is not None:
            v.setdefault(k.removeprefix("judge_"), match[k])
    keep = {k: v[k] for k in ("label", "margin", "reason", "model", "prompt_version") if v.get(k) is not None}
    return keep or None


def _probability(*sources: dict) -> float | None:
    for src in sources:
        for k in ("verifier_probability", "probability", "verifier_p", "p_same"):
            val = src.get(k)
            if isinstance(val, (int, float)):
                return float(val)
    return None


def _cosines(*sources: dict) -> dict[str, float]:
    out: dict[str, float] = {}
    for src in sources:
        for k in ("cosines", "channels", "cosine_by_channel"):
            if isinstance(src.get(k), dict):
                out.update({str(c): float(v) for c, v in src[k].items() if isinstance(v, (int, float))})
    if not out:  # no per-channel figures: the one cosine the stage recorded
        out.update({"embedding": float(src["cosine"]) for src in reversed(sources)
                    if isinstance(src.get("cosine"), (int, float))})
    return out


def collect_decontam(con, tables: list[str], config: ReviewConfig, evidence: dict[tuple, dict], redactor) -> dict:
    if "decontam" not in tables:
        return {"available": False, "pairs_total": 0, "conversations_flagged": 0, "conversations_checked": 0,
                "items": [], "benchmarks": [], "stages": []}
    rows = con.execute(
        f"SELECT conversation_id, contaminated, matches FROM {_latest(con, 'decontam')} ORDER BY conversation_id"
    ).fetchall()
    pairs = []
    for cid, contaminated, matches in rows:
        if not contaminated:
            continue
        try:
            ms = json.loads(matches or "[]")
        except ValueError:
            ms = []
        for m in ms:
            if not isinstance(m, dict) or "benchmark" not in m or "test_id" not in m:
                continue
            turn = str(m.get("turn", ""))
            ev = evidence.get((m["benchmark"], m["test_id"], f"{cid}#{turn}"), {})
            prob = _probability(m, ev)
            cos = _cosines(m, ev)
            score = prob if prob is not None else (max(cos.values()) if cos else 1.0)
            pairs.append((round(score, 4), m["benchmark"], str(m["test_id"]), cid, turn, m, ev, prob, cos))
    checked = len(rows)
    flagged = len({p[3] for p in pairs})
    by_bench: dict[str, int] = {}
    by_stage: dict[str, int] = {}
    for p in pairs:
        by_bench[p[1]] = by_bench.get(p[1], 0) + 1
        stage = str(p[5].get("decided_by"))
        by_stage[stage] = by_stage.get(stage, 0) + 1
    pairs.sort(key=lambda p: (p[0], p[1], p[2], p[3], p[4]))
    shown = pairs[: config.max_pairs]
    texts = _redacted(con, [p[3] for p in shown])
    benches = _Benchmarks()
    items: list[dict] = []
    used = 0
    for score, bench, test_id, cid, turn, m, ev, prob, cos in shown:
        conv = texts.get(cid)
        try:
            train = conv[int(turn)]["content"] if conv is not None else None
        except (ValueError, IndexError, KeyError, TypeError):
            train = None
        if train is None:  # the run report's quote (redacted again: a report may come from any check)
            train = _redact(redactor, ev.get("train_text"))
        if train is None:
            continue  # no redacted copy: never show raw text
        test = benches.text(bench, test_id)
        if test is None:
            test = ev.get("test_text") or ""
        train_cut, t1 = _cut(train, config.max_chars)
        test_cut, t2 = _cut(test, config.max_chars)
        ngrams = shared_ngrams(train_cut, test_cut, config.ngram_n)
        if ev.get("ngram_shared"):
            ngrams["report"] = {"shared": ev["ngram_shared"],
                                "examples": [_redact(redactor, e) for e in (ev.get("ngram_examples") or [])[:3]]}
        extra = {k: v for k, v in m.items() if k not in _MATCH_KEYS and k not in ("cosine", "reason")
                 and isinstance(v, (str, int, float, bool)) and not k.startswith(("judge_", "verifier_", "prob"))}
        judge = _judge(ev.get("verdict") or m.get("verdict"), m)
        if judge and judge.get("reason"):  # model-written text: redacted like everything else
            judge["reason"] = _redact(redactor, judge["reason"])
        if used >= config.max_section_bytes:
            break
        used += _diff_bytes(diff := word_diff(train_cut, test_cut))
        items.append({
            "key": f"decontam|{cid}|{bench}|{test_id}",
            "conversation_id": cid, "turn": turn, "benchmark": bench, "test_id": test_id,
            "stage": str(m.get("decided_by")), "score": score, "probability": prob, "cosines": cos,
            "ngrams": ngrams, "judge": judge, "extra": extra,
            "reason": _redact(redactor, m.get("reason") or ev.get("reason")),  # the verifier's, where it decided
            "diff": diff, "truncated": t1 or t2,
        })
    return {"available": True, "conversations_checked": checked, "conversations_flagged": flagged,
            "pairs_total": len(pairs), "items": items,
            "benchmarks": sorted(by_bench.items()), "stages": sorted(by_stage.items())}


def collect_duplicates(con, tables: list[str], config: ReviewConfig) -> dict:
    empty = {"available": False, "clusters_total": 0, "members_total": 0, "kinds": [], "clusters": []}
    if "dedup" not in tables:
        return empty
    cols = _columns(con, "dedup")
    if "cluster_id" not in cols:
        return empty
    kind = "duplicate_kind" if "duplicate_kind" in cols else "NULL"
    score = "similarity" if "similarity" in cols else "NULL"
    dup_of = "duplicate_of" if "duplicate_of" in cols else "NULL"
    rep = "coalesce(is_representative, false)" if "is_representative" in cols else f"({dup_of} IS NULL)"
    variant = "variant_of" if "variant_of" in cols else "NULL"
    # A variant (same template, other values) may point at its original without sharing its cluster.
    rows = con.execute(
        f"""WITH d AS (SELECT conversation_id, coalesce(CAST({variant} AS VARCHAR), cluster_id) AS cluster,
                             {rep} AND {variant} IS NULL AND {dup_of} IS NULL AS rep,
                             CASE WHEN {variant} IS NOT NULL THEN 'variant' ELSE {kind} END AS kind,
                             CAST({score} AS DOUBLE) AS score,
                             coalesce(CAST({variant} AS VARCHAR), {dup_of}) AS dup_of
                      FROM {_latest(con, 'dedup')}),
               sizes AS (SELECT cluster, count(*) AS n FROM d GROUP BY 1 HAVING count(*) > 1
                         OR bool_or(NOT rep))
           SELECT d.*, sizes.n FROM d JOIN sizes USING (cluster)
           ORDER BY sizes.n DESC, cluster, rep DESC, conversation_id"""
    ).fetchall()
    clusters: dict[str, dict] = {}
    kinds: dict[str, int] = {}
    for cid, cluster, is_rep, k, s, d_of, n in rows:
        c = clusters.setdefault(cluster, {"cluster_id": cluster, "size": n, "representative": None, "members": []})
        if is_rep and c["representative"] is None:
            c["representative"] = cid
        else:
            kinds[str(k)] = kinds.get(str(k), 0) + 1
            c["members"].append({"conversation_id": cid, "kind": None if k is None else str(k),
                                 "score": None if s is None else round(s, 4), "duplicate_of": d_of})
    members_total = sum(len(c["members"]) for c in clusters.values())
    shown = list(clusters.values())[: config.max_clusters]
    for c in shown:
        c["members_total"] = len(c["members"])
        c["members"] = sorted(c["members"], key=lambda m: (m["kind"] or "", -(m["score"] or 0), m["conversation_id"]))
        c["members"] = c["members"][: config.max_members]
        if c["representative"] is None:  # the kept member is outside this part of the lake
            c["representative"] = c["members"][0]["duplicate_of"] if c["members"] else c["cluster_id"]
    ids = [c["representative"] for c in shown] + [m["conversation_id"] for c in shown for m in c["members"]]
    texts = _redacted(con, ids)
    out: list[dict] = []
    used = 0
    for c in shown:
        if used >= config.max_section_bytes:
            break
        rep_text, rep_cut = _cut(_flatten(texts.get(c["representative"])), config.max_chars)
        members = []
        for m in c["members"]:
            if m["conversation_id"] not in texts:
                continue  # no redacted copy yet: never show raw text
            text, cut = _cut(_flatten(texts[m["conversation_id"]]), config.max_chars)
            target = m["duplicate_of"] or c["representative"]
            ref = rep_text if target == c["representative"] else _cut(_flatten(texts.get(target)), config.max_chars)[0]
            m.update(key=f"dedup|{m['conversation_id']}", cluster_id=c["cluster_id"], duplicate_of=target,
                     diff=word_diff(text, ref), truncated=cut or rep_cut)
            used += _diff_bytes(m["diff"])
            members.append(m)
        c["members"] = members
        out.append(c)
    return {"available": True, "clusters_total": len(clusters), "members_total": members_total,
            "kinds": sorted(kinds.items()), "clusters": out}


def collect_quarantine(con, config: ReviewConfig, redactor) -> dict:
    counts = con.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()
    sample = con.execute(
        """SELECT reason, source_file, source_index, byte_offset, detail, raw FROM quarantine
           QUALIFY row_number() OVER (PARTITION BY reason ORDER BY source_file, source_index, byte_offset) <= ?
           ORDER BY reason, source_file, source_index, byte_offset""",
        [config.max_quarantine_per_reason],
    ).fetchall()
    per: dict[str, list] = {}
    for reason, src, idx, off, detail, raw in sample:
        raw_text, cut = _cut(escape_raw(raw), config.max_chars)
        per.setdefault(reason, []).append({
            "source_file": os.path.basename(src or ""), "source_index": idx, "byte_offset": off,
            "detail": _redact(redactor, detail) or "", "raw": _redact(redactor, raw_text) or "",
            "raw_bytes": 0 if raw is None else len(raw), "truncated": cut,
        })
    return {"total": sum(n for _, n in counts),
            "reasons": [{"reason": r, "count": n, "sample": per.get(r, [])} for r, n in counts]}


def collect_moderation_pii(con, tables: list[str], config: ReviewConfig, redactor) -> dict:
    from moderation.taxonomy import top_category

    out: dict[str, Any] = {"moderation_available": "moderation" in tables, "pii_available": "pii" in tables,
                           "conversations": con.execute("SELECT count(*) FROM conversations").fetchone()[0]}
    flagged_msgs: list[tuple] = []
    if "moderation" in tables:
        cols = _columns(con, "moderation")
        mod = _latest(con, "moderation")
        out["moderation_checked"], out["moderation_flagged"] = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE flagged) FROM {mod}").fetchone()
        if "openai_moderation" in cols:
            for cid, verdicts in con.execute(
                f"SELECT conversation_id, openai_moderation FROM {mod} WHERE flagged ORDER BY conversation_id"
            ).fetchall():
                for i, v in enumerate(verdicts or []):
                    if v and v.get("flagged"):
                        cat, score = top_category(v.get("category_scores") or {})
                        flagged_msgs.append((cid, i, "tier 1", cat, round(score, 4), None))
    if "moderation_llm" in tables and "judgements" in _columns(con, "moderation_llm"):
        for cid, judgements in con.execute(
            f"SELECT conversation_id, judgements FROM {_latest(con, 'moderation_llm')} ORDER BY conversation_id"
        ).fetchall():
            for j in judgements or []:
                if j and j.get("flagged"):
                    flagged_msgs.append((cid, j.get("message_index"), "tier 2", j.get("category"), None,
                                         _redact(redactor, j.get("explanation"))))
    by_cat: dict[str, int] = {}
    for m in flagged_msgs:
        by_cat[f"{m[2]}: {m[3]}"] = by_cat.get(f"{m[2]}: {m[3]}", 0) + 1
    out["flagged_messages_total"] = len(flagged_msgs)
    out["categories"] = sorted(by_cat.items(), key=lambda kv: (-kv[1], kv[0]))
    flagged_msgs.sort(key=lambda m: (m[0], m[1] if m[1] is not None else -1, m[2]))
    shown = flagged_msgs[: config.max_moderation]
    pii_samples: list[tuple] = []
    if "pii" in tables:
        cols = _columns(con, "pii")
        pii = _latest(con, "pii")
        out["pii_checked"], out["pii_redacted"], out["pii_spans"] = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE redacted), coalesce(sum(pii_count), 0) FROM {pii}").fetchone()
        if "spans" in cols:
            out["pii_kinds"] = con.execute(
                f"SELECT s.kind, count(*) FROM (SELECT unnest(spans) AS s FROM {pii}) GROUP BY 1 ORDER BY 2 DESC, 1"
            ).fetchall()
            pii_samples = con.execute(
                f"""SELECT conversation_id, list_distinct(list_transform(spans, lambda s: s.message_index)) AS msgs,
                           list_distinct(list_transform(spans, lambda s: s.kind)) FROM {pii} WHERE redacted
                    ORDER BY conversation_id LIMIT ?""", [config.max_pii_samples]).fetchall()
    texts = _redacted(con, [m[0] for m in shown] + [p[0] for p in pii_samples]) if "pii" in tables else {}

    def message(cid: str, idx) -> tuple[str | None, str | None]:
        conv = texts.get(cid)
        if conv is None or idx is None or not 0 <= int(idx) < len(conv):
            return None, None
        return conv[int(idx)].get("role"), _cut(conv[int(idx)].get("content"), config.max_chars)[0]

    items = []
    used = 0
    for cid, idx, tier, cat, score, explanation in shown:
        if used >= config.max_section_bytes:
            break
        role, text = message(cid, idx)
        used += len((text or "").encode("utf-8"))
        items.append({"conversation_id": cid, "message_index": idx, "tier": tier, "category": cat, "score": score,
                      "explanation": explanation, "role": role, "text": text})
    out["flagged"] = items
    samples = []
    for cid, msgs, kinds in pii_samples:
        for idx in sorted(m for m in (msgs or []) if m is not None)[:3]:
            role, text = message(cid, idx)
            if text is not None:
                samples.append({"conversation_id": cid, "message_index": idx, "role": role,
                                "kinds": sorted(k for k in kinds or [] if k), "text": text})
    out["pii_samples"] = samples
    return out


def collect_review_data(lake: Lake, config: ReviewConfig | None = None, *,
                        decontam_reports: list[str | os.PathLike] | None = None) -> dict:
    """Everything the page shows, as plain JSON-able data (deterministic for a given lake)."""
    from curate.tag.pii import PIIRedactor

    config = config or ReviewConfig()
    if not lake.exists():
        raise ReviewError(f"no lake at {lake.root} (run `curate ingest` or the pipeline first)")
    tables = lake.annotation_tables()
    redactor = PIIRedactor()
    con = lake.connect()
    try:
        evidence = _report_evidence([Path(d) for d in decontam_reports or []])
        last_run = con.execute("SELECT max(run_id) FROM runs").fetchone()[0]
        data = {
            "meta": {
                "lake": lake.root.name,
                # decisions are kept per lake: a page regenerated for the same lake finds them again
                "lake_key": hashlib.sha256(str(lake.root.resolve()).encode()).hexdigest()[:16],
                "last_run": last_run, "tables": tables, "config": asdict(config),
            },
            "decontam": collect_decontam(con, tables, config, evidence, redactor),
            "duplicates": collect_duplicates(con, tables, config),
            "quarantine": collect_quarantine(con, config, redactor),
            "moderation": collect_moderation_pii(con, tables, config, redactor),
        }
    finally:
        con.close()
    return data


def render_page(data: dict) -> str:
    """The HTML text: the template with `data` embedded as JSON (safe inside a script element)."""
    template = TEMPLATE.read_text(encoding="utf-8")
    blob = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    # "</" and "<!--" would end or confuse the script element; U+2028/9 are escaped for old parsers.
    blob = blob.replace("</", "<\\/").replace("<!--", "\\u003c!--").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if template.count(_DATA_MARK) != 1:
        raise ReviewError(f"{TEMPLATE} must contain {_DATA_MARK} exactly once")
    return template.replace(_DATA_MARK, blob)


def write_review_page(lake: Lake, out_dir: str | os.PathLike, config: ReviewConfig | None = None, *,
                      decontam_reports: list[str | os.PathLike] | None = None) -> Path:
    """Write `out_dir/index.html` atomically and return its path."""
    data = collect_review_data(lake, config, decontam_reports=decontam_reports)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = write_text_atomic(out / "index.html", render_page(data))
    log.info("review page: %s (%d bytes)", path, path.stat().st_size)
    return path
