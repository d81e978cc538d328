"""The cheap-first tier of semantic dedup (`dedup_semantic.tier_pairs`) and its static model."""

import numpy as np
import pytest

from curate.dedup.semantic import SemanticConfig, SemanticIndex, tier_pairs


def _unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _clusters(keys, pairs):
    parent = {k: k for k in keys}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b, _ in pairs:
        parent[find(a)] = find(b)
    groups = {}
    for k in keys:
        groups.setdefault(find(k), set()).add(k)
    return sorted(sorted(g) for g in groups.values())


def test_tier_clusters_equal_the_full_models_on_its_candidates():
    rng = np.random.default_rng(0)
    centres = _unit(rng.normal(size=(6, 16)))
    full = _unit(np.repeat(centres, 5, axis=0) + 0.25 * rng.normal(size=(30, 16)))  # 6 topics x 5 texts
    static = _unit(full + 0.15 * rng.normal(size=full.shape))  # a noisier copy of the full space
    keys = [f"k{i:02d}" for i in range(30)]
    calls = []

    def full_embed(texts):
        calls.append(list(texts))
        return full[[int(t[1:]) for t in texts]]

    config = SemanticConfig(threshold=0.9, k=29, loose=-1.0, accept=1.01, exact_max=1000)
    index = SemanticIndex(16, config)
    index.add(keys, static)
    got = tier_pairs(index, keys, keys, static, full_embed, config=config)
    # the full model's own decisions over all pairs
    sims = full @ full.T
    want = [(keys[i], keys[j], float(sims[i, j])) for i in range(30) for j in range(i + 1, 30) if sims[i, j] >= 0.9]
    assert _clusters(keys, got.pairs) == _clusters(keys, want)
    assert all(s >= 0.9 - 1e-6 for _, _, s in got.pairs)
    assert got.accepted_static == 0 and got.rescored > 0
    assert sum(len(c) for c in calls) == got.full_embedded <= 30  # each text embedded once


def test_tier_accepts_above_accept_skips_joined_pairs_and_never_rescores_below_loose():
    v = _unit([[1, 0, 0], [0.99, 0.14, 0], [0.98, 0.2, 0.0], [0, 1, 0], [0, 0, 1]])
    keys = ["a", "b", "c", "d", "e"]
    embedded = []

    def full_embed(texts):
        embedded.extend(texts)
        return v[[keys.index(t) for t in texts]]

    config = SemanticConfig(threshold=0.9, k=4, loose=0.5, accept=0.995, exact_max=100)
    index = SemanticIndex(3, config)
    index.add(keys, v)
    got = tier_pairs(index, keys, keys, v, full_embed, config=config)
    assert _clusters(keys, got.pairs) == [["a", "b", "c"], ["d"], ["e"]]
    assert got.accepted_static == 1  # a-b (0.990.. >= accept? no: only pairs >= 0.995)  or b-c
    assert "d" not in embedded and "e" not in embedded  # below `loose`: never proposed
    assert got.skipped_same_cluster == 1  # the third pair of a, b, c joins nothing new
    assert got.cosine("a", "a") == 1.0


def test_semantic_config_checks_the_tier_cuts():
    from curate.core.errors import ConfigError

    with pytest.raises(ConfigError):
        SemanticConfig(loose=0.95, accept=0.9)


def test_static_model_cache_is_keyed_by_its_source(tmp_path):
    """The cache logic alone, with a cheap stand-in for the distillation (a StaticModel of
    seeded random rows over the shipped MiniLM tokenizer): a second instance reads the cache
    and distils nothing; a changed source gets a new key and is distilled again."""
    pytest.importorskip("model2vec")
    import shutil

    from model2vec import StaticModel
    from tokenizers import Tokenizer

    from curate.models.embed import StaticEmbedder, default_model_path

    calls = []

    def distil(source, pca_dims):
        calls.append(source)
        tok = Tokenizer.from_file(str(__import__("pathlib").Path(source) / "tokenizer.json"))
        rng = np.random.default_rng(len(calls))
        return StaticModel(vectors=rng.normal(size=(tok.get_vocab_size(), pca_dims)).astype(np.float32), tokenizer=tok)

    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(__import__("pathlib").Path(default_model_path()) / "tokenizer.json", source / "tokenizer.json")
    (source / "weights.bin").write_bytes(b"one")
    texts = ["how do I sort a list", "banana bread recipe"]
    first = StaticEmbedder(str(source), cache_dir=tmp_path / "c", pca_dims=8, distil=distil)
    v1 = first.embed(texts)
    assert first.distilled and v1.shape == (2, 8) and len(calls) == 1
    cached = StaticEmbedder(str(source), cache_dir=tmp_path / "c", pca_dims=8, distil=distil)
    np.testing.assert_array_equal(cached.embed(texts), v1)
    assert not cached.distilled and cached.model_id == first.model_id and len(calls) == 1
    (source / "weights.bin").write_bytes(b"two")  # the source model changed
    changed = StaticEmbedder(str(source), cache_dir=tmp_path / "c", pca_dims=8, distil=distil)
    assert changed.model_id != first.model_id
    changed.embed(texts)
    assert changed.distilled and len(calls) == 2


