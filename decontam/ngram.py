"""Stage 1: normalised n-gram overlap, for verbatim and near-verbatim copies.

The benchmark side is small, so its n-grams go into one dict; the training side is
streamed past it. Text is NFKC-normalised, case-folded and cut into word tokens;
CJK characters count as one token each, since those scripts do not separate words.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")

# Benchmark items shorter than n tokens are matched as a whole, but only from this
# length on: a 3-word item ("What is up?") would match half the internet.
MIN_SHORT_TOKENS = 8


def normalize_tokens(text: str, max_chars: int | None = None) -> list[str]:
    """Tokens of `text` after NFKC, case folding and dropping punctuation.

    >>> normalize_tokens("Hello, World! 你好")
    ['hello', 'world', '你', '好']
    """
    if max_chars is not None:
        text = text[:max_chars]
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


@dataclass(frozen=True)
class NgramMatch:
    """One training row that shares n-grams with one benchmark item."""

    test_index: int
    train_index: int
    n_shared: int
    test_ngrams: int
    examples: tuple[str, ...] = field(default=())

    @property
    def fraction(self) -> float:
        return self.n_shared / self.test_ngrams if self.test_ngrams else 0.0


class NgramIndex:
    """The n-grams of a benchmark, ready to be matched against training text.

    >>> index = NgramIndex(["the quick brown fox jumps over the lazy dog again"], n=5)
    >>> [m.test_index for m in index.match(["so the quick brown fox jumps high"])]
    [0]
    """

    def __init__(self, test_texts: Sequence[str], *, n: int = 13, max_chars: int | None = 200_000):
        if n < 1:
            raise ValueError("n must be >= 1")
        self.n = n
        self.max_chars = max_chars
        self._grams: dict[tuple[str, ...], list[int]] = {}
        self._counts: list[int] = []
        self._short_lengths: set[int] = set()
        per_item: list[set[tuple[str, ...]]] = []
        for text in test_texts:
            tokens = normalize_tokens(text, max_chars)
            grams = set(_ngrams(tokens, n))
            if not grams and len(tokens) >= MIN_SHORT_TOKENS:
                grams = {tuple(tokens)}
                self._short_lengths.add(len(tokens))
            per_item.append(grams)
        # An n-gram that several items share is the benchmark's own boilerplate (HumanEval/0
        # and /20 share a solution loop), not evidence for one item: it is dropped, unless
        # that would leave an item with none (a benchmark that repeats an item).
        owners = Counter(g for grams in per_item for g in grams)
        self.shared_dropped = 0
        for i, grams in enumerate(per_item):
            own = {g for g in grams if owners[g] == 1}
            if own:
                self.shared_dropped += len(grams) - len(own)
                grams = own
            self._counts.append(len(grams))
            for g in grams:
                self._grams.setdefault(g, []).append(i)
        logger.debug("n-gram index: %d items, %d distinct %d-grams, %d shared ones dropped",
                     len(self._counts), len(self._grams), n, self.shared_dropped)

    def __len__(self) -> int:
        return len(self._counts)

    def match(self, train_texts: Iterable[str], *, start: int = 0, max_examples: int = 3) -> list[NgramMatch]:
        """Training rows that share at least one n-gram with a benchmark item.

        `start` is the index of the first text, so that batches can be matched in turn.
        """
        lengths = (self.n, *sorted(self._short_lengths))
        out: list[NgramMatch] = []
        grams_index = self._grams
        for offset, text in enumerate(train_texts):
            tokens = normalize_tokens(text or "", self.max_chars)
            hits: dict[int, list[tuple[str, ...]]] = {}
            seen: set[tuple[str, ...]] = set()
            for length in lengths:
                if len(tokens) < length:
                    continue
                for g in _ngrams(tokens, length):
                    owners = grams_index.get(g)
                    if owners is None or g in seen:
                        continue
                    seen.add(g)
                    for t in owners:
                        hits.setdefault(t, []).append(g)
            for t, grams in hits.items():
                out.append(
                    NgramMatch(
                        test_index=t,
                        train_index=start + offset,
                        n_shared=len(grams),
                        test_ngrams=self._counts[t],
                        examples=tuple(" ".join(g) for g in grams[:max_examples]),
                    )
                )
        return out


def _ngrams(tokens: Sequence[str], n: int) -> Iterable[tuple[str, ...]]:
    return zip(*(tokens[i:] for i in range(n)))
