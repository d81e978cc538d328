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

from curate.core.errors import ConfigError

log = logging.getLogger(__name__)

HASH_VERSION = 1  # bump when the shingling or hashing changes: persisted signatures are then stale

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_P_BYTE = np.uint64(0x100000001B3)  # odd multipliers for the rolling hashes
_P_TOKEN = np.uint64(0x9E3779B97F4A7C15)
_EMPTY = np.uint32(0xFFFFFFFF)
# Shingles per MinHash block: the (permutations x shingles) uint32 work array is 8 MB at
# 128 permutations, big enough that numpy's inner loops are long, small enough for L3.
_BLOCK_SHINGLES = 1 << 14
# Documents with at most this many shingles are stacked by shingle count (`_minhash_into`).
_GROUP_MAX = 128
# Tokens per rolling-hash block (`_window_hashes`): its uint64 temporaries stay in L2.
_HASH_BLOCK = 1 << 15


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


def recall_band_rows(threshold: float, num_perm: int, *, target: float = 0.99) -> tuple[int, int]:
    """(bands, rows) with the most rows (fewest false candidates) at which a pair of Jaccard
    `threshold` is still a candidate with probability >= `target`. For verified candidates
    (each one's estimated Jaccard is checked, then the pair verifier's), where a false
    candidate costs one comparison and a missed one loses a duplicate: `optimal_band_rows`
    balances the two and makes a pair at the threshold a candidate only about half the time
    (16 x 8 at 0.65: 0.44).

    >>> recall_band_rows(0.65, 128)
    (32, 4)
    """
    for r in range(num_perm, 0, -1):
        b = num_perm // r
        if 1 - (1 - threshold**r) ** b >= target:
            return b, r
    return num_perm, 1


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


@functools.lru_cache(maxsize=4)
def _power_tables(base: int) -> tuple[np.ndarray, np.ndarray]:
    """base**i and base**-i mod 2**64 for i <= _HASH_BLOCK (read-only, shared by every call)."""
    pw = _powers(np.uint64(base), _HASH_BLOCK + 1)
    inv = _powers(np.uint64(_inverse_mod64(base)), _HASH_BLOCK + 1)
    pw.flags.writeable = inv.flags.writeable = False
    return pw, inv


def _window_hashes(tokens: np.ndarray, starts: np.ndarray, ends: np.ndarray, base: np.uint64,
                   lut: np.ndarray | None = None) -> np.ndarray:
    """Polynomial hash of tokens[starts[k]:ends[k]] for every k, from prefix sums.

    `starts` and `ends` must be non-decreasing. `lut`, if given, maps tokens (uint8) to
    their values first. The windows are taken in blocks spanning at most _HASH_BLOCK
    tokens, each with a prefix sum of its own (the hash of a window does not depend on
    where its prefix sum starts), so every temporary stays in cache.
    """
    out = np.empty(starts.shape[0], dtype=np.uint64)
    pw_all, inv_all = _power_tables(int(base))
    w0 = 0
    while w0 < starts.shape[0]:
        s = int(starts[w0])
        w1 = max(int(np.searchsorted(ends, s + _HASH_BLOCK, side="right")), w0 + 1)
        e = int(ends[w1 - 1])
        seg = tokens[s:e] if lut is None else lut[tokens[s:e]]
        if e - s <= _HASH_BLOCK:
            pw, inv = pw_all, inv_all
        else:  # one window longer than a block
            pw, inv = _powers(base, e - s + 1), _powers(np.uint64(_inverse_mod64(base)), e - s + 1)
        prefix = np.empty(e - s + 1, dtype=np.uint64)
        prefix[0] = 0
        np.multiply(seg, pw[: e - s], out=prefix[1:])
        np.cumsum(prefix[1:], dtype=np.uint64, out=prefix[1:])
        st = starts[w0:w1] - s
        en = ends[w0:w1] - s
        h = prefix[en]
        h -= prefix[st]
        h *= inv[st]
        h ^= (en - st).astype(np.uint64) * np.uint64(0xD6E8FEB86659FD93)
        out[w0:w1] = _splitmix64(h)
        w0 = w1
    return out


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


# Token value of a byte: the byte lower-cased (ASCII) plus one.
_BYTE_TOKEN = np.arange(1, 257, dtype=np.uint64)
_BYTE_TOKEN[ord("A") : ord("Z") + 1] += np.uint64(32)


