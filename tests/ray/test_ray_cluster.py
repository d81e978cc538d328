"""The pipeline's first stages on a local Ray cluster give the same lake as a local run.

One Ray instance for the module (2 CPUs, so tasks run in separate worker processes; a
500 MB object store; no dashboard). Marked `ray` and `slow`: about 1-2 minutes.
"""

import hashlib
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.conftest import DEMO_LOGS

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=500 << 20, ignore_reinit_error=True,
             log_to_driver=False)
    yield ray
    ray.shutdown()


def table_digest(table: pa.Table | None, drop=("run_id",)) -> str:
    """Content hash of a table, independent of row order and of per-run columns."""
    if table is None:
        return "none"
    table = table.drop_columns([c for c in drop if c in table.column_names])
    table = table.sort_by([("conversation_id", "ascending")]) if "conversation_id" in table.column_names else table
    h = hashlib.sha256()
    h.update(str(table.schema).encode())
    for col in table.columns:
        h.update(repr(col.to_pylist()).encode())
    return h.hexdigest()


def lake_digests(root) -> dict:
    from curate.core.lake import Lake

    lake = Lake(root)
    con = lake.connect()
    out = {"conversations": table_digest(con.sql("SELECT * FROM conversations").to_arrow_table()),
           "quarantine": table_digest(con.sql("SELECT * EXCLUDE (run_id) FROM quarantine ORDER BY source_file, source_index").to_arrow_table())}
    con.close()
    for t in lake.annotation_tables():
        out[t] = table_digest(lake.read_annotation(t))
    return out


def test_ingest_and_dedup_flow_on_ray_equals_local(ray_cluster, tmp_path):
    from flows.core import run_core
    from flows.testing import ensure_harness

    ensure_harness()
    inputs = tmp_path / "logs"
    shutil.copytree(DEMO_LOGS, inputs)
    local = run_core(tmp_path / "local", [inputs], address=None)
    on_ray = run_core(tmp_path / "ray", [inputs], address="local")
    assert on_ray["ingest"]["kept"] == local["ingest"]["kept"] > 0
    assert on_ray["ingest"]["total"] == on_ray["ingest"]["kept"] + on_ray["ingest"]["quarantined"]
    want, got = lake_digests(tmp_path / "local"), lake_digests(tmp_path / "ray")
    assert "dedup" in want
    assert got == want


def test_executor_stages_on_ray_equal_local(ray_cluster, tmp_path):
    from curate.dedup.minhash import MinHashConfig, cluster
    from curate.dedup.partitioned import PartitionConfig, canonical_labels, cluster_partitioned
    from curate.core.execution import LocalExecutor, RayExecutor
    from curate.tag.tagging import run_tagger_on
    from curate.ingest.ingest import ingest
    from curate.core.lake import Lake
    from test_execution_local import near_dup_texts

    texts = near_dup_texts(4000, seed=7)
    cfg, part = MinHashConfig(), PartitionConfig(shards=3, batch_rows=900)
    ray_ex = RayExecutor(address="local")  # reuses the module's instance
    assert ray_ex.workers == 2
    want = cluster_partitioned(texts, cfg, executor=LocalExecutor(), partition=part, workdir=tmp_path)
    got = cluster_partitioned(texts, cfg, executor=ray_ex, partition=part, workdir=tmp_path)
    np.testing.assert_array_equal(got, want)  # same result whichever executor ran it
    assert (got == canonical_labels(cluster(texts, cfg))).mean() >= 0.98

    def n_messages(batch: pa.Table) -> pa.Table:
        return pa.table({"conversation_id": batch["conversation_id"],
                         "n_messages": pc.list_value_length(batch["conversation"])})

    parts = {}
    for name, ex in (("local", LocalExecutor()), ("ray", ray_ex)):
        lake = Lake(tmp_path / f"lake-{name}")
        ingest(lake, [DEMO_LOGS])
        stats = run_tagger_on(ex, lake, "n_messages", n_messages, batch_size=10)
        assert stats.tagged == stats.total > 50
        parts[name] = table_digest(lake.read_annotation("n_messages"))
        again = run_tagger_on(ex, lake, "n_messages", n_messages, batch_size=10)
        assert again.tagged == 0  # anti-join: a rerun does no work
    assert parts["ray"] == parts["local"]
