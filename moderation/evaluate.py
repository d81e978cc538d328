"""Agreement of a moderation tier with a small labelled set (`tests/data/moderation_eval.jsonl`).

Each row has `text` and `label`, one of the eleven categories or "none". Reported:
flag accuracy / precision / recall (flagged vs label != "none"), and category
agreement: among labelled-harmful rows, how often the tier's top category equals
the label, or its parent (hate/threatening predicted for a hate label counts, as
OpenAI's taxonomy makes the subcategory imply the parent; see `category_match`).

Example:
    >>> rows = load_eval_set("tests/data/moderation_eval.jsonl")       # doctest: +SKIP
    >>> agreement(rows, [(v["flagged"], top) for v, top in ...])        # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from moderation.taxonomy import CATEGORIES, PARENT


def load_eval_set(path: str | Path) -> list[dict]:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in rows:
        if r["label"] != "none" and r["label"] not in CATEGORIES:
            raise ValueError(f"unknown label {r['label']!r} in {path}")
    return rows


def category_match(label: str, predicted: str | None) -> bool:
    """The predicted category is the label, or the label's parent/child in the taxonomy."""
    if predicted is None:
        return False
    return predicted == label or PARENT.get(predicted) == label or PARENT.get(label) == predicted


def agreement(rows: Sequence[dict], predictions: Sequence[tuple[bool | None, str | None]]) -> dict:
    """Agreement figures; a prediction of (None, None) is an error and counts as a miss, not a guess."""
    tp = fp = fn = tn = errors = cat_ok = harmful_flagged = 0
    for row, (flagged, cat) in zip(rows, predictions, strict=True):
        harmful = row["label"] != "none"
        if flagged is None:
            errors += 1
            continue
        if flagged and harmful:
            tp += 1
            harmful_flagged += 1
            cat_ok += category_match(row["label"], cat)
        elif flagged:
            fp += 1
        elif harmful:
            fn += 1
        else:
            tn += 1
    judged = tp + fp + fn + tn
    return {
        "n": len(rows),
        "errors": errors,
        "flag_accuracy": round((tp + tn) / judged, 3) if judged else None,
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
        "false_positives": fp,
        "category_agreement": round(cat_ok / harmful_flagged, 3) if harmful_flagged else None,
    }
