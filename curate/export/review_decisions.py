"""A reviewer's decisions, recorded in the lake, and honoured by the export and `decontam check`.

`apply_decisions(lake, "decisions.jsonl")` checks every line of the review page's export and
appends them to the `review` annotation table: who decided, when, what (section, decision,
the pair or the duplicate it is about), who applied it and when. Nothing is written when
any line is bad; the error names the line.

What a decision means (the latest decision for a pair wins):

- decontam, `reject`: the flag is wrong; the row is kept (export, `--write-clean`) unless
  another of its flags still stands.
- decontam, `accept`: the flag is right; the row is dropped even where a later check,
  with other settings, no longer flags it.
- dedup, `reject`: not a duplicate of its kept member; the row is kept.
- dedup, `accept`: a duplicate; the row is dropped, also where the export keeps duplicates
  or the member is a kept variant.

Accepted and rejected decontam pairs are labelled data for `decontam calibrate --reviewed LAKE`.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from curate.core.errors import CurateError
from curate.core.lake import Lake, new_run_id

log = logging.getLogger(__name__)

TABLE = "review"
SECTIONS = ("decontam", "dedup")
DECISIONS = ("accept", "reject")
SCHEMA = pa.schema([
    ("conversation_id", pa.string()),
    ("section", pa.string()),          # decontam | dedup
    ("decision", pa.string()),         # accept | reject
    ("benchmark", pa.string()),        # decontam: the benchmark item of the pair
    ("test_id", pa.string()),
    ("turn", pa.int32()),              # decontam: the message index of the training turn
    ("duplicate_of", pa.string()),     # dedup: the kept member it was compared with
    ("kind", pa.string()),             # dedup: exact | near | semantic | variant
    ("score", pa.float64()),           # the score the reviewer saw
    ("reviewer", pa.string()),
    ("decided_at", pa.timestamp("us", tz="UTC")),
    ("applied_by", pa.string()),
    ("applied_at", pa.timestamp("us", tz="UTC")),
    ("source", pa.string()),           # the decisions file's name
    ("run_id", pa.string()),
])


class DecisionError(CurateError):
    """A decisions file that cannot be applied (the message names the line)."""


def _parse_time(value, line_no: int) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise DecisionError(f"line {line_no}: decided_at {value!r} is not an ISO-8601 time") from exc
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def read_decisions(path: str | os.PathLike) -> list[dict]:
    """The decisions of a JSONL file, checked line by line (DecisionError names the bad line)."""
    rows = []
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        raise DecisionError(f"cannot read {path}: {exc.strerror}") from exc
    with fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except ValueError as exc:
                raise DecisionError(f"line {n}: not JSON ({exc.msg})") from exc
            if not isinstance(d, dict):
                raise DecisionError(f"line {n}: expected a JSON object")
            section, decision, cid = d.get("section"), d.get("decision"), d.get("conversation_id")
            if section not in SECTIONS:
                raise DecisionError(f"line {n}: section {section!r} is not one of {', '.join(SECTIONS)}")
            if decision not in DECISIONS:
                raise DecisionError(f"line {n}: decision {decision!r} is not one of {', '.join(DECISIONS)}")
            if not isinstance(cid, str) or not cid:
                raise DecisionError(f"line {n}: conversation_id missing")
            if section == "decontam" and not (d.get("benchmark") and d.get("test_id") is not None):
                raise DecisionError(f"line {n}: a decontam decision needs benchmark and test_id")
            turn = d.get("turn")
            try:
                turn = None if turn in (None, "") else int(turn)
            except (TypeError, ValueError) as exc:
                raise DecisionError(f"line {n}: turn {turn!r} is not a message index") from exc
            score = d.get("score")
            rows.append({
                "conversation_id": cid, "section": section, "decision": decision,
                "benchmark": d.get("benchmark") if section == "decontam" else None,
                "test_id": None if section != "decontam" else str(d["test_id"]),
                "turn": turn if section == "decontam" else None,
                "duplicate_of": d.get("duplicate_of") if section == "dedup" else None,
                "kind": d.get("kind") if section == "dedup" else None,
                "score": float(score) if isinstance(score, (int, float)) else None,
                "reviewer": (str(d["reviewer"]) if d.get("reviewer") else None),
                "decided_at": _parse_time(d.get("decided_at"), n),
                "_line": n,
            })
    return rows


def apply_decisions(lake: Lake, path: str | os.PathLike, *, who: str | None = None,
                    run_id: str | None = None) -> dict:
    """Record the decisions of `path` in the lake's `review` table; returns counts.

    Every conversation id must be in the lake (a decision about a row that is not there
    is a mistake, not something to skip). `who` (default: the login name) is recorded as
    `applied_by`, and as `reviewer` where the page left it empty.
    """
    rows = read_decisions(path)
    if not lake.exists():
        raise DecisionError(f"no lake at {lake.root}")
    run_id = run_id or new_run_id()
    applied_by = who or _login()
    now = datetime.now(timezone.utc)
    with lake.writer_lock():
        con = lake.connect()
        try:
            con.register("_d", pa.table({"conversation_id": pa.array(sorted({r["conversation_id"] for r in rows}),
                                                                    pa.string())}))
            missing = {r[0] for r in con.execute(
                "SELECT conversation_id FROM _d ANTI JOIN conversations USING (conversation_id)").fetchall()}
        finally:
            con.close()
        bad = [r for r in rows if r["conversation_id"] in missing]
        if bad:
            shown = ", ".join(f"line {r['_line']} ({r['conversation_id']})" for r in bad[:5])
            raise DecisionError(f"{len(bad)} decisions name conversations that are not in {lake.root}: {shown}"
                                " (was the page made for another lake?)")
        for r in rows:
            r.pop("_line")
            r.update(reviewer=r["reviewer"] or applied_by, decided_at=r["decided_at"] or now,
                     applied_by=applied_by, applied_at=now, source=Path(path).name, run_id=run_id)
        if rows:
            lake.write_annotation(TABLE, pa.Table.from_pylist(rows, schema=SCHEMA), part=run_id)
        stats = {"run_id": run_id, "decisions": len(rows)}
        for r in rows:
            k = f"{r['section']}_{r['decision']}"
            stats[k] = stats.get(k, 0) + 1
        lake.record_run(run_id, "review_apply", now, stats)
    log.info("review: applied %s", stats)
    return stats


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True)
class Decisions:
    """The latest decision per pair: decontam keyed (conversation, benchmark, test_id),
    dedup keyed by conversation."""

    decontam: dict[tuple[str, str, str], dict]
    dedup: dict[str, dict]

    def decontam_rejected(self, cid: str, benchmark: str, test_id: str) -> bool:
        d = self.decontam.get((cid, benchmark, str(test_id)))
        return d is not None and d["decision"] == "reject"

    def decontam_accepted(self, cid: str) -> list[dict]:
        return [d for (c, _, _), d in sorted(self.decontam.items()) if c == cid and d["decision"] == "accept"]


def latest_decisions(lake: Lake | str | os.PathLike) -> Decisions:
    """The lake's review decisions, the latest per pair (by decided_at, then applying run)."""
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    files = lake.annotation_files(TABLE)
    if not files:
        return Decisions({}, {})
    table = lake.read_annotation(TABLE)
    rows = sorted(table.to_pylist(), key=lambda r: (r["decided_at"] or datetime.min.replace(tzinfo=timezone.utc),
                                                    r["run_id"] or "", r["conversation_id"]))
    decontam: dict[tuple[str, str, str], dict] = {}
    dedup: dict[str, dict] = {}
    for r in rows:  # later rows overwrite earlier ones
        if r["section"] == "decontam":
            decontam[(r["conversation_id"], r["benchmark"], str(r["test_id"]))] = r
        elif r["section"] == "dedup":
            dedup[r["conversation_id"]] = r
    return Decisions(decontam, dedup)


