"""`curate serve`: a served deployment picks up new log files from a landing folder on a schedule."""

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exported_ids(out: Path) -> set[str]:
    """Ids the export accounts for: written to the dataset, or left out with a reason."""
    files = sorted((out / "export" / "chatcurate-demo" / "data").glob("*.parquet"))
    excl = out / "export" / "chatcurate-demo.exclusions.parquet"
    try:
        ids = set(pq.read_table(files).column("conversation_id").to_pylist()) if files else set()
        return ids | (set(pq.read_table(excl).column("id").to_pylist()) if excl.exists() else set())
    except (OSError, ValueError, KeyError):  # the export folder was swapped while reading
        return set()


def _log(path: Path, cid: str, prompt: str) -> None:
    row = {"id": cid, "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": "ok"}]}
    path.write_bytes(gzip.compress((json.dumps(row) + "\n").encode()))


def _wait(cond, timeout: float, proc) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        assert proc.poll() is None, "curate serve exited"
        time.sleep(1)
    return False


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_served_deployment_picks_up_new_files_on_schedule(tmp_path):
    landing, lake, out = tmp_path / "landing", tmp_path / "lake", tmp_path / "out"
    landing.mkdir()
    _log(landing / "a.jsonl.gz", "first-file", "What is a good recipe for banana bread?")
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_LOGGING_LEVEL="WARNING")
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "curate"), "serve", "--landing", str(landing), "--lake", str(lake), "--out", str(out),
         "--interval", "10", "--port", str(_free_port())],
        cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "serve.log", "w"))
    try:
        assert _wait(lambda: "first-file" in _exported_ids(out), 900, proc), (tmp_path / "serve.log").read_text()[-3000:]
        _log(landing / "b.jsonl.gz", "second-file", "Quelle est la capitale du Canada ?")
        assert _wait(lambda: "second-file" in _exported_ids(out), 600, proc), (tmp_path / "serve.log").read_text()[-3000:]
        assert {"first-file", "second-file"} <= _exported_ids(out)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
