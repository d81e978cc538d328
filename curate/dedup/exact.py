"""Exact dedup: a hash of normalised text.

Normalisation: Unicode NFKC, case-folded, every run of whitespace collapsed to one space,
ends stripped. "Hello  World" and "hello world\\n" share a key; "hello, world" does not
(punctuation is left to near-duplicate detection).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import xxhash


def normalize_text(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed.

    >>> normalize_text("  Ｈello\\u00a0 WORLD\\n")
    'hello world'
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def exact_key(text: str) -> str:
    """xxh3-128 hex digest of the normalised text."""
    return xxhash.xxh3_128_hexdigest(normalize_text(text).encode("utf-8", "surrogatepass"))


def exact_keys(texts: Iterable[str]) -> list[str]:
    return [exact_key(t) for t in texts]
