"""Test helpers for the flows (like `prefect.testing`): one Prefect harness and one demo
pipeline run per test process, shared by every test module that needs them.

Starting Prefect's API server costs tens of seconds on a busy 2-core machine and a full
pipeline run on the demo logs about a minute, so tests share both: the first caller
starts them, later callers get the same objects. Subprocesses that run flows (the
SIGKILL test) talk to the same server through `PREFECT_API_URL`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

_STACK: contextlib.ExitStack | None = None
_API_URL: str | None = None
_DEMO: "DemoRun | None" = None

DEMO_LOGS = Path(__file__).resolve().parents[1] / "curate" / "ingest" / "demo_logs"


def ensure_harness() -> str:
    """Enter `prefect_test_harness()` once for this process; returns its API URL."""
    global _STACK, _API_URL
    if _STACK is None:
        _private_websocket_random()
        from prefect.settings import PREFECT_API_URL
        from prefect.testing.utilities import prefect_test_harness

        stack = contextlib.ExitStack()
        stack.enter_context(prefect_test_harness(server_startup_timeout=None))
        _STACK, _API_URL = stack, PREFECT_API_URL.value()
        atexit.register(stack.close)
    return _API_URL


def _private_websocket_random() -> None:
    """Give `websockets` a generator of its own instead of the global `random` state.

    Prefect's events client keeps a websocket to the harness's server open in a background
    thread; websockets draws each keepalive ping's payload (and reconnect backoff) from the
    global `random` module. Hypothesis property tests in the same process check that the
    global state does not change while they draw, so a ping landing mid-draw made them warn
    (or fail under `-W error`) depending on timing. The payload only needs to be unpredictable
    enough for a ping, which a private generator is.
    """
    import random

    import websockets.asyncio.connection
    import websockets.client

    for module in (websockets.asyncio.connection, websockets.client):
        if getattr(module, "random", None) is random:
            module.random = random.Random()


@dataclass
class DemoRun:
    root: Path
    inputs: Path
    lake: Path
    out: Path
    result: dict


def pipeline_env(api_url: str) -> dict[str, str]:
    """Environment for a subprocess that runs flows against the harness's server."""
    env = dict(os.environ)
    env["PREFECT_API_URL"] = api_url
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    return env


def demo_run(root: Path) -> DemoRun:
    """The pipeline run once over a copy of the demo logs (cached for the process).

    Callers must not modify its lake or outputs: copy them first (`copy_run`).
    """
    global _DEMO
    if _DEMO is None:
        ensure_harness()
        from flows.pipeline import pipeline

        inputs = root / "logs"
        shutil.copytree(DEMO_LOGS, inputs)
        lake, out = root / "lake", root / "out"
        result = pipeline(lake=lake, inputs=[inputs], out=out)
        _DEMO = DemoRun(root, inputs, lake, out, result)
    return _DEMO


def copy_run(run: DemoRun, dest: Path) -> DemoRun:
    """A private copy of a run's lake and outputs, to run more flows on (same inputs)."""
    for name in ("lake", "out"):
        if (run.root / name).exists():
            shutil.copytree(run.root / name, dest / name, symlinks=True)
    return DemoRun(dest, run.inputs, dest / "lake", dest / "out", run.result)