def honour_in_export(lake: Lake, rows: pa.Table) -> pa.Table:
    """The export's rows with the reviewer's decisions applied.

    `rows` has `conversation_id`, `contaminated` and `duplicate` (curate.export.export.select_rows).
    A rejected flag clears `contaminated` / `duplicate`; an accepted pair or duplicate sets
    `_review_drop` (the exclusion reason) and `_review_detail`, which the export drops
    whatever its drop options say.
    """
    from curate.core.reasons import Reason

    decisions = latest_decisions(lake)
    if not decisions.decontam and not decisions.dedup:
        return rows
    matches = _decontam_matches(lake)
    ids = rows.column("conversation_id").to_pylist()
    contaminated = rows.column("contaminated").to_pylist()
    duplicate = rows.column("duplicate").to_pylist()
    drop: list[str | None] = [None] * len(ids)
    detail: list[str | None] = [None] * len(ids)
    for i, cid in enumerate(ids):
        if contaminated[i]:
            pairs = matches.get(cid)
            if pairs:
                cleared = all(decisions.decontam_rejected(cid, m["benchmark"], str(m["test_id"])) for m in pairs)
            else:  # the annotation does not name its pairs: a reject of any of them clears the row
                cleared = any(c == cid and d["decision"] == "reject" for (c, _, _), d in decisions.decontam.items())
            if cleared:
                contaminated[i] = False
        d = decisions.dedup.get(cid)
        if d is not None and d["decision"] == "reject":
            duplicate[i] = False
        elif d is not None:
            drop[i] = str(Reason.EXPORT_DUPLICATE)
            detail[i] = json.dumps({"duplicate_of": d["duplicate_of"], "why": f"review: accepted {d['kind'] or 'duplicate'}",
                                    "reviewer": d["reviewer"]})
        accepted = decisions.decontam_accepted(cid)
        if accepted and drop[i] is None:
            drop[i] = str(Reason.EXPORT_CONTAMINATED)
            detail[i] = json.dumps({"benchmarks": sorted({a["benchmark"] for a in accepted}), "why": "review: accepted",
                                    "test_ids": [a["test_id"] for a in accepted], "reviewer": accepted[0]["reviewer"]})
    for name, values, typ in (("contaminated", contaminated, pa.bool_()), ("duplicate", duplicate, pa.bool_())):
        rows = rows.set_column(rows.column_names.index(name), name, pa.array(values, typ))
    rows = rows.append_column("_review_drop", pa.array(drop, pa.string()))
    return rows.append_column("_review_detail", pa.array(detail, pa.string()))


