"""Near-duplicate detection: MinHash signatures, LSH banding and connected components.

Everything is vectorised numpy over a whole batch; no Python loop per document or per
shingle (see docs/dedup.md for the measurements that chose this over datasketch and
rensa).

- Text is normalised (NFKC, lower-case) and cut into words with the regex `\\w+`, so case,
  whitespace and punctuation never separate two texts.
- Shingles are n-grams of words (`shingle="word"`) or of the UTF-8 bytes of the words
  joined by single spaces (`shingle="char"`). A text shorter than `ngram` tokens is one
  shingle. A text with no word at all has no signature and joins no cluster.
- Hashing is our own and stable across library versions (signatures are persisted in the
  lake): a polynomial rolling hash mod 2**64 over the token sequence, computed for every
  window at once from prefix sums (odd multipliers are invertible mod 2**64), finished
  with splitmix64. Permutation j maps the top 32 bits x of a shingle hash to `a_j * x + b_j mod 2**32`.
- LSH: `bands` x `rows` (derived from `threshold` by minimising false positive plus false
  negative area under the S-curve, unless given). Candidates in one bucket are linked to
  the bucket's first member and to their predecessor (a star plus a chain: linear in the
  bucket size, never quadratic), then verified: the estimated Jaccard similarity (share
  of equal signature slots) must reach `threshold`. Clusters are connected components
  (scipy's union-find-equivalent `connected_components`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from curate.errors import ConfigError

log = logging.getLogger(__name__)

HASH_VERSION = 1  # bump when the shingling or hashing changes: persisted signatures are then stale

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_P_BYTE = np.uint64(0x100000001B3)  # odd multipliers for the rolling hashes
_P_TOKEN = np.uint64(0x9E3779B97F4A7C15)
_EMPTY = np.uint32(0xFFFFFFFF)
# Shingles per chunk: bounds the (permutations x shingles) uint32 work buffer to ~32 MB.
_CHUNK_SHINGLES = 1 << 16


@dataclass(frozen=True, kw_only=True)
class MinHashConfig:
    """MinHash LSH parameters.

    `threshold` is the Jaccard similarity (of shingle sets) above which two texts are near
    duplicates. Defaults suit chat prompts: byte 5-grams tolerate a typo in a short prompt
    (one typo in a 100-character prompt keeps Jaccard near 0.9), where word 5-grams of a
    20-word prompt fall to ~0.5. 0.65 is the threshold that kept precision at 1.0 with the
    best recall on benchmarks/eval_dedup_quality.py (0.7: recall 0.94; 0.6: precision 0.978).
    """

    num_perm: int = 128
    threshold: float = 0.65
    shingle: str = "char"
    ngram: int = 5
    bands: int | None = None
    rows: int | None = None
    seed: int = 1
    verify: bool = True

    def __post_init__(self):
        if self.num_perm < 8 or self.num_perm > 1024:
            raise ConfigError(f"num_perm must be in 8..1024, got {self.num_perm}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.shingle not in ("char", "word"):
            raise ConfigError(f"shingle must be 'char' or 'word', got {self.shingle!r}")
        if not 1 <= self.ngram <= 64:
            raise ConfigError(f"ngram must be in 1..64, got {self.ngram}")
        if (self.bands is None) != (self.rows is None):
            raise ConfigError("give both bands and rows, or neither (then they follow from threshold)")
        if self.bands is not None and (self.bands < 1 or self.rows < 1 or self.bands * self.rows > self.num_perm):
            raise ConfigError(f"bands * rows must be <= num_perm ({self.bands} x {self.rows} > {self.num_perm})")

    @property
    def band_rows(self) -> tuple[int, int]:
        if self.bands is not None:
            return self.bands, self.rows
        return optimal_band_rows(self.threshold, self.num_perm)

    def fingerprint(self) -> dict:
        """What persisted signatures depend on (banding and threshold do not matter)."""
        return {"num_perm": self.num_perm, "shingle": self.shingle, "ngram": self.ngram,
                "seed": self.seed, "hash_version": HASH_VERSION}


@functools.lru_cache(maxsize=64)
def optimal_band_rows(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising the false-positive area below `threshold` plus the
    false-negative area above it, for P(candidate | s) = 1 - (1 - s**rows)**bands."""
    s_lo = np.linspace(0.0, threshold, 200)
    s_hi = np.linspace(threshold, 1.0, 200)
    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = np.trapezoid(1 - (1 - s_lo**r) ** b, s_lo)
            fn = np.trapezoid((1 - s_hi**r) ** b, s_hi)
            if fp + fn < best_err:
                best, best_err = (b, r), fp + fn
    return best


# ---- hashing ---------------------------------------------------------------------------

def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _powers(base: np.uint64, n: int) -> np.ndarray:
    out = np.full(n, base, dtype=np.uint64)
    out[0] = 1
    return np.cumprod(out, dtype=np.uint64)


