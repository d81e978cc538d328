"""Stage 1: normalised n-gram overlap, for verbatim and near-verbatim copies; and the opt-in
lexical candidate channel (`LexicalIndex`, below), which hands the pair verifier the rows sharing
the most rare words with an item.

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

import numpy as np

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


# ---------------------------------------------------------------------------------------
# The lexical candidate channel (`decontam check --lexical-k N`)
# ---------------------------------------------------------------------------------------
# A cheap lexical candidate channel: the training rows that share the most rare words with a
# benchmark item.
#
# The embedding search hands the verifier each item's top k rows by MiniLM cosine. A rephrasing
# that keeps the item's rare words (function names, identifiers, named entities) but reorders or
# pads them can rank below k there and is then never seen by the verifier. This channel proposes,
# per item, the `k` rows of highest TF-IDF cosine over word 1-2-grams (the IDF is the training
# side's); the verifier decides them like any other candidate. In the search protocol
# (benchmarks/eval_verifier.py --testbed, `search_why`) 5 lexical candidates lift the share of
# items whose own rephrasing is a candidate at all, e.g. HumanEval in C 91 -> 98 of 99, Rust
# 84 -> 90 of 93 (word 1-2-grams did as well as character 3-5-grams at a fifth of the cost).
# `decontam check --lexical-k N` turns it on (off by default: see docs/decontam.md).
#
# Words are hashed (`HashingVectorizer`), so memory does not grow with the vocabulary of a large
# training side. Ties are broken by a hash of the row's text (then the row id, for repeated texts):
# the rows found do not depend on the training side's order, nor on threads.
N_FEATURES = 2**20
CELLS = 4_000_000  # (queries x training rows) scores per block: ~16 MB


def _vectorizer():
    from sklearn.feature_extraction.text import HashingVectorizer

    # word 1-2-grams, single-character tokens kept (code: i, n, x); raw counts, weighted below
    return HashingVectorizer(n_features=N_FEATURES, ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b",
                             alternate_sign=False, norm=None, dtype=np.float32)


class LexicalIndex:
    """TF-IDF (sublinear tf, the training side's smoothed IDF) rows over hashed word 1-2-grams.

    >>> index = LexicalIndex.build(["sum a list of integers", "reverse a string", "hello"])
    >>> index.search(["return the sum of a list of integers"], k=1).tolist()
    [[0]]
    """

    def __init__(self, rows, idf: np.ndarray, max_chars: int, keys: np.ndarray):
        self.rows, self.idf, self.max_chars, self.keys = rows, idf, max_chars, keys

    @property
    def ntotal(self) -> int:
        return int(self.rows.shape[0])

    @classmethod
    def build(cls, texts: Sequence[str], *, max_chars: int = 2000) -> LexicalIndex:
        import xxhash

        texts = [(t or "")[:max_chars] for t in texts]
        counts = _vectorizer().transform(texts).tocsr()
        df = np.bincount(counts.indices, minlength=N_FEATURES).astype(np.float32)
        idf = (np.log((1.0 + len(texts)) / (1.0 + df)) + 1.0).astype(np.float32)
        keys = np.array([xxhash.xxh64_intdigest(t.encode()) for t in texts], np.uint64)  # the tie-break
        return cls(_weigh(counts, idf), idf, max_chars, keys)

    def search(self, queries: Sequence[str], k: int = 5) -> np.ndarray:
        """The `k` rows of highest cosine per query (-1: fewer rows share a word), best first,
        ties by the text's hash, then row id."""
        n = len(queries)
        kk = min(k, self.ntotal)
        out = np.full((n, k), -1, np.int64)
        if n == 0 or kk == 0:
            return out
        q = _weigh(_vectorizer().transform([(t or "")[: self.max_chars] for t in queries]).tocsr(), self.idf)
        qt = q.T.tocsr()
        block = max(1000, CELLS // n)  # training rows per block: a dense (queries x block) score matrix
        cq = np.zeros(0, np.int64)
        cs = np.zeros(0, np.float32)
        cr = np.zeros(0, np.int64)
        for start in range(0, self.ntotal, block):
            s = (self.rows[start : start + block] @ qt).toarray().T  # queries x rows of this block
            kth = np.partition(s, s.shape[1] - min(kk, s.shape[1]), axis=1)[:, s.shape[1] - min(kk, s.shape[1])]
            qi, ri = np.nonzero((s >= kth[:, None]) & (s > 0))  # every row tied at the k-th score is kept
            cq, cs, cr = np.r_[cq, qi], np.r_[cs, s[qi, ri]], np.r_[cr, ri + start]
            cq, cs, cr = _top(cq, cs, cr, kk, self.keys)
        cq, cs, cr = _top(cq, cs, cr, kk, self.keys)
        rank = np.arange(len(cq)) - np.searchsorted(cq, cq)
        out[cq, rank] = cr
        return out


def _top(q: np.ndarray, s: np.ndarray, r: np.ndarray, k: int, keys: np.ndarray):
    """The best `k` (score, then the text's hash, then row id) of each query's candidates, grouped by query."""
    order = np.lexsort((r, keys[r], -s, q))
    q, s, r = q[order], s[order], r[order]
    keep = np.arange(len(q)) - np.searchsorted(q, q) < k
    return q[keep], s[keep], r[keep]


def _weigh(counts, idf: np.ndarray):
    """Sublinear tf times idf, rows L2-normalised (a row without words stays zero)."""
    from sklearn.preprocessing import normalize

    x = counts.copy()
    x.data = (np.log(x.data) + 1.0) * idf[x.indices]
    return normalize(x, norm="l2", copy=False)
