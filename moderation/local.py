"""Tier 1 of moderation: a fast local classifier run on every message, offline.

Three methods, measured on `tests/data/moderation_eval.jsonl` (see docs/moderation.md):

- ``rules`` (default): the keyword rules of `moderation.lexicon` plus alt-profanity-check's
  offensive-language probability as a harassment cue. Tens of thousands of messages a second.
- ``embedding``: a logistic regression over all-MiniLM-L6-v2 embeddings, trained when the
  moderator is built on our own examples (`moderation.exemplars`, about 100 texts, < 1 s).
- ``hybrid``: the higher of the two scores per category.

Tier 1 is tuned for recall: what it flags, and what scores in the uncertain band
below the threshold, goes to the LLM tier (`moderation.llm_tier`) for a second look.

Example:
    >>> mod = LocalModerator(LocalConfig())
    >>> [v] = mod.moderate(["I will find where you live and hurt you"])
    >>> v["flagged"], v["categories"]["harassment/threatening"]
    (True, True)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from curate.core.errors import ConfigError, MissingDependencyError
from moderation import lexicon, lexicon_multi
from moderation.taxonomy import CATEGORIES, DEFAULT_THRESHOLD, verdict

log = logging.getLogger(__name__)

METHODS = ("rules", "embedding", "hybrid")
# alt-profanity-check says "offensive", not which category. Below 0.5 it is noise
# ("I hate Mondays" scores 0.64); above, it is rescaled so that a certain insult
# (p = 1.0) alone reaches the flag threshold for harassment.
PROFANITY_FLOOR = 0.5
PROFANITY_WEIGHT = 0.55


@dataclass(frozen=True, kw_only=True)
class LocalConfig:
    """Tier 1 settings.

    threshold: a category is true at score >= threshold (the message is flagged if any is).
    band_low: messages whose top score is in [band_low, threshold) are "uncertain" and
        go to the LLM tier along with the flagged ones.
    """

    method: str = "rules"
    threshold: float = DEFAULT_THRESHOLD
    band_low: float = 0.25
    use_profanity: bool = True
    multilingual: bool = True  # the es/fr/de/it/pt/ru/zh rules of moderation.lexicon_multi
    max_chars: int = 4000
    embed_model: str | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"moderation method must be one of {METHODS}, got {self.method!r}")
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in (0, 1], got {self.threshold}")
        if not 0.0 <= self.band_low <= self.threshold:
            raise ConfigError(f"band_low must be in [0, threshold], got {self.band_low}")
        if self.max_chars < 1:
            raise ConfigError(f"max_chars must be >= 1, got {self.max_chars}")

    @property
    def model_id(self) -> str:
        parts = [f"local-{self.method}"]
        if self.method != "embedding" and self.use_profanity:
            parts.append("profanity")
        if self.method != "embedding" and self.multilingual:
            parts.append("multi7")
        return "+".join(parts)


class LocalModerator:
    """Scores messages on the eleven categories; returns LMSYS-style verdict dicts."""

    def __init__(self, config: LocalConfig | None = None, *, embedder=None):
        self.config = config or LocalConfig()
        self._embedder = embedder
        self._clf = None
        self._profanity = None
        if self.config.use_profanity and self.config.method != "embedding":
            try:
                from profanity_check import predict_prob
            except ImportError as exc:  # pragma: no cover - core dependency
                raise MissingDependencyError("the local moderation tier needs `pip install alt-profanity-check`") from exc
            self._profanity = predict_prob

    # -- scoring -------------------------------------------------------------------
    def scores(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Raw per-category scores in [0, 1] for each text (before parent lifting)."""
        cut = [(t or "")[: self.config.max_chars] for t in texts]
        if not cut:
            return []
        out: list[dict[str, float]] = [dict.fromkeys(CATEGORIES, 0.0) for _ in cut]
        if self.config.method in ("rules", "hybrid"):
            for row, text in zip(out, cut):
                row.update(lexicon.score_text(text))
                if self.config.multilingual:
                    for cat, score in lexicon_multi.score_text(text).items():
                        row[cat] = max(row[cat], score)
            if self._profanity is not None:
                probs = self._profanity(cut)
                for row, p in zip(out, probs):
                    cue = max(0.0, (float(p) - PROFANITY_FLOOR) / (1.0 - PROFANITY_FLOOR)) * PROFANITY_WEIGHT
                    row["harassment"] = 1.0 - (1.0 - row["harassment"]) * (1.0 - cue)
        if self.config.method in ("embedding", "hybrid"):
            emb = self._embedding_scores(cut)
            for row, e in zip(out, emb):
                for i, c in enumerate(CATEGORIES):
                    row[c] = max(row[c], float(e[i]))
        return out

    def moderate(self, texts: Sequence[str]) -> list[dict]:
        """One verdict per text: {categories, category_scores, flagged}."""
        return [verdict(s, threshold=self.config.threshold) for s in self.scores(texts)]

    def needs_review(self, v: dict) -> bool:
        """Whether tier 2 should look at this verdict: flagged, or top score in the uncertain band."""
        return bool(v["flagged"]) or max(v["category_scores"].values()) >= self.config.band_low

    # -- embedding classifier ----------------------------------------------------------
    def _embedding_scores(self, texts: list[str]) -> np.ndarray:
        clf = self._classifier()
        vecs = self._get_embedder().embed(texts)
        proba = clf.predict_proba(vecs)
        classes = list(clf.classes_)
        scores = np.zeros((len(texts), len(CATEGORIES)), dtype=np.float32)
        for j, c in enumerate(CATEGORIES):
            if c in classes:
                scores[:, j] = proba[:, classes.index(c)]
        return scores

    def _get_embedder(self):
        if self._embedder is None:
            from curate.models.embed import Embedder

            self._embedder = Embedder(self.config.embed_model)
        return self._embedder

    def _classifier(self):
        if self._clf is None:
            from sklearn.linear_model import LogisticRegression

            from moderation.exemplars import EXEMPLARS

            texts, labels = [], []
            for label, examples in EXEMPLARS.items():
                texts.extend(examples)
                labels.extend([label] * len(examples))
            x = self._get_embedder().embed(texts)
            # Strong C: ~100 short examples in 384 dims are separable; the default
            # regularisation squashes every probability towards 1/12.
            clf = LogisticRegression(C=20.0, max_iter=2000, class_weight="balanced")
            clf.fit(x, labels)
            self._clf = clf
            log.info("trained the embedding moderation classifier on %d examples", len(texts))
        return self._clf