def _inverse_mod64(a: int) -> int:
    return pow(int(a), -1, 1 << 64)


def _window_hashes(tokens: np.ndarray, starts: np.ndarray, ends: np.ndarray, base: np.uint64) -> np.ndarray:
    """Polynomial hash of tokens[starts[k]:ends[k]] for every k, from one prefix sum."""
    n = tokens.shape[0]
    pw = _powers(base, n + 1)
    prefix = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(tokens * pw[:n], dtype=np.uint64, out=prefix[1:])
    inv = _powers(np.uint64(_inverse_mod64(base)), n + 1)
    h = (prefix[ends] - prefix[starts]) * inv[starts]
    return _splitmix64(h ^ ((ends - starts).astype(np.uint64) * np.uint64(0xD6E8FEB86659FD93)))


def _arrow_strings(values) -> tuple[np.ndarray, np.ndarray]:
    """(offsets int64, data uint8) of an Arrow string array."""
    import pyarrow as pa

    arr = values.cast(pa.large_string()) if values.type != pa.large_string() else values
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64)[arr.offset: arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return offsets, data


def tokenize(texts: Sequence[str], shingle: str) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (uint64) of all texts concatenated, and per-text offsets (len n+1)."""
    import polars as pl

    series = pl.Series(texts, dtype=pl.String).fill_null("")
    # NFKC is the identity on ASCII and the costliest step: run it on the other texts only.
    odd = series.str.contains(r"[^\x00-\x7F]").arg_true()
    if len(odd):
        series = series.scatter(odd, series.gather(odd).str.normalize("NFKC"))
    words = series.str.to_lowercase()
    words = words.str.extract_all(r"\w+")
    if shingle == "char":
        joined = words.list.join(" ").to_arrow()
        offsets, data = _arrow_strings(joined)
        tokens = data[offsets[0]: offsets[-1]].astype(np.uint64) + np.uint64(1)
        return tokens, offsets - offsets[0]
    lists = words.to_arrow()
    import pyarrow as pa

    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    lists = lists.cast(pa.large_list(pa.large_string()))
    doc_off = lists.offsets.to_numpy().astype(np.int64)
    flat = lists.values if lists.offset == 0 else lists.flatten()
    doc_off = doc_off - doc_off[0]
    w_off, data = _arrow_strings(flat)
    w_off = w_off[: doc_off[-1] + 1] if len(w_off) else np.zeros(1, np.int64)
    base = w_off[0]
    tokens = _window_hashes(data[base: w_off[-1]].astype(np.uint64) + np.uint64(1),
                            w_off[:-1] - base, w_off[1:] - base, _P_BYTE)
    return tokens, doc_off


def shingle_hashes(tokens: np.ndarray, offsets: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of every text, and per-text counts (0 for a text with no token)."""
    lengths = np.diff(offsets)
    counts = np.where(lengths >= ngram, lengths - ngram + 1, np.minimum(lengths, 1))
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.uint64), counts
    doc_of = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    starts = offsets[:-1][doc_of] + (np.arange(total) - first[doc_of])
    ends = np.minimum(starts + ngram, offsets[1:][doc_of])
    return _window_hashes(tokens, starts, ends, _P_TOKEN), counts


def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # 32-bit affine maps x -> a*x + b mod 2**32 (a odd: a bijection) over shingle hashes that
    # splitmix64 already made uniform: half the memory traffic of 64-bit multiply-shift, and
    # the cluster agreement with datasketch is measured in benchmarks/bench_minhash.py.
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 1 << 31, size=num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = rng.integers(0, 1 << 32, size=num_perm, dtype=np.uint32)
    return a, b