@pytest.mark.slow  # three real distillations: minutes on a loaded 2-core machine (timed out at load 75)
def test_static_model_is_cached_keyed_by_its_source_and_deterministic(tmp_path):
    """Real model2vec distillation of a tiny random BERT (the shipped MiniLM's tokenizer):
    a second instance reads the cache, a changed source is distilled again, and two
    distillations of one source give the same vectors."""
    pytest.importorskip("model2vec")
    import shutil

    import torch
    from transformers import BertConfig, BertModel

    from curate.models.embed import StaticEmbedder, default_model_path

    def tiny(folder, seed):
        torch.manual_seed(seed)
        cfg = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=64)
        BertModel(cfg).save_pretrained(folder)
        src = default_model_path()
        for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
            if (p := __import__("pathlib").Path(src) / name).exists():
                shutil.copy(p, folder / name)

    source = tmp_path / "src"
    tiny(source, 0)
    texts = ["how do I sort a list", "sorting a list in python", "banana bread recipe"]
    first = StaticEmbedder(str(source), cache_dir=tmp_path / "c1", pca_dims=8)
    v1 = first.embed(texts)
    assert first.distilled and v1.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(v1, axis=1), 1.0, atol=1e-5)
    cached = StaticEmbedder(str(source), cache_dir=tmp_path / "c1", pca_dims=8)
    np.testing.assert_array_equal(cached.embed(texts), v1)
    assert not cached.distilled and cached.model_id == first.model_id
    fresh = StaticEmbedder(str(source), cache_dir=tmp_path / "c2", pca_dims=8)  # distilled again elsewhere
    np.testing.assert_allclose(fresh.embed(texts), v1, atol=1e-3)
    tiny(source, 1)  # the source model changed
    changed = StaticEmbedder(str(source), cache_dir=tmp_path / "c1", pca_dims=8)
    assert changed.model_id != first.model_id
    v2 = changed.embed(texts)
    assert changed.distilled and not np.allclose(v2, v1, atol=1e-3)


def test_tier_candidates_are_the_full_models_own_top_k_of_the_static_proposals():
    # with the verifier the tier only proposes: the candidates are each key's k best neighbours by
    # the full model's cosine (>= the cut), as the full path's index gives them, whatever the
    # static model's order; nothing is accepted on static cosine and no pair is skipped
    rng = np.random.default_rng(1)
    full = _unit(rng.normal(size=(40, 8)) + np.repeat(_unit(rng.normal(size=(4, 8))), 10, axis=0) * 2)
    static = _unit(full + 0.3 * rng.normal(size=full.shape))  # another order of the neighbours
    keys = [f"k{i:02d}" for i in range(40)]
    config = SemanticConfig(k=3, propose_k=39, propose_loose=-1.0, exact_max=1000, tier=True)
    index = SemanticIndex(8, config)
    index.add(keys, static)
    from curate.dedup.semantic import tier_candidates

    got = tier_candidates(index, keys, keys, static, lambda ts: full[[int(t[1:]) for t in ts]], config=config, cut=0.6)
    full_index = SemanticIndex(8, config)
    full_index.add(keys, full)
    want = {}
    for a, b, s in full_index.pairs(keys, full, threshold=0.6, k=3):
        want[(min(a, b), max(a, b))] = s
    assert {(a, b) for a, b, _ in got.pairs} == set(want)
    assert all(abs(s - want[(a, b)]) < 1e-5 for a, b, s in got.pairs)
    assert got.accepted_static == 0 and got.skipped_same_cluster == 0
    # proposing only the static model's own top 3 misses some of the full model's
    few = tier_candidates(index, keys, keys, static, lambda ts: full[[int(t[1:]) for t in ts]],
                          config=SemanticConfig(k=3, propose_k=3, propose_loose=-1.0, exact_max=1000), cut=0.6)
    assert {(a, b) for a, b, _ in few.pairs} != set(want)
