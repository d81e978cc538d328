"""SIGKILL the pipeline mid-run; the rerun completes with the same result as a clean run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.lake import Lake

REPO = Path(__file__).resolve().parents[2]


def _export(out: Path):
    folder = out / "export" / "chatcurate-demo"
    rows = pq.read_table(sorted((folder / "data").glob("*.parquet"))).sort_by("conversation_id").to_pylist()
    excl = pq.read_table(out / "export" / "chatcurate-demo.exclusions.parquet")
    excl = sorted((r["id"], r["reason"], r["detail"]) for r in excl.to_pylist())
    return rows, excl, (folder / "README.md").read_text()


def _annotations(lake: Lake) -> dict:
    """Annotation content without the columns that name a run."""
    out = {}
    con = lake.connect()
    for table in lake.annotation_tables():
        t = con.sql(f'SELECT * FROM "{table}"').to_arrow_table()
        keep = [c for c in t.column_names if c not in ("run_id", "fit_id", "seconds")]
        # not every table has conversation_id (topic_labels): sort whole rows instead
        out[table] = sorted(t.select(keep).to_pylist(), key=repr)
    out["conversations"] = con.execute(
        "SELECT conversation_id, content_hash FROM conversations ORDER BY 1").fetchall()
    return out


def _cmd(lake: Path, out: Path, inputs: Path) -> list[str]:
    return [sys.executable, "-m", "flows.pipeline", "--lake", str(lake), "--out", str(out), "--inputs", str(inputs)]


@pytest.mark.slow
@pytest.mark.timeout(2400)
@pytest.mark.parametrize("kill_after", ["tag_pii", "decontam"])
def test_sigkill_mid_pipeline_then_rerun_equals_clean_run(demo, prefect_api, tmp_path, kill_after):
    from flows.testing import pipeline_env

    env = pipeline_env(prefect_api)
    lake, out = tmp_path / "lake", tmp_path / "out"
    proc = subprocess.Popen(_cmd(lake, out, demo.inputs), cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = lake / "_flows" / "markers" / kill_after
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and proc.poll() is None and not (marker.exists() and any(marker.iterdir())):
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before the kill point"
    os.killpg(proc.pid, signal.SIGKILL)  # the flow and everything it started
    proc.wait()
    assert not (out / "export" / "chatcurate-demo" / "README.md").exists()  # killed before the export

    rerun = subprocess.run(_cmd(lake, out, demo.inputs), cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=1200)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "pipeline finished" in rerun.stdout

    assert _export(out) == _export(demo.out)
    assert _annotations(Lake(lake)) == _annotations(Lake(demo.lake))
    assert Lake(lake).stats()["balanced"]
    assert [p for p in lake.rglob(".tmp-*")] == [] and [p for p in out.rglob(".tmp-*")] == []
