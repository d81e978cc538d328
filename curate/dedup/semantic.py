"""Semantic duplicates: sentence embeddings searched with faiss, pairs above a threshold.

The index holds one vector per distinct text key (the `EmbeddingStore` key of the text as
the model reads it), so the 167 copies of "What is up?" are one vector, found at
similarity 1.0 by construction. Below `exact_max` vectors the index is exact inner product
(`IndexFlatIP`; vectors are L2-normalised, so inner product is cosine similarity); above
it, HNSW (`IndexHNSWFlat`, inner product), which trades a little recall for search time
that no longer grows with the lake. The index is persisted so a new batch is searched
against everything already in the lake.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.atomic import write_text_atomic
from curate.core.errors import ConfigError, LakeError, MissingDependencyError

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SemanticConfig:
    """`threshold`: cosine similarity at or above which two prompts are semantic duplicates
    (0.9 with all-MiniLM-L6-v2 catches rewordings of the same request; 0.8 starts to merge
    different questions on one topic). `k`: neighbours checked per new text."""

    model: str | None = None
    threshold: float = 0.9
    k: int = 10
    exact_max: int = 200_000
    hnsw_m: int = 32
    ef_search: int = 128
    # The cheap-first tier (opt-in): the index holds static vectors (model2vec, distilled
    # from `model`); a neighbour pair with static cosine >= `loose` is a candidate, re-scored
    # by the full model unless its static cosine is >= `accept` (then accepted as it is) or
    # its two texts are already in one cluster (a re-score cannot change the clusters).
    # Fitted on 8,000 calibration prompts (bench_pipeline's generator, seed 1; docs/scale.md):
    # loose 0.80 keeps cluster-pair recall .981 of the full model's; any static accept below
    # 1 merges different requests of one template (precision .45 at 0.97-0.98, .99 at 0.99),
    # so `accept` is off (1.01). On such templated prompts nearly every text is a candidate
    # (98.9% re-embedded), so the tier saves nothing there and stays off by default.
    tier: bool = False
    loose: float = 0.80
    accept: float = 1.01
    # With the pair verifier (the default) the tier only proposes: `propose_k` static neighbours
    # per text at static cosine >= `propose_loose`, of which the full model keeps its own `k` best
    # (`tier_candidates`). Which pairs the verifier sees changes its clusters (it is not
    # transitive), so the proposals must hold the full model's top `k`; on the calibration
    # prompts (benchmarks/fit_dedup_tier.py, generator seed 1) 80 proposals give cluster-pair F1
    # .979 (P .967 / R .990) against the full path, 40 give .976, 10 give .56 (the prompts are
    # template twins with many near-tied neighbours); the cut hardly matters (.3 and .5 equal,
    # .7 loses .002). The full model still embedded 100% of those prompts.
    propose_k: int = 80
    propose_loose: float = 0.5
    # The multilingual channel (opt-in): first prompts are also embedded with USE-multilingual
    # (`curate.models.embed.MultilingualEmbedder`, through the embedding store) and searched in
    # their own persisted index; a neighbour pair written in two scripts (Latin vs CJK,
    # Cyrillic, ...: at dedup time the lake has no language tags yet, so en/es pairs are left to
    # the full model) at USE cosine >= `multi_candidate` goes to the pair verifier, or, with the
    # verifier off, is a duplicate at >= `multi_threshold`. Both fitted on the test bed's
    # calibration translations (English MMLU questions and their Chinese rephrasings, items past
    # 100): 0.53 keeps 98% of those 205 pairs; 0.872 is the lowest USE cut with calibration
    # precision >= .95 in the search protocol (benchmarks/eval_decontam_quality.py xl).
    # None (the default): on with the pair verifier, off without it. With the verifier a pair
    # joins the channel when its two texts' languages differ (`pair_languages_differ`: the
    # script, or for Latin script the stop words of `curate.models.verify.latin_language`), so
    # an English prompt and its Spanish translation are compared too: MiniLM puts 37 of the 44
    # hand translations of the labelled dedup set below cosine .6 (benchmarks/eval_dedup_quality.py).
    multilingual: bool | None = None
    multi_candidate: float = 0.53
    multi_threshold: float = 0.872
    # With the verifier: a USE-multilingual neighbour pair in ONE language (as far as
    # `pair_languages_differ` tells) is a candidate too from this cosine, which MiniLM missed
    # (below `DedupConfig.semantic_candidate`): a loose rewording ("... center a div
    # horizontally and vertically" / "... the exact middle of the page, both axes": MiniLM .51,
    # USE .77) or a translation the stop words do not tell (short Italian or German prompts).
    # None (the default): only pairs whose languages differ. At .75 the labelled dedup set's
    # reworded recall rose .671 -> .684 but the chat set lost a request more (the verifier took
    # "Explain the difference between a Roth IRA and a traditional IRA." / "Explain how to open
    # a Roth IRA."): off until the verifier tells such pairs apart (docs/dedup.md).
    multi_same_language: float | None = None
    # The last-line channel (with the verifier): a multi-line prompt's last line (its question,
    # after a passage, code or a quoted text), at least `last_line_words` words, is embedded on
    # its own and searched against whole prompts (and whole prompts against the last lines), at
    # the same cut and `k`: the question asked alone, reworded, is far from the passage plus the
    # question (41 of the labelled set's 146 MMLU rephrasings never reach cosine .6; 36 of them
    # do against the question line). The verifier then reads the pair's whole-text cosine.
    last_line: bool = True
    last_line_words: int = 5

    def __post_init__(self):
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"semantic threshold must be in (0, 1], got {self.threshold}")
        if self.k < 1 or self.propose_k < self.k:
            raise ConfigError(f"need 1 <= k <= propose_k, got k={self.k}, propose_k={self.propose_k}")
        if not -1.0 <= self.propose_loose <= 1.0:
            raise ConfigError(f"propose_loose must lie in [-1, 1], got {self.propose_loose}")
        if not -1.0 <= self.loose <= self.accept <= 1.01:
            raise ConfigError(f"need -1 <= loose <= accept <= 1.01, got loose={self.loose}, accept={self.accept}")
        if not -1.0 <= self.multi_candidate <= 1.0 or not -1.0 <= self.multi_threshold <= 1.0 or not (
                self.multi_same_language is None or -1.0 <= self.multi_same_language <= 1.0):
            raise ConfigError("multi_candidate, multi_threshold and multi_same_language must lie in [-1, 1]")
        if self.exact_max < 1 or self.hnsw_m < 4 or self.ef_search < 1:
            raise ConfigError("exact_max >= 1, hnsw_m >= 4 and ef_search >= 1 are required")


def last_line(text: str, min_words: int = 5) -> str | None:
    """The last non-empty line of a multi-line text when it has at least `min_words` words and
    is not most of the text (`SemanticConfig.last_line`), else None.

    >>> last_line("Read this passage.\\nIt was a cold winter.\\nWhy did the crops fail that year?")
    'Why did the crops fail that year?'
    >>> last_line("One line only, nothing else to split here.") is None
    True
    """
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    if len(lines) < 2:
        return None
    last = lines[-1]
    if len(last.split()) < min_words or len(last) > 0.8 * len(text.strip()):
        return None
    return last


def pair_languages_differ(a: str, b: str) -> bool:
    """Whether two texts are in different languages, as far as a cheap look can tell: one in a
    non-Latin script and the other not, or a Latin-script text that is clearly Spanish, German,
    French, Italian or Portuguese (`curate.models.verify.latin_language`) against one that is not
    the same. Two English texts (or two untold ones) do not differ."""
    from curate.models.embed import script_language
    from curate.models.verify import latin_language

    def lang(t: str) -> str:
        script = script_language(t)
        return f"script:{script}" if script else (latin_language(t) or "en")

    return lang(a) != lang(b)


def semantic_static_embedder(config: SemanticConfig, embedder):
    """The static model of the cheap-first tier for `embedder`, or None when the tier is off
    or the embedder is not a `curate.models.embed.Embedder` (a test fake, an int8 model)."""
    if not config.tier:
        return None
    from curate.models.embed import Embedder, StaticEmbedder

    if not isinstance(embedder, Embedder) or embedder.quantize:
        return None
    return StaticEmbedder(embedder.model_name)


def _faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - core dependency
        raise MissingDependencyError("semantic dedup needs `pip install faiss-cpu`") from exc
    return faiss


class SemanticIndex:
    """A faiss inner-product index over unique text keys, persisted in one folder.

    >>> idx = SemanticIndex(dim=2)
    >>> idx.add(["a", "b"], np.eye(2, dtype=np.float32))
    >>> idx.pairs(["a"], np.eye(2, dtype=np.float32)[:1], threshold=0.5, k=5)
    []
    """

    def __init__(self, dim: int, config: SemanticConfig = SemanticConfig(), *, index_model_id: str | None = None):
        self.dim = dim
        self.index_model_id = index_model_id  # the model whose vectors the index holds
        self.config = config
        self.keys: list[str] = []
        self.pos: dict[str, int] = {}
        self._index = _faiss().IndexFlatIP(dim)
        self.kind = "flat"

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, keys: list[str], vecs: np.ndarray) -> None:
        """Add vectors of keys not yet in the index (others are ignored)."""
        fresh = [i for i, k in enumerate(keys) if k not in self.pos]
        seen: set[str] = set()
        fresh = [i for i in fresh if not (keys[i] in seen or seen.add(keys[i]))]
        if not fresh:
            return
        vecs = np.ascontiguousarray(vecs[fresh], dtype=np.float32)
        for i in fresh:
            self.pos[keys[i]] = len(self.keys)
            self.keys.append(keys[i])
        self._index.add(vecs)
        if self.kind == "flat" and len(self.keys) > self.config.exact_max:
            self._to_hnsw()

    def _to_hnsw(self) -> None:
        faiss = _faiss()
        vecs = self._index.reconstruct_n(0, self._index.ntotal)
        index = faiss.IndexHNSWFlat(self.dim, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = max(40, self.config.hnsw_m * 2)
        index.add(vecs)
        self._index, self.kind = index, "hnsw"
        log.info("semantic index: %d vectors, switched to HNSW", len(self.keys))

    def vectors(self, keys: list[str]) -> np.ndarray:
        return np.stack([self._index.reconstruct(self.pos[k]) for k in keys]) if keys else np.zeros((0, self.dim), np.float32)

    def search(self, vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.kind == "hnsw":
            self._index.hnsw.efSearch = max(self.config.ef_search, k)
        k = min(k, len(self.keys))
        return self._index.search(np.ascontiguousarray(vecs, dtype=np.float32), k)

    def pairs(self, keys: list[str], vecs: np.ndarray, *, threshold: float, k: int) -> list[tuple[str, str, float]]:
        """(key, neighbour key, similarity) for neighbours of `keys` at or above threshold."""
        if not keys or not self.keys:
            return []
        sims, idx = self.search(vecs, k + 1)
        out = []
        for key, row_s, row_i in zip(keys, sims, idx):
            for s, j in zip(row_s, row_i):
                if j < 0 or s < threshold - 1e-6:
                    continue
                other = self.keys[j]
                if other != key:
                    out.append((key, other, float(min(s, 1.0))))
        return out

    # ---- persistence ------------------------------------------------------------------
    def save(self, folder: Path, meta: dict) -> None:
        """Write a new version folder, then switch the `CURRENT` pointer to it (atomic)."""
        import shutil
        import uuid

        faiss = _faiss()
        from curate.core.lake import write_parquet_atomic

        version = uuid.uuid4().hex[:12]
        target = folder / version
        target.mkdir(parents=True, exist_ok=True, mode=0o750)
        faiss.write_index(self._index, str(target / "index.faiss"))
        write_parquet_atomic(pa.table({"text_key": pa.array(self.keys, pa.string())}), target / "keys.parquet")
        (target / "meta.json").write_text(json.dumps({**meta, "kind": self.kind, "dim": self.dim, "size": len(self.keys)}))
        write_text_atomic(folder / "CURRENT", version, fsync=True)
        for old in folder.iterdir():
            if old.is_dir() and old.name != version:
                shutil.rmtree(old, ignore_errors=True)

    @staticmethod
    def stored_meta(folder: Path) -> dict | None:
        current = folder / "CURRENT"
        if not current.exists():
            return None
        return json.loads((folder / current.read_text().strip() / "meta.json").read_text())

    @classmethod
    def load(cls, folder: Path, dim: int, config: SemanticConfig, *, index_model_id: str | None = None) -> "SemanticIndex":
        idx = cls(dim, config, index_model_id=index_model_id)
        if not (folder / "CURRENT").exists():
            return idx
        target = folder / (folder / "CURRENT").read_text().strip()
        meta = json.loads((target / "meta.json").read_text())
        stored = meta.get("index_model_id", meta.get("model_id"))
        if index_model_id is not None and stored is not None and stored != index_model_id:
            raise ConfigError(f"the semantic index at {folder} holds vectors of {stored!r}, not {index_model_id!r} "
                              "(the cheap-first tier switched on or off, or its static model changed); "
                              "keep the setting or use a new dedup table")
        index = _faiss().read_index(str(target / "index.faiss"))
        keys = pq.read_table(target / "keys.parquet").column("text_key").to_pylist()
        if index.ntotal != len(keys) or index.d != dim:
            raise LakeError(f"semantic index at {target} is inconsistent ({index.ntotal} vectors, {len(keys)} keys, "
                            f"dim {index.d} vs {dim}); delete {folder} and rerun with a fresh dedup table")
        idx._index = index
        idx.kind = "hnsw" if "HNSW" in type(index).__name__ else "flat"
        idx.keys = keys
        idx.pos = {k: i for i, k in enumerate(keys)}
        return idx


@dataclass
class TierResult:
    """What the cheap-first search found: accepted pairs (key, key, cosine, decided by) and
    the vectors it used (full where it re-scored, static for every key it saw)."""

    pairs: list[tuple[str, str, float]]
    full: dict[str, np.ndarray]
    static: dict[str, np.ndarray]
    proposed: int = 0
    accepted_static: int = 0
    rescored: int = 0
    skipped_same_cluster: int = 0
    full_embedded: int = 0

    def cosine(self, a: str | None, b: str | None) -> float | None:
        """The full model's cosine of two keys when both were re-scored, else the static one."""
        if a is None or b is None:
            return None
        if a == b:
            return 1.0
        fa, fb = self.full.get(a), self.full.get(b)
        if fa is not None and fb is not None:
            return float(min(np.dot(fa, fb), 1.0))
        sa, sb = self.static.get(a), self.static.get(b)
        return float(min(np.dot(sa, sb), 1.0)) if sa is not None and sb is not None else None


