"""Decontamination over the lake: `decontam.check.run_check` on new conversations only.

The training side is the *redacted* user turns (the PII annotation), so the report's
quotes never carry what the PII tagger removed. Conversations already checked with
the same benchmarks and settings (the `decontam` annotation table, keyed by
conversation_id and a `check_key`) are not checked again: a scheduled run checks only
what arrived since the last one. Benchmark embeddings come from the lake's embedding
store, so they are computed once.

Each run writes the detailed `decontam` report (Markdown and JSON, with evidence)
for the conversations it checked under `<report_dir>/runs/<run_id>/`, and rewrites the
lake-wide summary `<report_dir>/decontam_report.{md,json}` from the annotation table.

>>> stats = check_lake(Lake("lake"), ["humaneval"], report_dir="out/decontam")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import hashlib
import json
import logging
import os
from datetime import datetime, timezone
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from curate.core.errors import CurateError
from curate.core.lake import Lake, new_run_id
from decontam.train_data import CHECKED_TABLE as TABLE
from decontam.train_data import TrainData, redacted_user_turns, user_turn_languages

log = logging.getLogger(__name__)

SCHEMA = pa.schema(
    [
        ("conversation_id", pa.string()),
        ("contaminated", pa.bool_()),
        ("benchmarks", pa.list_(pa.string())),
        ("decided_by", pa.string()),  # strongest evidence: ngram > embedding_high > judge > embedding
        ("matches", pa.string()),  # JSON: [{benchmark, test_id, turn, decided_by, cosine}]
        ("check_key", pa.string()),
        ("run_id", pa.string()),
    ]
)
_STRENGTH = {"ngram": 0, "embedding_high": 1, "judge": 2, "embedding": 3}


def check_key(benchmarks: list[str], config: Any, judge_model: str | None) -> str:
    """What makes two checks comparable: benchmarks, check settings and the judge model."""
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else {}
    cfg.pop("cache_dir", None)
    if cfg.get("lexical_k") == 0:  # off (the default): the key a check had before the channel existed, so its lake rows stay valid
        cfg.pop("lexical_k")
    blob = json.dumps([sorted(benchmarks), cfg, judge_model], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LakeCheckConfig:
    """The decontam stage over the lake: which benchmarks, where the reports go, and the
    check's own settings (`decontam.check.CheckConfig`; None: its defaults, cached in the lake)."""

    benchmarks: tuple[str, ...] = ("humaneval",)
    report_dir: str | None = None
    check: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "benchmarks", tuple(self.benchmarks))
        if not self.benchmarks:
            raise CurateError("name at least one benchmark (e.g. humaneval)")


