"""`--write-clean`: the training data minus contaminated rows, plus an exclusions table.

The unit dropped is a training row's parent: a file row, or the whole conversation for
the lake and chat-format files (a conversation that quotes a benchmark item is
contaminated as a whole). Every dropped unit goes to `<output>.exclusions.parquet`
with `id, stage, reason, detail, run_id`, so nobody has to ask where a row went.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.atomic import atomic_path
from decontam.check import REASON_CONTAMINATION, CheckResult
from decontam.errors import DecontamError
from decontam.train_data import TrainData

logger = logging.getLogger(__name__)


def write_clean(data: TrainData, result: CheckResult, path: str | Path) -> dict[str, int]:
    """Write the kept rows to `path` (.parquet or .jsonl) and the exclusions beside it.

    Returns stage stats: `total`, `kept`, `dropped_benchmark_contamination`.
    """
    path = Path(path)
    reasons: dict[int, list] = {}
    for bench in result.benchmarks:
        for p in bench.flagged:
            reasons.setdefault(data.parents[p.train_index], []).append(p)
    table = _parent_table(data)
    ids = _parent_ids(data, table)
    review: dict[str, int] = {}
    if data.kind == "lake" and data.lake_root is not None:  # a reviewer's decisions outrank the check
        from curate.export.review_decisions import honour_in_clean

        reasons, review = honour_in_clean(data.lake_root, ids, reasons, {b.name for b in result.benchmarks})
    keep = pa.array([i not in reasons for i in range(table.num_rows)])
    kept = table.filter(keep)
    _write(kept, path)
    exclusions = pa.table({
        "id": [ids[i] for i in sorted(reasons)],
        "stage": ["decontam"] * len(reasons),
        "reason": [REASON_CONTAMINATION] * len(reasons),
        "detail": [
            json.dumps(
                [p if isinstance(p, dict) else
                 {"benchmark": p.benchmark, "test_id": p.test_id, "train_id": p.train_id,
                  "decided_by": p.decided_by, "cosine": p.cosine} for p in reasons[i]][:20]
            )
            for i in sorted(reasons)
        ],
        "run_id": [result.run_id] * len(reasons),
    }, schema=pa.schema([("id", pa.string()), ("stage", pa.string()), ("reason", pa.string()),
                         ("detail", pa.string()), ("run_id", pa.string())]))
    _write(exclusions, path.with_name(path.name.split(".")[0] + ".exclusions.parquet"))
    stats = {"total": table.num_rows, "kept": kept.num_rows, f"dropped_{REASON_CONTAMINATION}": len(reasons), **review}
    logger.info("write-clean: %s", stats)
    return stats


def _parent_table(data: TrainData) -> pa.Table:
    if data.table is not None:
        return data.table
    if data.kind == "lake" and data.lake_root is not None:
        from curate.core.lake import Lake

        con = Lake(data.lake_root).connect()
        try:
            # parent positions follow conversation_id order (decontam.lake.redacted_user_turns)
            return con.sql("SELECT * FROM conversations ORDER BY conversation_id").to_arrow_table()
        finally:
            con.close()
    raise DecontamError("this training source cannot be rewritten; pass a file or a lake")


def _parent_ids(data: TrainData, table: pa.Table) -> list[str]:
    for name in ("conversation_id", "id"):
        if name in table.column_names:
            return [str(v) for v in table.column(name).to_pylist()]
    return [str(i) for i in range(table.num_rows)]


def _write(table: pa.Table, path: Path) -> None:
    if not path.name.endswith((".jsonl", ".ndjson", ".parquet")):
        raise DecontamError(f"--write-clean {path}: use a .parquet or .jsonl path")
    with atomic_path(path) as tmp:
        if path.name.endswith(".parquet"):
            pq.write_table(table, tmp)
        else:
            with open(tmp, "w", encoding="utf-8") as fh:
                for row in table.to_pylist():
                    fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
