"""A Hub token and an LLM API key, given the documented way, appear nowhere they could leak.

One `curate pipeline` run with `HF_TOKEN` and `--repo-id` (the Hub endpoint is a
dead local port, so the push fails) and `--llm endpoint` with `CURATE_LLM_API_KEY`
pointed at the fault server, which answers 401/500 with bodies that echo the key back
(as some hosted APIs do). Afterwards neither secret may be in stdout, stderr (tracebacks
included), any file under the lake or the outputs (card, reports, markers; Parquet, the
DuckDB catalog and the SQLite LLM cache read decoded, since their bytes are compressed),
the Prefect logs, artifacts, or the flow and task runs' parameters and state messages.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_LOGS, REPO
from tests.faults.fault_server import Fault, FaultServer

HF_TOKEN = "hf_FAKEleakcheck0123456789abcdefABCDEFxyz"
API_KEY = "sk-FAKEleakcheck-7d1e9b3a5c8f0e2d4b6a8c0e1f3a5b7d"
SECRETS = (HF_TOKEN, API_KEY)


def _dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _echo_key(i: int, body: dict) -> Fault:
    # Alternate the two failure answers; both quote the key the way hosted APIs do.
    message = json.dumps({"error": {"message": f"Incorrect API key provided: {API_KEY} (Bearer {API_KEY})"}})
    return Fault.http(401 if i % 2 == 0 else 500, body=message.encode())


def _decoded(path: Path) -> str:
    """A file's content as text, decoded where the bytes are compressed (Parquet, DuckDB)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return repr(pq.read_table(path).to_pylist())
    if path.suffix == ".duckdb":
        import duckdb

        con = duckdb.connect(str(path), read_only=True)
        try:
            tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
            return repr([con.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables])
        finally:
            con.close()
    if path.suffix == ".sqlite":
        import sqlite3

        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return "\n".join(con.iterdump())
        finally:
            con.close()
    return path.read_bytes().decode("latin-1")


def _leaks(text: str) -> list[str]:
    return [s[:6] + "..." for s in SECRETS if s in text]


def _paged(read, **kwargs) -> list:
    """All records of a Prefect read call (the server answers at most a page at a time)."""
    out: list = []
    while True:
        page = read(limit=200, offset=len(out), **kwargs)
        out.extend(page)
        if len(page) < 200:
            return out


def _prefect_records(api_url: str) -> str:
    """Everything the Prefect server stored: logs, artifacts, flow/task run parameters and states."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        logs = _paged(client.read_logs)
        arts = _paged(client.read_artifacts)
        runs = _paged(client.read_flow_runs) + _paged(client.read_task_runs)
    assert logs and arts and runs  # the run reached the server, so there was something to scan
    parts = [json.dumps([log.message for log in logs]), json.dumps([a.data for a in arts], default=str)]
    for run in runs:
        parts.append(json.dumps(run.parameters if hasattr(run, "parameters") else {}, default=str))
        parts.append(str(run.state.message if run.state else ""))
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_hub_token_and_llm_key_never_leak(tmp_path):
    from flows.testing import ensure_harness, pipeline_env

    api_url = ensure_harness()
    inputs = tmp_path / "logs"
    shutil.copytree(DEMO_LOGS, inputs)
    lake, out = tmp_path / "lake", tmp_path / "out"
    env = pipeline_env(api_url)
    env.update({
        "HF_TOKEN": HF_TOKEN,
        "CURATE_LLM_API_KEY": API_KEY,
        "HF_HUB_OFFLINE": "0",  # let the push really try, against a port nobody answers
        "HF_ENDPOINT": f"http://127.0.0.1:{_dead_port()}",
        "PREFECT_LOGGING_LEVEL": "DEBUG",  # the most a user could turn on
    })
    with FaultServer(policy=_echo_key) as srv:
        proc = subprocess.run(
            [sys.executable, "-m", "curate.cli", "pipeline", str(inputs), "--lake", str(lake), "--out", str(out),
             "--llm", "endpoint", "--llm-url", srv.url, "--llm-model", srv.model, "--repo-id", "someone/leak-check"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=1100,
        )
        sent = [r.headers.get("authorization", "") for r in srv.requests]

    (tmp_path / "stderr.log").write_text(proc.stderr)
    # The secrets were really used, so the checks below can fail.
    assert sent and all(h == f"Bearer {API_KEY}" for h in sent), sent[:3]
    assert proc.returncode != 0, "the push to an unreachable Hub should fail the run"
    assert "push to someone/leak-check failed" in proc.stderr, proc.stderr[-3000:]

    assert _leaks(proc.stdout) == [] and _leaks(proc.stderr) == [], proc.stderr[-3000:]
    files = {path: _decoded(path) for path in [*lake.rglob("*"), *out.rglob("*")] if path.is_file()}
    assert any(p.suffix == ".sqlite" for p in files) and any(p.suffix == ".duckdb" for p in files)
    assert [str(p) for p, text in files.items() if _leaks(text)] == []
    prefect = _prefect_records(api_url)
    assert _leaks(prefect) == []
    # The server's echo of the key reached our error paths, and came out scrubbed.
    scrubbed = "Incorrect API key provided: ***"
    assert scrubbed in proc.stderr or scrubbed in prefect or any(scrubbed in t for t in files.values())