def check_lake(
    lake: Lake,
    benchmarks: list[str],
    config: Any = None,
    *,
    judge: Any = None,
    report_dir: str | os.PathLike | None = None,
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Check the lake's unchecked conversations against `benchmarks`; returns stage stats.

    Stats: `total` (conversations checked now), `kept`, `dropped_benchmark_contamination`
    (flagged now; the export drops them), `already_checked`, `waiting_for_pii`.
    """
    from decontam.check import CheckConfig, run_check

    from curate.models.embed import EmbeddingStore

    if not benchmarks:
        raise CurateError("name at least one benchmark (e.g. humaneval)")
    config = config or CheckConfig(cache_dir=lake.root / "_cache" / "decontam")
    run_id = run_id or new_run_id()
    started = datetime.now(timezone.utc)
    key = check_key(benchmarks, config, getattr(judge, "model_id", None))
    with lake.writer_lock():
        ids, texts, text_ids, parents, waiting = redacted_user_turns(lake, key)
        stats: dict = {"run_id": run_id, "total": len(ids), "kept": len(ids), "dropped_benchmark_contamination": 0,
                       "user_turns": len(texts), "waiting_for_pii": waiting}
        if ids:
            train = TrainData(texts, text_ids, parents, f"lake:{lake.root.name}", "lake", table=None, lake_root=lake.root,
                              langs=user_turn_languages(lake, text_ids))
            result = run_check(train, benchmarks, config, embedding_store=EmbeddingStore(lake.root), judge=judge,
                               run_id=run_id, progress=progress)
            per_conv: dict[int, list[dict]] = {}
            for b in result.benchmarks:
                for p in b.flagged:
                    per_conv.setdefault(parents[p.train_index], []).append(
                        {"benchmark": p.benchmark, "test_id": p.test_id, "turn": p.train_id.rsplit("#", 1)[-1],
                         "decided_by": p.decided_by, "cosine": None if p.cosine is None else round(p.cosine, 4)}
                    )
            rows = []
            for pos, cid in enumerate(ids):
                matches = sorted(per_conv.get(pos, []), key=lambda m: (m["benchmark"], m["test_id"], m["turn"]))
                decided = min((m["decided_by"] for m in matches), key=lambda d: _STRENGTH.get(d, 9), default=None)
                rows.append({"conversation_id": cid, "contaminated": bool(matches),
                             "benchmarks": sorted({m["benchmark"] for m in matches}), "decided_by": decided,
                             "matches": json.dumps(matches), "check_key": key, "run_id": run_id})
            lake.write_annotation(TABLE, pa.Table.from_pylist(rows, schema=SCHEMA), part=run_id)
            flagged = sum(r["contaminated"] for r in rows)
            stats.update(kept=len(ids) - flagged, dropped_benchmark_contamination=flagged,
                         benchmarks={b.name: {"items": b.size, "contaminated_items": b.contaminated_items}
                                     for b in result.benchmarks},
                         timings_s=result.timings_s)
            if report_dir is not None:
                from decontam.report import write_reports

                write_reports(result, Path(report_dir) / "runs" / run_id)
        stats["already_checked"] = _count_checked(lake, key) - len(ids)
        lake.record_run(run_id, "decontam", started, stats)
    if report_dir is not None:
        stats["report"] = str(write_summary(lake, report_dir, key)[0])
    log.info("decontam: checked %d conversations, %d contaminated", stats["total"], stats["dropped_benchmark_contamination"])
    return stats


def _count_checked(lake: Lake, key: str) -> int:
    if TABLE not in lake.annotation_tables():
        return 0
    con = lake.connect()
    try:
        return int(con.execute("SELECT count(*) FROM decontam WHERE check_key = ?", [key]).fetchall()[0][0])
    finally:
        con.close()


def write_summary(lake: Lake, report_dir: str | os.PathLike, key: str | None = None) -> tuple[Path, Path]:
    """The lake-wide report from the annotation table: every contaminated conversation and
    its evidence (ids, benchmarks, how it was decided; no text)."""
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    con = lake.connect()
    try:
        where = "WHERE check_key = ?" if key else ""
        params = [key] if key else []
        total = con.execute(f"SELECT count(*) FROM decontam {where}", params).fetchall()[0][0]
        rows = con.execute(
            f"SELECT conversation_id, benchmarks, decided_by, matches FROM decontam {where}"
            f"{' AND' if key else ' WHERE'} contaminated ORDER BY conversation_id", params
        ).fetchall()
    finally:
        con.close()
    items = [{"conversation_id": r[0], "benchmarks": r[1], "decided_by": r[2], "matches": json.loads(r[3])} for r in rows]
    by_bench: dict[str, set] = {}
    for it in items:
        for m in it["matches"]:
            by_bench.setdefault(m["benchmark"], set()).add(m["test_id"])
    summary = {"conversations_checked": int(total), "contaminated_conversations": len(items),
               "benchmark_items_found": {b: len(v) for b, v in sorted(by_bench.items())}, "contaminated": items}
    js = out / "decontam_report.json"
    js.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = ["# Decontamination report (whole lake)", "",
             f"{total:,} conversations checked; {len(items):,} contaminated (the export drops them by default).", ""]
    if by_bench:
        lines += ["| benchmark | items found in the lake |", "|---|---|"]
        lines += [f"| {b} | {len(v)} |" for b, v in sorted(by_bench.items())]
        lines += [""]
    lines += ["| conversation | benchmark items | decided by | cosine |", "|---|---|---|---|"]
    for it in items:
        ms = it["matches"]
        tests = ", ".join(sorted({f"{m['benchmark']}:{m['test_id']}" for m in ms}))
        cos = max((m["cosine"] for m in ms if m["cosine"] is not None), default=None)
        lines.append(f"| `{it['conversation_id']}` | {tests} | {it['decided_by']} | {'' if cos is None else f'{cos:.3f}'} |")
    lines += ["", "Detailed reports with the matched text (redacted) of each run are under `runs/`.", ""]
    md = out / "decontam_report.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    return md, js