def tier_pairs(index: SemanticIndex, keys: list[str], texts: list[str], static_vecs: np.ndarray, full_embed, *,
               full_known=None, config: SemanticConfig, chunk: int = 2048) -> TierResult:
    """Semantic-duplicate pairs of `keys` against `index` (static vectors, `keys` already added).

    `full_embed(texts) -> vectors` is the full model (through the embedding store);
    `full_known(key)` returns a vector the store already holds for a key (older batches'
    texts, whose text this batch does not have), or None. Candidates are processed in
    order of static cosine (highest first, ties by key), so a pair whose texts are already
    joined is skipped: the clusters are those of the full model's decisions on the
    candidates, less the pairs accepted on static cosine >= `accept`.
    """
    text_of = dict(zip(keys, texts))
    cands = index.pairs(keys, static_vecs, threshold=config.loose, k=config.k)
    seen: set[tuple[str, str]] = set()
    uniq = []
    for a, b, s in cands:
        pair = (a, b) if a < b else (b, a)
        if pair not in seen:
            seen.add(pair)
            uniq.append((pair[0], pair[1], s))
    uniq.sort(key=lambda p: (-p[2], p[0], p[1]))
    static = dict(zip(keys, static_vecs))
    for a, b, _ in uniq:
        for k in (a, b):
            if k not in static:
                static[k] = index.vectors([k])[0]
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    out = TierResult([], {}, static, proposed=len(uniq))
    band = []
    for a, b, s in uniq:
        if s >= config.accept:
            out.pairs.append((a, b, s))
            out.accepted_static += 1
            union(a, b)
        else:
            band.append((a, b, s))
    for lo in range(0, len(band), chunk):
        todo = []
        for a, b, s in band[lo: lo + chunk]:
            if find(a) == find(b):
                out.skipped_same_cluster += 1
            else:
                todo.append((a, b, s))
        need = sorted({k for a, b, _ in todo for k in (a, b)} - out.full.keys())
        _fill_full(out, need, text_of, full_embed, full_known)
        for a, b, s in todo:
            if find(a) == find(b):
                out.skipped_same_cluster += 1
                continue
            fa, fb = out.full.get(a), out.full.get(b)
            if fa is None or fb is None:  # an older text never embedded in full: its static cosine decides
                cos = s
            else:
                cos = float(min(np.dot(fa, fb), 1.0))
                out.rescored += 1
            if cos >= config.threshold - 1e-6:
                out.pairs.append((a, b, cos))
                union(a, b)
    return out


