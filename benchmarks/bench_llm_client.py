"""Requests/s of the shared ChatClient: concurrent batching against one request at a time.

Both modes hit the same served model in the same run. Each mode gets its own
prompts, so vLLM's prefix cache cannot favour whichever runs second, and the
response cache is off.

    python benchmarks/bench_llm_client.py                       # starts vLLM with SmolLM2 itself
    python benchmarks/bench_llm_client.py --backend llamacpp    # the same model's GGUF on llama.cpp
    python benchmarks/bench_llm_client.py --base-url http://127.0.0.1:8000/v1 --model smollm2
    python benchmarks/bench_llm_client.py --requests 48 --concurrency 1 4 8 16 --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.models.llm import ChatClient, ChatRequest, Endpoint  # noqa: E402

TOPICS = ["rivers", "bread", "trains", "chess", "owls", "copper", "tides", "violins", "glaciers", "tea",
          "bridges", "comets", "ferns", "lanterns", "maps", "salt"]


def prompts(tag: str, n: int) -> list[ChatRequest]:
    return [
        ChatRequest([{"role": "user", "content": f"[{tag}-{i}] Write one sentence about {TOPICS[i % len(TOPICS)]}."}],
                    max_tokens=ARGS.max_tokens, temperature=0.0)
        for i in range(n)
    ]


def run_mode(endpoint: Endpoint, concurrency: int, n: int) -> dict:
    client = ChatClient(endpoint, concurrency=concurrency, timeout_s=600, max_retries=1)
    reqs = prompts(f"c{concurrency}", n)
    t0 = time.perf_counter()
    results = client.chat_many(reqs)
    elapsed = time.perf_counter() - t0
    return {
        "mode": "one at a time" if concurrency == 1 else "concurrent",
        "concurrency": concurrency,
        "requests": n,
        "ok": sum(r.ok for r in results),
        "seconds": round(elapsed, 2),
        "req_per_s": round(n / elapsed, 3),
    }


def main() -> None:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", help="Use a running server instead of starting one.")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--backend", choices=["vllm", "llamacpp"], default="vllm", help="Server to start.")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--json", action="store_true", help="One JSON object on stdout instead of the table.")
    ARGS = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    with contextlib.ExitStack() as stack:
        startup_s = None
        if ARGS.base_url:
            endpoint = Endpoint(ARGS.base_url, ARGS.model, os.environ.get("CURATE_LLM_API_KEY"))
        else:
            from curate.models.serve_model import ModelServer, ServeConfig

            srv = stack.enter_context(ModelServer(ServeConfig(backend=ARGS.backend, model=ARGS.model)))
            endpoint, startup_s = srv.endpoint, srv.healthy_after_s
        # Warm-up: the first requests pay for lazy initialisation in the server.
        ChatClient(endpoint, concurrency=2, timeout_s=600).chat_many(prompts("warmup", 2))
        rows = [run_mode(endpoint, c, ARGS.requests) for c in ARGS.concurrency]

    base = next((r["req_per_s"] for r in rows if r["concurrency"] == 1), None)
    for r in rows:
        r["speedup"] = round(r["req_per_s"] / base, 2) if base else None
    info = {"model": endpoint.model, "backend": ARGS.backend if not ARGS.base_url else None, "base_url": endpoint.base_url, "max_tokens": ARGS.max_tokens,
            "server_healthy_after_s": round(startup_s, 1) if startup_s else None,
            "machine": f"{platform.machine()} {os.cpu_count()} cpu", "load_avg_1m": round(os.getloadavg()[0], 1)}
    if ARGS.json:
        print(json.dumps({**info, "rows": rows}))
        return
    print(f"model {info['model']} ({info['backend'] or 'external'}) at {info['base_url']}, max_tokens {ARGS.max_tokens}, {info['machine']},"
          f" load avg {info['load_avg_1m']}" + (f", server healthy after {info['server_healthy_after_s']}s"
                                               if startup_s else ""))
    print(f"{'mode':<14} {'conc':>4} {'reqs':>5} {'ok':>4} {'seconds':>8} {'req/s':>7} {'speedup':>7}")
    for r in rows:
        print(f"{r['mode']:<14} {r['concurrency']:>4} {r['requests']:>5} {r['ok']:>4} {r['seconds']:>8.2f}"
              f" {r['req_per_s']:>7.3f} {r['speedup'] if r['speedup'] is not None else '':>7}")


if __name__ == "__main__":
    main()
