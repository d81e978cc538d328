"""The OpenAI moderation taxonomy and the per-message record stored in the lake.

A message's verdict has the shape of LMSYS-Chat-1M's `openai_moderation` column:
``{"categories": {cat: bool}, "category_scores": {cat: float}, "flagged": bool}``,
one entry per message of the conversation, in message order.

Example:
    >>> v = verdict({"violence": 0.9}, threshold=0.5)
    >>> v["flagged"], v["categories"]["violence"], v["categories"]["hate"]
    (True, True, False)
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

CATEGORIES: tuple[str, ...] = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)

# A subcategory implies its parent, as in OpenAI's taxonomy: a message that is
# hate/threatening is also hate. Scores are lifted so a parent never scores
# below its own subcategory.
PARENT: dict[str, str] = {
    "harassment/threatening": "harassment",
    "hate/threatening": "hate",
    "self-harm/instructions": "self-harm",
    "self-harm/intent": "self-harm",
    "sexual/minors": "sexual",
    "violence/graphic": "violence",
}

DESCRIPTIONS: dict[str, str] = {
    "harassment": "insults, demeaning or bullying language aimed at a person or group",
    "harassment/threatening": "harassment that also threatens harm to the target",
    "hate": "hatred or contempt for people because of race, religion, gender, sexuality, disability or origin",
    "hate/threatening": "hate that also calls for or threatens violence against the group",
    "self-harm": "promotes, encourages or depicts suicide, cutting or eating disorders",
    "self-harm/instructions": "instructions or advice on how to self-harm or commit suicide",
    "self-harm/intent": "the speaker says they intend to or are about to harm themselves",
    "sexual": "sexual content meant to arouse, or explicit sexual descriptions",
    "sexual/minors": "any sexual content involving someone under 18",
    "violence": "depicts, threatens or promotes physical violence or injury",
    "violence/graphic": "gory, detailed descriptions of death, injury or mutilation",
}

DEFAULT_THRESHOLD = 0.5

CATEGORIES_TYPE = pa.struct([(c, pa.bool_()) for c in CATEGORIES])
SCORES_TYPE = pa.struct([(c, pa.float32()) for c in CATEGORIES])
VERDICT_TYPE = pa.struct(
    [("categories", CATEGORIES_TYPE), ("category_scores", SCORES_TYPE), ("flagged", pa.bool_())]
)


def lift_parents(scores: Mapping[str, float]) -> dict[str, float]:
    """All eleven scores in [0, 1], missing ones 0, each parent at least its subcategories."""
    out = {c: min(1.0, max(0.0, float(scores.get(c, 0.0)))) for c in CATEGORIES}
    for child, parent in PARENT.items():
        out[parent] = max(out[parent], out[child])
    return out


def verdict(scores: Mapping[str, float], *, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """One message's record: scores, a bool per category (score >= threshold), and `flagged`."""
    full = lift_parents(scores)
    cats = {c: full[c] >= threshold for c in CATEGORIES}
    return {"categories": cats, "category_scores": full, "flagged": any(cats.values())}


def top_category(scores: Mapping[str, float]) -> tuple[str, float]:
    """The highest-scoring category, preferring the more specific one on ties."""
    best = max(CATEGORIES, key=lambda c: (scores.get(c, 0.0), c in PARENT))
    return best, float(scores.get(best, 0.0))