def _fill_full(out: TierResult, need: list[str], text_of: dict[str, str], full_embed, full_known) -> None:
    """Put the full model's vector of each key in `need` into `out.full`: from `full_known`
    (vectors already stored) where it has one, else embedded (counted in `out.full_embedded`)."""
    if full_known is not None:
        for k in need:
            v = full_known(k)
            if v is not None:
                out.full[k] = v
    embed = [k for k in need if k not in out.full and k in text_of]
    if embed:
        out.full.update(zip(embed, full_embed([text_of[k] for k in embed])))
        out.full_embedded += len(embed)


def tier_candidates(index: SemanticIndex, keys: list[str], texts: list[str], static_vecs: np.ndarray, full_embed, *,
                    full_known=None, config: SemanticConfig, cut: float) -> TierResult:
    """The full path's candidate pairs, found through the static index: each key's `k`
    nearest neighbours by the full model's cosine, at or above `cut` (for the pair verifier,
    which decides; nothing is accepted or skipped here).

    The static index proposes `config.propose_k` neighbours per key at static cosine >=
    `config.propose_loose`; the full model re-scores them (vectors through `full_embed`/`full_known`,
    as in `tier_pairs`) and keeps the `k` best. The verifier's clusters depend on which pairs
    it sees, so the candidates must be the full model's own top `k`, not the static model's.
    """
    text_of = dict(zip(keys, texts))
    proposals: dict[str, list[str]] = {}
    for a, b, _ in index.pairs(keys, static_vecs, threshold=config.propose_loose, k=config.propose_k):
        proposals.setdefault(a, []).append(b)
    static = dict(zip(keys, static_vecs))
    out = TierResult([], {}, static, proposed=sum(len(v) for v in proposals.values()))
    _fill_full(out, sorted({k for a, bs in proposals.items() for k in (a, *bs)}), text_of, full_embed, full_known)
    best: dict[tuple[str, str], float] = {}
    for a in keys:
        fa = out.full.get(a)
        if fa is None:
            continue
        scored = []
        for b in proposals.get(a, []):
            fb = out.full.get(b)
            if fb is None:  # an older text never embedded in full: its static cosine stands in
                if b not in static:
                    static[b] = index.vectors([b])[0]
                cos = float(min(np.dot(static[a], static[b]), 1.0))
            else:
                cos = float(min(np.dot(fa, fb), 1.0))
            if cos >= cut - 1e-6:
                scored.append((-cos, b))
        scored.sort()
        for neg, b in scored[: config.k]:
            pair = (a, b) if a < b else (b, a)
            best[pair] = max(-neg, best.get(pair, -neg))
            out.rescored += 1
    out.pairs = [(a, b, s) for (a, b), s in sorted(best.items())]
    return out
