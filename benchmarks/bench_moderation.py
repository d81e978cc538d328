"""Moderation speed: tier 1 messages/s, tier 2 requests/s batched vs one at a time.

Tier 1: each method over the same messages (the labelled sets and the demo logs'
messages, repeated to --messages), against alt-profanity-check alone as the
baseline (the cheapest classifier there is: one vectorizer and a linear model).

Tier 2: the same moderation requests sent with --concurrency in flight (the server
batches them) and then one at a time, to the same server in the same run, with no
response cache. The concurrent pass runs first, so any prefix cache the server keeps
favours the one-at-a-time pass: the speedup printed is, if anything, understated.

    python benchmarks/bench_moderation.py                      # tier 1 only
    python benchmarks/bench_moderation.py --serve              # + tier 2 on a vLLM server it starts and stops
    python benchmarks/bench_moderation.py --llm-url http://127.0.0.1:8000/v1 --llm-model smollm2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402


def corpus(n: int) -> list[str]:
    texts = []
    for name in ("moderation_eval.jsonl", "moderation_heldout.jsonl", "moderation_multi_eval.jsonl"):
        texts += [json.loads(line)["text"] for line in (REPO / "tests" / "data" / name).read_text().splitlines() if line]
    demo = REPO / "curate" / "ingest" / "demo_logs" / "openai_chats.jsonl"
    for line in demo.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError, KeyError, TypeError):
            texts += [m["content"] for m in json.loads(line)["messages"] if isinstance(m.get("content"), str)]
    return (texts * (n // len(texts) + 1))[:n]


def bench_local(n: int, methods: list[str]) -> list[tuple]:
    from profanity_check import predict_prob

    from moderation.local import LocalConfig, LocalModerator

    texts = corpus(n)
    rows = []
    predict_prob(texts[:10])
    t = time.perf_counter()
    predict_prob(texts)
    base = n / (time.perf_counter() - t)
    rows.append(("profanity-check alone (baseline)", n, base, 1.0))
    variants = []
    for method in methods:
        if method == "rules":  # what the seven-language rules of issue #17 cost
            variants.append(("tier 1 rules, English only (before #17)", LocalConfig(method="rules", multilingual=False)))
        variants.append((f"tier 1 {method}", LocalConfig(method=method)))
    for name, cfg in variants:
        mod = LocalModerator(cfg)
        mod.moderate(texts[:20])  # load models, train the embedding classifier
        k = n if cfg.method == "rules" else min(n, 2000)
        t, c = time.perf_counter(), time.process_time()
        mod.moderate(texts[:k])
        rate = k / (time.perf_counter() - t)
        cpu_rate = k / max(time.process_time() - c, 1e-9)
        rows.append((f"{name} ({cpu_rate:,.0f} msgs/cpu-s)", k, rate, rate / base))
    return rows


def bench_llm(endpoint, n: int, concurrency: int, timeout_s: float) -> list[tuple]:
    from curate.models.llm import ChatClient
    from moderation.llm_tier import LLMModerator

    texts = corpus(n)
    rows = []
    warm = LLMModerator(ChatClient(endpoint, concurrency=1, timeout_s=timeout_s))
    warm.judge(texts[:1])
    results = {}
    for label, conc in ((f"concurrent ({concurrency} in flight)", concurrency), ("one at a time (baseline)", 1)):
        client = ChatClient(endpoint, concurrency=conc, timeout_s=timeout_s)
        mod = LLMModerator(client)
        t = time.perf_counter()
        js = mod.judge(texts)
        dt = time.perf_counter() - t
        results[label] = (n / dt, sum(j.ok for j in js), sum(not j.ok for j in js), mod.invalid_answers, dt)
    base = results["one at a time (baseline)"][0]
    for label, (rate, ok, err, invalid, dt) in results.items():
        rows.append((f"tier 2 {label}", n, rate, rate / base, ok, err, invalid, dt))
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=5000, help="tier 1 messages (embedding methods use at most 2000)")
    p.add_argument("--methods", default="rules,embedding,hybrid")
    p.add_argument("--serve", action="store_true", help="start a vLLM server (curate.models.serve_model) for tier 2")
    p.add_argument("--llm-url")
    p.add_argument("--llm-model")
    p.add_argument("--requests", type=int, default=32)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--timeout", type=float, default=300.0)
    args = p.parse_args(argv)
    out = Console(width=160)
    table = Table(title=f"tier 1 on this machine ({os.cpu_count()} CPUs)")
    for c in ("what", "messages", "messages/s", "x baseline"):
        table.add_column(c, justify="left" if c == "what" else "right")
    for what, n, rate, x in bench_local(args.messages, args.methods.split(",")):
        table.add_row(what, str(n), f"{rate:,.0f}", f"{x:.2f}")
    out.print(table)
    if not (args.serve or args.llm_url):
        return
    from curate.models.llm import Endpoint

    with contextlib.ExitStack() as stack:
        if args.llm_url:
            endpoint = Endpoint(args.llm_url, args.llm_model or "smollm2")
            where = args.llm_url
        else:
            from curate.models.serve_model import ModelServer

            t = time.perf_counter()
            srv = stack.enter_context(ModelServer())
            endpoint = srv.endpoint
            where = f"vLLM started by this run ({srv.config.name}, healthy after {time.perf_counter() - t:.0f}s)"
        rows = bench_llm(endpoint, args.requests, args.concurrency, args.timeout)
    table = Table(title=f"tier 2 on {where}")
    for c in ("what", "requests", "requests/s", "x baseline", "valid", "errors", "invalid answers", "seconds"):
        table.add_column(c, justify="left" if c == "what" else "right")
    for what, n, rate, x, ok, err, invalid, dt in rows:
        table.add_row(what, str(n), f"{rate:.2f}", f"{x:.2f}", str(ok), str(err), str(invalid), f"{dt:.1f}")
    out.print(table)


if __name__ == "__main__":
    main()
