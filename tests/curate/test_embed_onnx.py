"""The ONNX runtime of the embedding model: MiniLM exported once to ONNX (cached in the user
cache, rebuilt when its source or libraries change) and run by ONNX Runtime on the CPU.

Its vectors must be the torch runtime's to float rounding (the two share a model id, so a lake
embedded by one is read by the other), on every kind of text the pipeline sends: empty, one
word, accents and other scripts, texts past the model's 256 tokens.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from curate.core.errors import ConfigError
from curate.models.embed import (
    Embedder,
    OnnxExport,
    default_model_path,
    default_runtime,
    set_default_runtime,
)

pytest.importorskip("onnxruntime")


def _texts() -> list[str]:
    rng = random.Random(1)
    words = ("the a of how why sort list python rust server data write explain poem function return json "
             "café naïve Straße 東京 Москва 42 3.14 `x = [1, 2]` {json: true}").split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.choice([1, 3, 8, 20, 60, 400]))) for _ in range(40)]
    return texts + ["", "hi", "  leading and trailing  ", "How do I reverse a list in Python?",
                    "¿Cómo invierto una lista en Python?", "如何在 Python 中反转列表？", "a\nb\n\nc"]


@pytest.fixture
def restore_runtime():
    yield
    set_default_runtime(None)


def test_onnx_vectors_are_the_torch_vectors():
    texts = _texts()
    onnx, torch = Embedder(runtime="onnx"), Embedder(runtime="torch")
    assert onnx.model_id == torch.model_id and onnx.dim == torch.dim and onnx.max_chars == torch.max_chars
    a, b = onnx.embed(texts), torch.embed(texts)
    assert a.shape == b.shape == (len(texts), 384) and a.dtype == np.float32
    assert np.abs(a - b).max() < 1e-5  # measured ~3e-7
    # a text alone gets the vector it gets in a batch of other lengths (no padding leaks in)
    alone = np.concatenate([onnx.embed([t]) for t in texts[:8]])
    assert np.abs(alone - a[:8]).max() < 1e-5


def test_onnx_int8_is_its_own_model_and_close_to_the_full_one():
    texts = _texts()
    q = Embedder(runtime="onnx", quantize=True)
    assert q.model_id.endswith("+int8pc-onnx")
    cos = (q.embed(texts) * Embedder(runtime="onnx").embed(texts)).sum(axis=1)
    assert cos.mean() > 0.95 and not np.allclose(cos, 1.0, atol=1e-4)


def test_the_export_is_cached_and_keyed_by_its_source(tmp_path):
    source = default_model_path()
    first = OnnxExport(source, cache_dir=tmp_path)
    folder = first.path()
    assert first.exported and {p.name for p in folder.iterdir()} == {"model.onnx", "tokenizer.json", "meta.json"}
    again = OnnxExport(source, cache_dir=tmp_path)
    assert again.path() == folder and not again.exported  # read back, not exported twice
    assert OnnxExport(source, cache_dir=tmp_path, quantize=True).folder != folder
    # a changed source file gives another key (a copy of the model with one file edited)
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    assert OnnxExport(str(copy), name="m", cache_dir=tmp_path).key == first.key  # same bytes, same key
    (copy / "config_sentence_transformers.json").write_text("{}")
    assert OnnxExport(str(copy), name="m", cache_dir=tmp_path).key != first.key


def test_a_model_it_cannot_export_is_refused(tmp_path):
    from sentence_transformers import SentenceTransformer, models

    # a CLS-pooled model: the export pools by the mean only
    st = SentenceTransformer(default_model_path(), device="cpu")
    word = st[0]
    cls = SentenceTransformer(modules=[word, models.Pooling(st.get_embedding_dimension(), pooling_mode="cls")])
    cls.save(str(tmp_path / "cls"))
    with pytest.raises(ConfigError, match="runtime='torch'"):
        OnnxExport(str(tmp_path / "cls"), cache_dir=tmp_path / "cache").path()
    assert not (tmp_path / "cache" / "onnx").exists() or not any(
        p for p in (tmp_path / "cache" / "onnx").iterdir() if not p.name.startswith("."))


def test_runtime_setting(monkeypatch, restore_runtime):
    monkeypatch.delenv("CURATE_EMBED_RUNTIME", raising=False)
    assert default_runtime() == "onnx" and Embedder().runtime == "onnx"
    monkeypatch.setenv("CURATE_EMBED_RUNTIME", "torch")
    assert Embedder().runtime == "torch"
    set_default_runtime("onnx")  # the CLI's --embed-runtime wins over the environment
    assert Embedder().runtime == "onnx" and Embedder(runtime="torch").runtime == "torch"
    assert Embedder(device="cuda").runtime == "torch"  # a GPU runs torch
    set_default_runtime(None)
    monkeypatch.setenv("CURATE_EMBED_RUNTIME", "tensorrt")
    with pytest.raises(ConfigError, match="CURATE_EMBED_RUNTIME"):
        Embedder()
    with pytest.raises(ConfigError, match="onnx, torch"):
        Embedder(runtime="jax")


def test_cli_option_sets_the_runtime(monkeypatch, tmp_path, restore_runtime):
    from click.testing import CliRunner

    import curate.models.embed as embed_mod
    from curate.cli import main as cli

    seen = []
    monkeypatch.setattr(embed_mod, "set_default_runtime", lambda r: seen.append(r))
    result = CliRunner().invoke(cli, ["dedup", "--lake", str(tmp_path / "lake"), "--embed-runtime", "torch",
                                      "--no-semantic", "--json"])
    assert seen == ["torch"], result.output
    bad = CliRunner().invoke(cli, ["pipeline", "--embed-runtime", "tf"])
    assert bad.exit_code == 2 and "embed-runtime" in bad.output