def _decontam_matches(lake: Lake) -> dict[str, list[dict]]:
    """Each contaminated conversation's flagged pairs, from its latest decontam row."""
    if "decontam" not in lake.annotation_tables():
        return {}
    con = lake.connect()
    try:
        cols = {r[0] for r in con.execute("DESCRIBE decontam").fetchall()}
        if not {"matches", "run_id"} <= cols:
            return {}
        rows = con.execute(
            "SELECT conversation_id, matches FROM decontam WHERE contaminated QUALIFY row_number() OVER"
            " (PARTITION BY conversation_id ORDER BY run_id DESC NULLS LAST) = 1").fetchall()
    finally:
        con.close()
    out = {}
    for cid, m in rows:
        try:
            out[cid] = [x for x in json.loads(m or "[]") if isinstance(x, dict) and "benchmark" in x]
        except ValueError:
            out[cid] = []
    return out


def honour_in_clean(lake_root: str | os.PathLike, ids: list[str], flagged: dict[int, list],
                    benchmarks: set[str]) -> tuple[dict[int, list], dict[str, int]]:
    """`decontam check --write-clean` on a lake: drop rejected pairs, add accepted ones.

    `flagged` maps a row position to its flagged pairs (objects with `benchmark`, `test_id`,
    `train_id`). Accepted pairs count only for the benchmarks of this check. Returns the new
    mapping (accepted additions carry dicts) and counts of what the decisions changed.
    """
    decisions = latest_decisions(lake_root)
    if not decisions.decontam:
        return flagged, {}
    out: dict[int, list] = {}
    kept_by_review = added_by_review = 0
    for pos, pairs in flagged.items():
        cid = ids[pos]
        standing = [p for p in pairs if not decisions.decontam_rejected(cid, p.benchmark, str(p.test_id))]
        if standing:
            out[pos] = standing
        else:
            kept_by_review += 1
    for pos, cid in enumerate(ids):
        if pos in out:
            continue
        accepted = [d for d in decisions.decontam_accepted(cid) if d["benchmark"] in benchmarks]
        if accepted:
            out[pos] = [{"benchmark": d["benchmark"], "test_id": d["test_id"], "decided_by": "review",
                         "reviewer": d["reviewer"]} for d in accepted]
            added_by_review += 1
    return out, {"review_kept": kept_by_review, "review_dropped": added_by_review}
