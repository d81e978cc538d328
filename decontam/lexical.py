"""A cheap lexical candidate channel: the training rows that share the most rare words with a
benchmark item.

The embedding search hands the verifier each item's top k rows by MiniLM cosine. A rephrasing
that keeps the item's rare words (function names, identifiers, named entities) but reorders or
pads them can rank below k there and is then never seen by the verifier. This channel proposes,
per item, the `k` rows of highest TF-IDF cosine over word 1-2-grams (the IDF is the training
side's); the verifier decides them like any other candidate. In the search protocol
(benchmarks/eval_verifier.py --testbed, `search_why`) 5 lexical candidates lift the share of
items whose own rephrasing is a candidate at all, e.g. HumanEval in C 91 -> 98 of 99, Rust
84 -> 90 of 93 (word 1-2-grams did as well as character 3-5-grams at a fifth of the cost).

Words are hashed (`HashingVectorizer`), so memory does not grow with the vocabulary of a large
training side. Ties are broken by row id: the result never depends on row order or threads.

>>> index = LexicalIndex.build(["sum a list of integers", "reverse a string", "hello"])
>>> index.search(["return the sum of a list of integers"], k=1).tolist()
[[0]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

N_FEATURES = 2**20
CELLS = 4_000_000  # (queries x training rows) scores per block: ~16 MB


def _vectorizer():
    from sklearn.feature_extraction.text import HashingVectorizer

    # word 1-2-grams, single-character tokens kept (code: i, n, x); raw counts, weighted below
    return HashingVectorizer(n_features=N_FEATURES, ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b",
                             alternate_sign=False, norm=None, dtype=np.float32)


class LexicalIndex:
    """TF-IDF (sublinear tf, the training side's smoothed IDF) rows over hashed word 1-2-grams."""

    def __init__(self, rows, idf: np.ndarray, max_chars: int):
        self.rows, self.idf, self.max_chars = rows, idf, max_chars

    @property
    def ntotal(self) -> int:
        return int(self.rows.shape[0])

    @classmethod
    def build(cls, texts: Sequence[str], *, max_chars: int = 2000) -> LexicalIndex:
        counts = _vectorizer().transform([(t or "")[:max_chars] for t in texts]).tocsr()
        df = np.bincount(counts.indices, minlength=N_FEATURES).astype(np.float32)
        idf = (np.log((1.0 + len(texts)) / (1.0 + df)) + 1.0).astype(np.float32)
        return cls(_weigh(counts, idf), idf, max_chars)

    def search(self, queries: Sequence[str], k: int = 5) -> np.ndarray:
        """The `k` rows of highest cosine per query (-1: fewer rows share a word), best first,
        ties by row id."""
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
            cq, cs, cr = _top(cq, cs, cr, kk)
        cq, cs, cr = _top(cq, cs, cr, kk)
        rank = np.arange(len(cq)) - np.searchsorted(cq, cq)
        out[cq, rank] = cr
        return out


def _top(q: np.ndarray, s: np.ndarray, r: np.ndarray, k: int):
    """The best `k` (score, then lowest row id) of each query's candidates, grouped by query."""
    order = np.lexsort((r, -s, q))
    q, s, r = q[order], s[order], r[order]
    keep = np.arange(len(q)) - np.searchsorted(q, q) < k
    return q[keep], s[keep], r[keep]


def _weigh(counts, idf: np.ndarray):
    """Sublinear tf times idf, rows L2-normalised (a row without words stays zero)."""
    from sklearn.preprocessing import normalize

    x = counts.copy()
    x.data = (np.log(x.data) + 1.0) * idf[x.indices]
    return normalize(x, norm="l2", copy=False)
