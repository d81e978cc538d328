"""Labelled pairs from the reference tool's published rephrasings (the paper's protocol).

Per set: positives are (original i, rephrasing i) for the first 100 items, skipping
rephrasings the authors filtered out (empty text); negatives are 100 random mismatched
pairs (original i, rephrasing j != i) drawn from the same 100 items with a fixed seed,
so negatives have the same language and shape as positives. The *calibration* split
uses only items past the first 100 (HumanEval 100-163, sociology and US history MMLU
rows past 100), so a cut-off fitted on it never saw a scored pair.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from curate.core.lake import Lake

log = logging.getLogger(__name__)

SCORED = 100
MMLU_SUBJECTS = ("abstract_algebra", "sociology", "high_school_us_history")
CODE_LANGS = ("python", "c", "js")


@dataclass(frozen=True)
class LabelledPair:
    set_name: str
    a: str
    b: str
    label: bool
    data_type: str
    item: int


def _jsonl_texts(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [(json.loads(line).get("text") or "") for line in fh if line.strip()]


def _csv_questions(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        return [row[0] for row in csv.reader(fh) if row]


def load_sets(root: str | Path) -> dict[str, tuple[list[str], list[str], str]]:
    """set name -> (originals, rephrasings aligned with them, data type)."""
    root = Path(root)
    sets: dict[str, tuple[list[str], list[str], str]] = {}
    originals = _jsonl_texts(root / "test" / "HumanEval.jsonl")
    for lang in CODE_LANGS:
        sets[f"humaneval_{lang}"] = (originals, _jsonl_texts(root / "rephrase" / f"humaneval_{lang}.jsonl"), "code")
    for subject in MMLU_SUBJECTS:
        questions = _csv_questions(root / "rephrase" / f"{subject}_test.csv")
        english = [t.split("\nAnswer:")[0] for t in _jsonl_texts(root / "rephrase" / f"{subject}_test_rephrase_english_filtered_question.jsonl")]
        chinese = [t.split("\n答")[0] for t in _jsonl_texts(root / "rephrase" / f"{subject}_test_chinese.jsonl")]
        sets[f"mmlu_{subject}_english"] = (questions, english, "knowledge")
        sets[f"mmlu_{subject}_chinese"] = (questions, chinese, "knowledge")
    return sets


def _pairs(name: str, originals: list[str], rephrased: list[str], data_type: str, items: range, n_neg: int, seed: int) -> list[LabelledPair]:
    usable = [i for i in items if i < len(originals) and i < len(rephrased) and rephrased[i].strip()]
    out = [LabelledPair(name, originals[i], rephrased[i], True, data_type, i) for i in usable]
    rng = random.Random(f"{seed}:{name}:{items.start}")
    seen: set[tuple[int, int]] = set()
    while len(seen) < min(n_neg, len(usable) * (len(usable) - 1)):
        i, j = rng.sample(usable, 2)
        if (i, j) not in seen and originals[i] != originals[j]:
            seen.add((i, j))
            out.append(LabelledPair(name, originals[i], rephrased[j], False, data_type, i))
    return out


def scored_pairs(root: str | Path, *, n: int = SCORED, seed: int = 0) -> dict[str, list[LabelledPair]]:
    """The evaluation pairs: items 0..n-1 of every set."""
    return {name: _pairs(name, o, r, t, range(n), n, seed) for name, (o, r, t) in load_sets(root).items()}


def calibration_pairs(root: str | Path, *, start: int = SCORED, seed: int = 1) -> list[LabelledPair]:
    """Pairs from items past the scored ones, as many negatives as positives."""
    out: list[LabelledPair] = []
    for name, (o, r, t) in load_sets(root).items():
        items = range(start, min(len(o), len(r)))
        if len(items) >= 2:
            out += _pairs(name, o, r, t, items, len(items), seed)
    return out


def codealpaca_db(root: str | Path) -> list[dict]:
    """The reference tool's own GPT-4 verdicts: CodeAlpaca-20k top-1 neighbours of HumanEval."""
    with open(Path(root) / "database" / "CodeAlpacaDB.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def labelled_pairs(lake: Lake | str | os.PathLike) -> list:
    """Accepted (positive) and rejected (negative) decontam pairs of a reviewed lake as `LabelledPair`s.

    `a` is the benchmark item, `b` the redacted training turn the reviewer saw.
    """
    import pyarrow as pa

    from curate.core.lake import Lake  # noqa: F811 - the runtime import
    from curate.export.review_decisions import latest_decisions
    from decontam.benchmarks import load_benchmark

    lake = lake if isinstance(lake, Lake) else Lake(lake)
    decisions = latest_decisions(lake)
    if not decisions.decontam:
        return []
    con = lake.connect()
    try:
        con.register("_ids", pa.table({"conversation_id": sorted({k[0] for k in decisions.decontam})}))
        cols = {r[0] for r in con.execute("DESCRIBE pii").fetchall()}
        red = "redacted_conversation" if "redacted_conversation" in cols else "conversation"
        convs = dict(con.execute(f"SELECT conversation_id, {red} FROM pii JOIN _ids USING (conversation_id)"
                                 " QUALIFY row_number() OVER (PARTITION BY conversation_id ORDER BY run_id DESC) = 1"
                                 ).fetchall())
    finally:
        con.close()
    benches: dict[str, object] = {}
    pairs = []
    for (cid, bench, test_id), d in sorted(decisions.decontam.items()):
        if bench not in benches:
            benches[bench] = load_benchmark(bench)
        b = benches[bench]
        texts = dict(zip(b.ids, b.texts))
        conv = convs.get(cid) or []
        turn = d["turn"]
        if test_id not in texts or turn is None or not 0 <= turn < len(conv):
            log.warning("review: pair %s / %s:%s cannot be rebuilt (item or turn missing); left out", cid, bench, test_id)
            continue
        pairs.append(LabelledPair(f"review:{bench}", texts[test_id], conv[turn]["content"] or "",
                                  d["decision"] == "accept", b.data_type, len(pairs)))
    return pairs
