"""MinHash signatures against a plain-Python reference of the documented hashing.

Signatures are persisted in the lake, so the vectorised code must give exactly what the
definition in `curate/dedup/minhash.py` says, whichever path a text takes (numpy word
cutting for ASCII, polars for other text; stacked short documents, `reduceat` for long
ones, block splits). The reference below is written from that definition, one text and one
shingle at a time.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import polars as pl
import pytest

import curate.dedup.minhash as mh
from curate.dedup.minhash import MinHashConfig, signatures

M64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def _poly_hash(values: list[int], base: int) -> int:
    h = sum(v * pow(base, i, 1 << 64) for i, v in enumerate(values)) & M64
    return _splitmix64(h ^ ((len(values) * 0xD6E8FEB86659FD93) & M64))


def _words(text: str) -> list[str]:
    if any(ord(ch) > 0x7F for ch in text):
        text = unicodedata.normalize("NFKC", text)
    # lower-casing and \w as polars does them (the definition the module documents)
    return pl.Series([text]).str.to_lowercase().str.extract_all(r"\w+").to_list()[0]


def reference_signature(text: str, cfg: MinHashConfig) -> np.ndarray | None:
    words = _words(text)
    if cfg.shingle == "word":
        tokens = [_poly_hash([b + 1 for b in w.encode()], int(mh._P_BYTE)) for w in words]
    else:
        tokens = [b + 1 for b in " ".join(words).encode()]
    if not tokens:
        return None
    n = cfg.ngram
    windows = [tokens] if len(tokens) < n else [tokens[i: i + n] for i in range(len(tokens) - n + 1)]
    xs = [_poly_hash(w, int(mh._P_TOKEN)) >> 32 for w in windows]
    a, b = mh._permutations(cfg.num_perm, cfg.seed)
    return np.array([min((int(aj) * x + int(bj)) & 0xFFFFFFFF for x in xs) for aj, bj in zip(a, b)],
                    dtype=np.uint32)


TEXTS = [
    "The cat sat on the mat",
    "THE CAT  sat on the mat!!",
    "",
    "?! ...",
    "a",
    "two words",
    "snake_case and digits 123 4_5",
    "tab\tnew\nline\r\nend",
    "Ünïcödé ＦＵＬＬ width ﬁ ligature",
    "日本語のテキスト です。句読点",
    "Straße STRASSE İstanbul ǅ",
    "emoji 😀 in—between ’quotes’ ①②",
    "a b̀c d\u200de",
    " ".join(f"w{i % 37}" for i in range(400)),  # long: more shingles than _GROUP_MAX
    "x" * 3000,  # one word longer than a small hash block
    "ends with word",  # this text and the next meet without a separator in the byte buffer
    "starts the next",
]


@pytest.mark.parametrize("shingle", ["word", "char"])
@pytest.mark.parametrize("ngram", [1, 3, 5])
def test_signatures_match_the_reference(shingle, ngram):
    cfg = MinHashConfig(shingle=shingle, ngram=ngram, num_perm=16)
    sig, has = signatures(TEXTS, cfg)
    for i, text in enumerate(TEXTS):
        ref = reference_signature(text, cfg)
        assert has[i] == (ref is not None), text
        if ref is None:
            assert (sig[i] == mh._EMPTY).all()
        else:
            np.testing.assert_array_equal(sig[i], ref, err_msg=text)


@pytest.mark.parametrize("block,group_max", [(16, 6), (64, 128)])
def test_block_splits_do_not_change_signatures(monkeypatch, block, group_max):
    """Tiny blocks force every split: hash windows across blocks, a document longer than a
    MinHash block, stacked groups split into several blocks and padded to a shared length,
    chunks of 3 texts."""
    rng = np.random.default_rng(0)
    vocab = ["alpha", "Beta", "gamma", "délta", "ε", "zeta", "eta_1", "日本"]
    texts = TEXTS + [" ".join(rng.choice(vocab, size=int(k))) for k in rng.integers(0, 60, size=200)]
    for shingle in ("word", "char"):
        cfg = MinHashConfig(shingle=shingle, ngram=3, num_perm=32)
        want = signatures(texts, cfg)
        monkeypatch.setattr(mh, "_BLOCK_SHINGLES", block)
        monkeypatch.setattr(mh, "_GROUP_MAX", group_max)
        monkeypatch.setattr(mh, "_HASH_BLOCK", 32)
        mh._power_tables.cache_clear()
        got = signatures(texts, cfg, chunk_texts=3)
        monkeypatch.undo()
        mh._power_tables.cache_clear()
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        for i in rng.choice(len(texts), size=20, replace=False):
            ref = reference_signature(texts[i], cfg)
            if ref is not None:
                np.testing.assert_array_equal(got[0][i], ref, err_msg=texts[i])


def test_all_empty_chunk():
    sig, has = signatures(["", "", "..."], MinHashConfig(num_perm=8))
    assert not has.any() and (sig == mh._EMPTY).all()