def _word_bytes(data: np.ndarray) -> np.ndarray:
    """Mask of word bytes: ASCII [0-9A-Za-z_] (what `\\w` matches among ASCII characters)
    and every byte >= 0x80, which only occur in texts polars already cut into words."""
    low = data | np.uint8(0x20)
    low -= np.uint8(ord("a"))
    w = low < 26
    digit = data - np.uint8(ord("0"))
    w |= digit < 10
    w |= data == ord("_")
    w |= data >= 0x80
    return w


def _word_bounds(w: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end positions of the runs of word bytes in `w`, none running across two
    texts (`offsets`)."""
    edge = np.empty(w.size + 1, dtype=bool)
    if w.size:
        edge[0], edge[-1] = w[0], w[-1]
        np.not_equal(w[1:], w[:-1], out=edge[1:-1])
    else:
        edge[0] = False
    change = np.flatnonzero(edge)  # start, end, start, end, ...
    # a word ending one text and a word starting the next: split them
    inner = np.unique(offsets[(offsets > 0) & (offsets < w.size)])
    joined = inner[w[inner] & w[inner - 1]]
    if joined.size:
        change = np.insert(change, np.searchsorted(change, joined), joined)
        change = np.insert(change, np.searchsorted(change, joined), joined)
    return change[0::2].copy(), change[1::2].copy()  # contiguous: the hashing gathers run 30% faster


def tokenize(texts: Sequence[str], shingle: str) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (uint64) of all texts concatenated, and per-text offsets (len n+1)."""
    import polars as pl

    series = pl.Series(texts, dtype=pl.String).fill_null("")
    offsets, data = _arrow_strings(series.to_arrow())
    data = data[offsets[0]: offsets[-1]]
    offsets = offsets - offsets[0]
    # ASCII text is cut into words here with numpy (lower-casing and \w are byte tests).
    # Other text needs NFKC, Unicode lower-casing and Unicode \w: polars does those and
    # hands back the words joined by single spaces, which the byte pass then cuts exactly as
    # polars did.
    nonempty = np.flatnonzero(offsets[1:] > offsets[:-1])
    if nonempty.size:
        odd = nonempty[np.maximum.reduceat(data, offsets[nonempty]) >= 0x80]
        if odd.size:
            fixed = (series.gather(odd).str.normalize("NFKC").str.to_lowercase()
                     .str.extract_all(r"\w+").list.join(" "))
            offsets, data = _arrow_strings(series.scatter(odd, fixed).to_arrow())
            data = data[offsets[0]: offsets[-1]]
            offsets = offsets - offsets[0]
    w = _word_bytes(data)
    starts, ends = _word_bounds(w, offsets)
    doc_words = np.searchsorted(starts, offsets)
    if shingle == "char":
        # the words of each text joined by single spaces: word bytes plus one space after
        # every word but a text's last
        keep = w
        last = doc_words[1:][np.diff(doc_words) > 0] - 1
        gap = np.ones(starts.size, dtype=bool)
        gap[last] = False
        gap_pos = ends[gap]
        keep[gap_pos] = True
        vals = _BYTE_TOKEN[data]
        vals[gap_pos] = np.uint64(ord(" ") + 1)
        word_bytes = np.zeros(starts.size + 1, dtype=np.int64)
        np.cumsum(ends - starts, out=word_bytes[1:])
        n_words = np.diff(doc_words)
        lengths = np.diff(word_bytes[doc_words]) + np.maximum(n_words - 1, 0)
        out_off = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=out_off[1:])
        return vals[keep], out_off
    tokens = _window_hashes(data, starts, ends, _P_BYTE, lut=_BYTE_TOKEN)
    return tokens, doc_words.astype(np.int64)


