"""Embedding speed work: each distinct prepared text is encoded once; the static tier."""

from __future__ import annotations

import numpy as np
import pytest

from curate.models.embed import Embedder


class FakeSentenceTransformer:
    max_seq_length = 16

    def __init__(self):
        self.seen: list[str] = []

    def get_sentence_embedding_dimension(self):
        return 4

    def encode(self, texts, **kw):
        self.seen += list(texts)
        out = np.array([[len(t), t.count("a"), 1.0, 0.0] for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_embed_encodes_each_prepared_text_once():
    emb = Embedder("fake-model", device="cpu")
    emb._model = FakeSentenceTransformer()
    texts = ["hi", "hi", "a  cat", "a cat", "hi", "banana"]
    vecs = emb.embed(texts)
    assert emb._model.seen == ["hi", "a cat", "banana"]
    assert vecs.shape == (6, 4)
    np.testing.assert_array_equal(vecs[0], vecs[4])
    np.testing.assert_array_equal(vecs[2], vecs[3])
    assert not np.allclose(vecs[0], vecs[5])


def test_quantized_embedder_has_its_own_model_id():
    assert Embedder("m", device="cpu", quantize=True, runtime="torch").model_id == "m+int8"
    assert Embedder("m", device="cpu", quantize=True, runtime="onnx").model_id == "m+int8pc-onnx"
    # full precision: ONNX Runtime gives the torch vectors to float rounding, so the store shares them
    assert Embedder("m", device="cpu", runtime="onnx").model_id == Embedder("m", device="cpu", runtime="torch").model_id == "m"


@pytest.mark.slow
def test_static_tier_neighbours_follow_the_full_model():
    """model2vec distilled from the shipped MiniLM (one-off, cached in the user cache)."""
    from curate.models.embed import STATIC_PCA_DIMS, StaticEmbedder

    st = StaticEmbedder()
    texts = ["What is the capital of Australia?", "Which city is the capital of Australia?",
             "How do I bake sourdough bread?", ""]
    v = st.embed(texts)
    assert v.shape == (4, STATIC_PCA_DIMS) and np.allclose(np.linalg.norm(v[:3], axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]
    assert not v[3].any()
    again = StaticEmbedder()  # the distilled model comes back from the cache
    np.testing.assert_allclose(again.embed(texts), v, atol=1e-6)
    assert not again.distilled
