"""The whole pipeline flow on a local Ray cluster gives the same lake and export as a local run.

One Ray instance for the module: 3 CPUs (so a pool of separate worker processes), a
200 MB object store, no dashboard. The local run is the shared demo run
(`flows.testing.demo_run`: the demo logs, `--llm off`, decontam against humaneval).
Marked `ray` and `slow`: a few minutes on a busy 2-core machine.
"""

import pyarrow as pa
import pytest

from curate.core.lake import Lake
from tests.flows.test_kill import _annotations, _export

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(1800)]

STAGE_TASKS = {"ingest-files", "dedup", "tag", "decontam-check", "export-dataset"}


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    pytest.importorskip("prefect_ray")
    ray.init(num_cpus=3, include_dashboard=False, object_store_memory=200 << 20, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    from flows.testing import demo_run, ensure_harness

    ensure_harness()
    return demo_run(tmp_path_factory.mktemp("demo"))


def _conversations(root) -> pa.Table:
    con = Lake(root).connect()
    try:
        return con.sql("SELECT * EXCLUDE (run_id) FROM conversations ORDER BY conversation_id").to_arrow_table()
    finally:
        con.close()


def _same(a, b, tol: float = 1e-5) -> bool:
    """Equal, except that floats may differ by `tol`: vectors computed on a Ray worker differ
    from this process's in the last bits (another thread count), as tests/flows/test_determinism.py
    explains; every value that is not a float, decisions included, must be equal."""
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= tol
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], tol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, tol) for x, y in zip(a, b))
    return a == b


def _ray_task_names(ray) -> set[str]:
    """Names of the tasks Ray ran (prefect-ray names each after its Prefect task)."""
    return {e["cat"].removeprefix("task::") for e in ray.timeline() if str(e.get("cat", "")).startswith("task::")}


def test_pipeline_flow_on_ray_equals_local_run(ray_cluster, local_run, tmp_path):
    from flows.pipeline import pipeline
    from flows.runners import task_runner_for

    lake, out = tmp_path / "lake", tmp_path / "out"
    on_ray = pipeline.with_options(task_runner=task_runner_for("local"))
    result = on_ray(lake=lake, inputs=[local_run.inputs], out=out, ray_address="local")

    # Every stage's task ran on a Ray worker, not in this process.
    assert STAGE_TASKS <= _ray_task_names(ray_cluster)
    assert result["failed"] == []
    assert result["decontam"]["total"] == local_run.result["decontam"]["total"] > 0
    assert result["export"]["kept"] == local_run.result["export"]["kept"] > 0

    assert _conversations(lake).equals(_conversations(local_run.lake))
    got, want = _annotations(Lake(lake)), _annotations(Lake(local_run.lake))
    assert {"pii", "dedup", "decontam"} <= set(want)
    assert got.keys() == want.keys()
    for table in want:
        assert _same(got[table], want[table]), table
    assert _export(out) == _export(local_run.out)  # rows, exclusions (id, reason, detail), card
    assert Lake(lake).stats()["balanced"]

    # Called without a Ray task runner of its own, the flow connects once and still puts
    # its stages on Ray; the completion markers written by the workers make it a no-op.
    again = pipeline(lake=lake, inputs=[local_run.inputs], out=out, ray_address="local")
    assert again["ingest"]["skipped"] and again["dedup"]["skipped"] and again["decontam"]["skipped"]
    assert all(v.get("skipped") for v in again["tag"].values()) and again["export"]["skipped"]
    assert _export(out) == _export(local_run.out)