def shingle_hashes(tokens: np.ndarray, offsets: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of every text, and per-text counts (0 for a text with no token)."""
    lengths = np.diff(offsets)
    counts = np.where(lengths >= ngram, lengths - ngram + 1, np.minimum(lengths, 1))
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.uint64), counts
    first = np.cumsum(counts) - counts
    starts = np.arange(total, dtype=np.int64)
    starts += np.repeat(offsets[:-1] - first, counts)
    ends = np.minimum(starts + ngram, np.repeat(offsets[1:], counts))
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
    # every row with a shingle is written by `_minhash_into`; the others get _EMPTY below
    # (np.full would write the whole array once more)
    sig = np.empty((n, config.num_perm), dtype=np.uint32)
    has = np.zeros(n, dtype=bool)
    a, b = _permutations(config.num_perm, config.seed)
    for lo in range(0, n, chunk_texts):
        part = texts[lo: lo + chunk_texts]
        tokens, offsets = tokenize(part, config.shingle)
        shingles, counts = shingle_hashes(tokens, offsets, config.ngram)
        has[lo: lo + len(part)] = counts > 0
        _minhash_into(shingles, counts, a, b, sig[lo: lo + len(part)])
    sig[~has] = _EMPTY
    return sig, has


def _padded_length(c: np.ndarray) -> np.ndarray:
    """Shingle count rounded up so that documents of similar length share a block: exact
    up to 16, then to 1/8 of the power of two below (at most 12.5% padding)."""
    step = np.maximum(1, (1 << np.maximum(0, np.floor(np.log2(np.maximum(c, 1))).astype(np.int64) - 3)))
    return np.where(c <= 16, c, -(-c // step) * step)


def _permute_into(work: np.ndarray, a: np.ndarray, b: np.ndarray, x: np.ndarray) -> None:
    """work = a * x + b (uint32, wrapping), broadcast: every permutation of every shingle."""
    np.multiply(a, x, out=work)
    np.add(work, b, out=work)


def _minhash_into(shingles: np.ndarray, counts: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    docs = np.flatnonzero(counts)
    if docs.size == 0:
        return
    c = counts[docs].astype(np.int64)
    first = np.cumsum(c) - c
    x = (shingles >> np.uint64(32)).astype(np.uint32)
    # Documents of (about) the same shingle count k are stacked into a (k x docs) block, a
    # shorter one padded with repeats of its last shingle (the minimum does not change),
    # and the permutations applied as one (permutations x k x docs) array: the minimum over
    # shingles is then an element-wise minimum of whole rows, where `minimum.reduceat`
    # pays a call per (document, permutation) segment, 3x the cost at 20 shingles.
    # One work buffer serves every block (a fresh 8 MB array per block costs its page
    # faults); a block holds at most max(_BLOCK_SHINGLES, _GROUP_MAX) shingles and padding
    # adds at most 12.5%.
    buf = np.empty(a.shape[0] * min(max(_BLOCK_SHINGLES, _GROUP_MAX), 2 * int(c.sum())), dtype=np.uint32)
    short = np.flatnonzero(c <= _GROUP_MAX)
    if short.size:
        k_of = _padded_length(c[short])
        order = np.argsort(k_of, kind="stable")
        short, k_sorted = short[order], k_of[order]
        bounds = np.flatnonzero(np.diff(k_sorted)) + 1
        for lo, hi in zip(np.concatenate(([0], bounds)), np.concatenate((bounds, [short.size]))):
            k = int(k_sorted[lo])
            per = max(1, _BLOCK_SHINGLES // k)
            steps = np.arange(k)[:, None]
            for blo in range(lo, hi, per):
                sel = short[blo: min(hi, blo + per)]
                block = x[first[sel] + np.minimum(steps, c[sel] - 1)]  # (k, docs)
                work = buf[: a.shape[0] * block.size].reshape(a.shape[0], k, sel.size)
                _permute_into(work, a[:, None, None], b[:, None, None], block[None])
                out[docs[sel]] = np.minimum.reduce(work, axis=1).T
    # Longer documents: (permutations x shingles) blocks of whole documents, `reduceat` per
    # document (its segments are long, so its per-segment cost is small).
    long_ = np.flatnonzero(c > _GROUP_MAX)
    cum = np.cumsum(c[long_])
    i = 0
    while i < long_.size:
        done = int(cum[i - 1]) if i else 0
        j = max(i + 1, int(np.searchsorted(cum, done + _BLOCK_SHINGLES, side="right")))
        sel = long_[i:j]
        if c[sel[0]] > _BLOCK_SHINGLES:  # one document larger than a block
            s0, n0 = int(first[sel[0]]), int(c[sel[0]])
            acc = np.full(a.shape[0], _EMPTY, dtype=np.uint32)
            for q in range(s0, s0 + n0, _BLOCK_SHINGLES):
                xs = x[q: min(s0 + n0, q + _BLOCK_SHINGLES)]
                work = buf[: a.shape[0] * xs.size].reshape(a.shape[0], xs.size)
                _permute_into(work, a[:, None], b[:, None], xs[None, :])
                np.minimum(acc, work.min(axis=1), out=acc)
            out[docs[sel[0]]] = acc
        else:
            lens = c[sel]
            seg = np.cumsum(lens) - lens
            idx = np.arange(int(lens.sum()), dtype=np.int64) + np.repeat(first[sel] - seg, lens)
            work = buf[: a.shape[0] * idx.size].reshape(a.shape[0], idx.size)
            _permute_into(work, a[:, None], b[:, None], x[idx][None, :])
            out[docs[sel]] = np.minimum.reduceat(work, seg, axis=1).T
        i = j


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
