"""Fast checks of the execution layer that need no Ray cluster (run in `make test`)."""

import numpy as np
import pyarrow as pa
import pytest

from curate.dedup.minhash import MinHashConfig, cluster, near_pairs, signatures
from curate.dedup.partitioned import (
    PartitionConfig, canonical_labels, cluster_partitioned, merge_forests, near_pairs_partitioned,
)
from curate.core.errors import ConfigError, MissingDependencyError
from curate.core.execution import LocalExecutor, RayConfig, executor_for, import_ray
from curate.models.batches import ChatBatch
from curate.models.gpu import batch_size_for
from tests.faults.fault_server import FaultServer


def near_dup_texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    words = "alpha beta gamma delta eps zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau".split()
    base = [" ".join(rng.choice(words, rng.integers(3, 30))) for _ in range(n // 2)]
    out = []
    for _ in range(n):
        w = str(rng.choice(base)).split()
        if rng.random() < 0.5:
            j = rng.integers(len(w))
            w[j] += "x"
        out.append(" ".join(w))
    return out + ["", "?!"]


def test_no_address_means_local(monkeypatch):
    monkeypatch.delenv("CURATE_RAY_ADDRESS", raising=False)
    ex = executor_for(None)
    assert isinstance(ex, LocalExecutor)
    out = list(ex.map_batches(lambda t: t.append_column("b", t["a"]), [pa.table({"a": [1]}), pa.table({"a": [2]})]))
    assert [t.column("b").to_pylist() for t in out] == [[1], [2]]


def test_missing_ray_names_the_extra(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("no ray")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(MissingDependencyError, match=r"chatcurate\[ray\]"):
        import_ray()
    monkeypatch.setenv("CURATE_RAY_ADDRESS", "auto")
    with pytest.raises(MissingDependencyError):
        executor_for(None)


def test_ray_config_is_validated_before_connecting():
    with pytest.raises(ConfigError):
        RayConfig(address="")
    with pytest.raises(ConfigError):
        RayConfig(num_cpus=0)
    kwargs = RayConfig(address="local", num_cpus=2, object_store_mb=500).init_kwargs()
    assert kwargs["num_cpus"] == 2 and kwargs["object_store_memory"] == 500 << 20 and "address" not in kwargs
    assert RayConfig(address="ray://head:10001").init_kwargs()["address"] == "ray://head:10001"


def stable_reference_pairs(sig, has, cfg, active=None):
    """Verified pairs in one process, plainly: per band, each bucket's members by row id,
    linked to the first member (star) and to their predecessor (chain)."""
    from collections import defaultdict

    from curate.dedup.minhash import band_keys

    bands, rows = cfg.band_rows
    idx = np.flatnonzero(has)
    keys = band_keys(sig[idx], bands, rows)
    pairs = set()
    for b in range(bands):
        buckets = defaultdict(list)
        for pos, key in enumerate(keys[:, b].tolist()):
            buckets[key].append(int(idx[pos]))
        for members in buckets.values():
            for k in range(1, len(members)):
                pairs.add((members[0], members[k]))
                pairs.add((members[k - 1], members[k]))
    out = sorted(p for p in pairs if active is None or active[p[0]] or active[p[1]])
    sims = {p: float((sig[p[0]] == sig[p[1]]).mean()) for p in out}
    return np.array([p for p in out if sims[p] >= cfg.threshold - 1e-6], dtype=np.int64).reshape(-1, 2)


def test_partitioned_pairs_equal_one_process_pairs():
    texts = near_dup_texts(1200)
    cfg = MinHashConfig()
    sig, has = signatures(texts, cfg)
    want = stable_reference_pairs(sig, has, cfg)
    got, got_sim = near_pairs_partitioned(sig, has, cfg, partition=PartitionConfig(shards=3, batch_rows=701))
    assert len(want) > 200
    np.testing.assert_array_equal(got, want)
    assert (got_sim >= cfg.threshold - 1e-6).all()
    active = np.zeros(len(texts), bool)
    active[1000:] = True
    want = stable_reference_pairs(sig, has, cfg, active)
    got, _ = near_pairs_partitioned(sig, has, cfg, active=active, partition=PartitionConfig(shards=2, batch_rows=999))
    np.testing.assert_array_equal(got, want)


def test_partitioned_clusters_agree_with_in_memory_clusters():
    # dedup_minhash picks each bucket's centre by an unstable sort, the partitioned path by
    # row id, so pairs near the threshold may differ; clusters must agree almost everywhere.
    texts = near_dup_texts(800, seed=3)
    want = canonical_labels(cluster(texts))
    got = cluster_partitioned(texts, partition=PartitionConfig(shards=4, batch_rows=333))
    assert (got == want).mean() >= 0.98
    assert len(set(got.tolist())) < 0.8 * len(texts)


def test_forests_merge_across_shards():
    # 1-2 found in one shard, 2-3 in another: one cluster rooted at 1
    merged = merge_forests([np.array([[1, 1], [2, 1]]), np.array([[2, 2], [3, 2]]), np.zeros((0, 2), np.int64)])
    assert dict(map(tuple, merged.tolist())) == {1: 1, 2: 1, 3: 1}


def test_batch_size_follows_memory():
    assert batch_size_for(0) == 1
    small, big = batch_size_for(2 << 30), batch_size_for(80 << 30)
    assert small < big <= 1024 and big & (big - 1) == 0


def test_chat_batches_spread_over_two_servers():
    with FaultServer() as a, FaultServer() as b:
        fn = ChatBatch([a.url, b.url], "fake-model", concurrency=4)
        batches = [pa.table({"prompt": [f"q{i}-{j}" for j in range(10)]}) for i in range(3)]
        out = pa.concat_tables(LocalExecutor().map_batches(fn, batches))
    assert out.column("error").null_count == 30
    assert out.column("answer").to_pylist()[:2] == ["echo: q0-0", "echo: q0-1"]
    assert a.chat_calls >= 5 and b.chat_calls >= 5 and a.chat_calls + b.chat_calls == 30


@pytest.mark.slow
def test_embed_batch_adds_unit_vectors():
    from curate.models.batches import EmbedBatch

    fn = EmbedBatch("text")
    out = pa.concat_tables(LocalExecutor().map_actors(lambda: fn, [pa.table({"text": ["hello", "bonjour", None]})]))
    vecs = np.array(out.column("embedding").to_pylist(), dtype=np.float32)
    assert vecs.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-4)
