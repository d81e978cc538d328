"""Stage 2: nearest training neighbours of each benchmark item, by embedding cosine.

The training side goes into a faiss inner-product index (embeddings are L2-normalised,
so inner product is cosine). The index is built in chunks, checkpointed while it grows
(an interrupted build resumes), and persisted under a key of (embedding model, training
texts), so a rerun or a second benchmark reuses it. `index_type="fp16"` or `"sq8"`
halves or quarters the memory per row for training sets of many millions.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import xxhash

from decontam.errors import DecontamError

logger = logging.getLogger(__name__)

INDEX_TYPES = ("flat", "fp16", "sq8")


class Embedder(Protocol):
    model_id: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def default_embedder() -> Embedder:
    """The project's offline default embedder (`curate.embed.Embedder`)."""
    try:
        from curate.embed import Embedder as CurateEmbedder
    except ImportError as exc:
        raise DecontamError("the embedding stage needs curate.embed (pip install -e .)") from exc
    return CurateEmbedder()


def embed_texts(
    texts: Sequence[str], embedder: Embedder, *, max_chars: int = 2000, store: Any | None = None
) -> np.ndarray:
    """Normalised float32 embeddings; texts are cut to `max_chars` first.

    The cut matters: a 3 MB text would otherwise be tokenized in full before the model
    truncates it. `store` (a `curate.embed.EmbeddingStore`) reuses earlier embeddings.
    """
    cut = [(t or "")[:max_chars] for t in texts]
    if not cut:
        return np.zeros((0, 0), dtype=np.float32)
    vecs = store.embed(cut, embedder) if store is not None else embedder.embed(cut)
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vecs / norms


def fingerprint(texts: Iterable[str], model_id: str, max_chars: int) -> str:
    """A key for the training side as the index sees it."""
    h = xxhash.xxh3_128()
    h.update(f"{model_id}\x00{max_chars}\x00".encode())
    n = 0
    for t in texts:
        h.update((t or "")[:max_chars].encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
        n += 1
    return f"{h.hexdigest()[:24]}-{n}"


@dataclass
class Neighbours:
    """Top-k neighbours: `scores[i, j]` is the cosine of test item i and training row `indices[i, j]`."""

    scores: np.ndarray
    indices: np.ndarray


class TrainIndex:
    """A faiss index over the training side's embeddings.

    >>> index = TrainIndex.build(train_texts, embedder, cache_dir=".cache/decontam")  # doctest: +SKIP
    >>> nb = index.search(embed_texts(test_texts, embedder), k=1)                    # doctest: +SKIP
    """

    def __init__(self, index: Any, model_id: str, key: str):
        self.index = index
        self.model_id = model_id
        self.key = key

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        embedder: Embedder,
        *,
        cache_dir: str | Path | None = None,
        chunk_size: int = 4096,
        checkpoint_every: int = 65_536,
        index_type: str = "flat",
        max_chars: int = 2000,
        store: Any | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> TrainIndex:
        if index_type not in INDEX_TYPES:
            raise DecontamError(f"unknown index type {index_type!r}; use one of {', '.join(INDEX_TYPES)}")
        faiss = _faiss()
        key = f"{fingerprint(texts, embedder.model_id, max_chars)}-{index_type}"
        final = partial = meta_path = None
        if cache_dir is not None:
            root = Path(cache_dir)
            root.mkdir(parents=True, exist_ok=True)
            final, partial, meta_path = root / f"{key}.faiss", root / f"{key}.partial.faiss", root / f"{key}.partial.json"
            if final.exists():
                logger.info("reusing embedding index %s", final)
                return cls(faiss.read_index(str(final)), embedder.model_id, key)

        index, done = None, 0
        if partial is not None and partial.exists() and meta_path.exists():
            done = json.loads(meta_path.read_text())["rows_done"]
            index = faiss.read_index(str(partial))
            logger.info("resuming embedding index at row %d of %d", done, len(texts))
        since_checkpoint = 0
        for start in range(done, len(texts), chunk_size):
            vecs = embed_texts(texts[start : start + chunk_size], embedder, max_chars=max_chars, store=store)
            if index is None:
                index = _new_index(faiss, vecs.shape[1], index_type, vecs)
            index.add(vecs)
            since_checkpoint += len(vecs)
            if progress is not None:
                progress(start + len(vecs), len(texts))
            if partial is not None and since_checkpoint >= checkpoint_every and start + chunk_size < len(texts):
                _atomic_write_index(faiss, index, partial)
                _atomic_write_text(meta_path, json.dumps({"rows_done": start + len(vecs)}))
                since_checkpoint = 0
        if index is None:  # an empty training side
            dim = embed_texts(["x"], embedder, max_chars=max_chars).shape[1]
            index = _new_index(faiss, dim, "flat", None)
        if final is not None:
            _atomic_write_index(faiss, index, final)
            for p in (partial, meta_path):
                if p.exists():
                    p.unlink()
        return cls(index, embedder.model_id, key)

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored (for fp16/sq8: decoded) vectors of rows `ids`, without embedding again."""
        if not len(ids):
            return np.zeros((0, self.index.d), np.float32)
        return np.stack([self.index.reconstruct(int(i)) for i in ids]).astype(np.float32, copy=False)

    def search(self, queries: np.ndarray, k: int = 1) -> Neighbours:
        k = max(1, min(k, self.ntotal)) if self.ntotal else 0
        if k == 0 or len(queries) == 0:
            return Neighbours(np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64))
        scores, idx = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return Neighbours(scores, idx)


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise DecontamError("the embedding stage needs faiss: pip install faiss-cpu") from exc
    return faiss


def _new_index(faiss: Any, dim: int, index_type: str, sample: np.ndarray | None) -> Any:
    if index_type == "flat":
        return faiss.IndexFlatIP(dim)
    qtype = faiss.ScalarQuantizer.QT_fp16 if index_type == "fp16" else faiss.ScalarQuantizer.QT_8bit
    index = faiss.IndexScalarQuantizer(dim, qtype, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        if sample is None or len(sample) == 0:
            raise DecontamError("an sq8 index needs training rows to fit its quantizer")
        index.train(sample)
    return index


def _atomic_write_index(faiss: Any, index: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