def signatures(texts: Sequence[str], config: MinHashConfig = MinHashConfig(), *,
               chunk_texts: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures (uint32, n x num_perm) and a mask of texts that have one.

    >>> sig, ok = signatures(["the cat sat on the mat", "The cat sat on the mat!"])
    >>> bool((sig[0] == sig[1]).all())
    True
    """
    n = len(texts)
    sig = np.full((n, config.num_perm), _EMPTY, dtype=np.uint32)
    has = np.zeros(n, dtype=bool)
    a, b = _permutations(config.num_perm, config.seed)
    for lo in range(0, n, chunk_texts):
        part = texts[lo: lo + chunk_texts]
        tokens, offsets = tokenize(part, config.shingle)
        shingles, counts = shingle_hashes(tokens, offsets, config.ngram)
        has[lo: lo + len(part)] = counts > 0
        _minhash_into(shingles, counts, a, b, sig[lo: lo + len(part)])
    return sig, has


def _minhash_into(shingles: np.ndarray, counts: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    docs = np.flatnonzero(counts)
    if docs.size == 0:
        return
    ends = np.cumsum(counts[docs])
    # Layout (permutations x shingles): reduceat then runs along contiguous rows, 6x faster
    # than along axis 0.
    buf = np.empty((a.shape[0], min(_CHUNK_SHINGLES, int(ends[-1])) + 1), dtype=np.uint32)
    d0, s0 = 0, 0
    while d0 < docs.size:
        # Whole documents per chunk; a document longer than the chunk gets a chunk of its own.
        d1 = int(np.searchsorted(ends, s0 + _CHUNK_SHINGLES, side="right"))
        d1 = max(d1, d0 + 1)
        s1 = int(ends[d1 - 1])
        x = (shingles[s0:s1] >> np.uint64(32)).astype(np.uint32)
        work = buf[:, : s1 - s0] if s1 - s0 <= buf.shape[1] else np.empty((a.shape[0], s1 - s0), np.uint32)
        np.multiply(a[:, None], x[None, :], out=work)
        np.add(work, b[:, None], out=work)
        starts = np.concatenate(([0], ends[d0:d1 - 1] - s0))
        out[docs[d0:d1]] = np.minimum.reduceat(work, starts, axis=1).T
        d0, s0 = d1, s1


# ---- LSH and clustering ----------------------------------------------------------------

def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """uint64 key per (text, band): a hash of the band's `rows` signature slots."""
    n = sig.shape[0]
    mult = _splitmix64(np.arange(1, rows + 1, dtype=np.uint64)) | np.uint64(1)
    keys = np.empty((n, bands), dtype=np.uint64)
    for band in range(bands):  # one band at a time: memory n x rows, not n x bands x rows
        block = sig[:, band * rows: (band + 1) * rows].astype(np.uint64)
        keys[:, band] = _splitmix64((block * mult[None, :]).sum(axis=1, dtype=np.uint64))
    return keys


def candidate_pairs(keys: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
    """Unique (i, j), i < j, of texts sharing a bucket in some band (star + chain per bucket).

    `active` (bool mask) limits the output to pairs touching at least one active text,
    used to check a new batch against the lake without redoing old pairs.
    """
    n, bands = keys.shape
    found = []
    for band in range(bands):
        col = keys[:, band]
        order = np.argsort(col)  # any member may be a bucket's centre: no need for a stable sort
        sk = col[order]
        same = np.empty(n, dtype=bool)
        if n:
            same[0] = False
            same[1:] = sk[1:] == sk[:-1]
        idx = np.flatnonzero(same)
        if idx.size == 0:
            continue
        group_start = np.maximum.accumulate(np.where(same, 0, np.arange(n)))
        star = np.stack([order[group_start[idx]], order[idx]], axis=1)
        chain_idx = idx[group_start[idx] != idx - 1]
        chain = np.stack([order[chain_idx - 1], order[chain_idx]], axis=1)
        found.append(star)
        found.append(chain)
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.concatenate(found).astype(np.int64)
    pairs.sort(axis=1)
    if active is not None:
        pairs = pairs[active[pairs[:, 0]] | active[pairs[:, 1]]]
    code = np.unique(pairs[:, 0] * n + pairs[:, 1])
    return np.stack([code // n, code % n], axis=1)


def estimate_jaccard(sig: np.ndarray, pairs: np.ndarray, chunk: int = 200_000) -> np.ndarray:
    out = np.empty(len(pairs), dtype=np.float32)
    for lo in range(0, len(pairs), chunk):
        p = pairs[lo: lo + chunk]
        out[lo: lo + chunk] = (sig[p[:, 0]] == sig[p[:, 1]]).mean(axis=1)
    return out


def components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected-component label per node (labels are 0..k-1)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if n == 0:
        return np.zeros(0, dtype=np.int64)
    m = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(m, directed=False)
    return labels.astype(np.int64)


def near_pairs(sig: np.ndarray, has: np.ndarray, config: MinHashConfig,
               active: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Verified near-duplicate pairs (i, j) and their estimated Jaccard similarity."""
    bands, rows = config.band_rows
    idx = np.flatnonzero(has)
    keys = band_keys(sig if idx.size == len(sig) else sig[idx], bands, rows)
    pairs = candidate_pairs(keys, None if active is None else active[idx])
    pairs = idx[pairs] if len(pairs) else pairs
    sim = estimate_jaccard(sig, pairs)
    if config.verify:
        keep = sim >= config.threshold - 1e-6
        pairs, sim = pairs[keep], sim[keep]
    return pairs, sim


def cluster(texts: Sequence[str], config: MinHashConfig = MinHashConfig()) -> np.ndarray:
    """Near-duplicate cluster label per text (one call: signatures, LSH, components).

    >>> cluster(["a b c d e f g", "a b c d e f g!", "something else entirely"]).tolist()
    [0, 0, 1]
    """
    sig, has = signatures(texts, config)
    pairs, _ = near_pairs(sig, has, config)
    return components(len(texts), pairs)
