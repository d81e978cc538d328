"""The embedding threads setting: MiniLM encodes on `Embedder.threads` torch threads (1 by
default on CPU), whatever the process had set, and puts the process's setting back. These
tests run the torch runtime (`runtime="torch"`); the ONNX one is in test_embed_onnx.py.

torch's CPU kernels pick their partition of the work by thread count and batch shape: the
same text embedded alone gives vectors ~1e-7 apart on 1 and 2 threads (batched chat prompts
were bit-identical in docs/scale.md's measurement). So the vectors an `Embedder` gives must
come from its own setting, not from whatever thread count the process happens to run with.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from click.testing import CliRunner

import curate.models.embed as embed_mod
from curate.core.errors import ConfigError
from curate.models.embed import Embedder, default_threads, set_default_threads, torch_threads

torch = pytest.importorskip("torch")


def _texts(n: int = 24) -> list[str]:
    rng = random.Random(0)
    words = ("the a of how why sort list python rust server data write explain poem function return json "
             "file table query cache merge branch 42 3.14 café").split()
    return [" ".join(rng.choice(words) for _ in range(rng.choice([1, 3, 8, 20, 60, 150]))) for _ in range(n)]


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
    set_default_threads(None)


def _one_by_one(embedder: Embedder, texts: list[str]) -> np.ndarray:
    # one text per call: the batch shapes where the thread count changes the last bits
    return np.concatenate([embedder.embed([t]) for t in texts])


def test_vectors_follow_the_embedders_threads_not_the_process_setting(restore_threads):
    texts = _texts()
    one = Embedder(threads=1, runtime="torch")
    torch.set_num_threads(1)
    on_one = _one_by_one(one, texts)
    torch.set_num_threads(2)
    under_two = _one_by_one(one, texts)
    assert torch.get_num_threads() == 2  # put back after each call
    assert np.array_equal(on_one, under_two)
    # and against the model run bare on one thread: the setting changes nothing else
    torch.set_num_threads(1)
    bare = np.concatenate([one._load().encode([one.prepare(t)], convert_to_numpy=True, normalize_embeddings=True)
                           for t in texts])
    assert np.array_equal(on_one, bare)


def test_other_thread_counts_agree_to_float_rounding(restore_threads):
    """1 and 2 threads may differ in the last bits (measured: <= 1.7e-7), never more."""
    texts = _texts()
    one, two = Embedder(threads=1, runtime="torch"), Embedder(threads=2, runtime="torch")
    gap = np.abs(_one_by_one(one, texts) - _one_by_one(two, texts)).max()
    assert gap <= 1e-6
    batched = np.abs(one.embed(texts) - two.embed(texts)).max()
    assert batched <= 1e-6


def test_threads_zero_leaves_torch_as_it_is(restore_threads):
    torch.set_num_threads(2)
    calls = []
    real = torch.set_num_threads
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch, "set_num_threads", lambda n: (calls.append(n), real(n)))
        Embedder(threads=0, runtime="torch").embed(["hello there"])
        assert calls == []
        Embedder(threads=1, runtime="torch").embed(["hello again"])
        assert calls == [1, 2]
    with torch_threads(3):
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == 2


def test_default_is_one_thread_and_can_be_set(monkeypatch, restore_threads):
    monkeypatch.delenv("CURATE_EMBED_THREADS", raising=False)
    assert default_threads() == 1 and Embedder().threads == 1
    monkeypatch.setenv("CURATE_EMBED_THREADS", "0")
    assert Embedder().threads == 0
    set_default_threads(3)  # the CLI's --embed-threads wins over the environment
    assert Embedder().threads == 3 and Embedder(threads=2, runtime="torch").threads == 2
    set_default_threads(None)
    monkeypatch.setenv("CURATE_EMBED_THREADS", "two")
    with pytest.raises(ConfigError, match="CURATE_EMBED_THREADS"):
        Embedder()
    with pytest.raises(ConfigError, match=">= 0"):
        Embedder(threads=-1)
    with pytest.raises(ConfigError):
        set_default_threads(1.5)  # type: ignore[arg-type]


def test_cli_option_sets_the_default(monkeypatch, tmp_path, restore_threads):
    from curate.cli import main as cli

    seen = []
    monkeypatch.setattr(embed_mod, "set_default_threads", lambda n: seen.append(n))
    result = CliRunner().invoke(cli, ["dedup", "--lake", str(tmp_path / "lake"), "--embed-threads", "2",
                                      "--no-semantic", "--json"])
    assert seen == [2], result.output
    bad = CliRunner().invoke(cli, ["pipeline", "--embed-threads", "-1"])
    assert bad.exit_code == 2 and "embed-threads" in bad.output
