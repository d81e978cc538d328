"""Speed of `decontam`: judge throughput, end-to-end time at 200k rows, warm reruns.

  python benchmarks/bench_decontam.py judge [--model smollm2] [--pairs 48]
      Judge pairs/s through our client (bounded concurrency) against the reference tool's
      structure (two worker threads, one blocking request each), on the same served
      model in the same run. Each side judges set A and set B, in swapped order, so that
      neither gains from a server cache the other warmed.
  python benchmarks/bench_decontam.py e2e [--rows 200000]
      HumanEval against a generated training set (n-gram + embedding stages, this CPU),
      cold (index built) and warm (index reused); planted copies must be found.
  python benchmarks/bench_decontam.py warm [--model smollm2]
      `run_check` with the judge twice over one verdict cache: the rerun makes 0 calls.

Tables go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

from decontam.benchmarks import load_benchmark
from decontam.judge import JudgePair, LLMJudge, VerdictCache, parse_answer
from decontam.prompts import messages


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _Running:
    """An already running server (--url), so the benchmark need not start its own."""

    def __init__(self, url: str, model: str):
        from curate.llm import Endpoint

        self.endpoint = Endpoint(url, model)
        self.base_url = url

    def stop(self) -> None:
        pass


def _server(model: str, url: str | None = None):
    from curate.serve_model import ModelServer, ServeConfig

    if url:
        return _Running(url, model)
    _say(f"starting {model} ...")
    srv = ModelServer(ServeConfig(model=model)).start()
    _say(f"served at {srv.base_url}")
    return srv


def _pairs(n: int, offset: int) -> list[JudgePair]:
    he = load_benchmark("humaneval")
    out = []
    for i in range(n):
        a = he.texts[(offset + i) % len(he)]
        b = he.texts[(offset + i + (1 if i % 2 else 0)) % len(he)]  # half identical, half different
        out.append(JudgePair(a[:1200], b[:1200], "code"))
    return out


def _reference_structure(endpoint, pairs: list[JudgePair], workers: int = 2) -> tuple[float, int]:
    """Two threads, each sending one blocking request at a time (the reference tool's loop)."""
    import httpx

    from curate.llm import ChatRequest

    todo = list(enumerate(pairs))
    lock = threading.Lock()
    parsed = [0]

    def worker() -> None:
        with httpx.Client(timeout=300) as http:
            while True:
                with lock:
                    if not todo:
                        return
                    _, p = todo.pop()
                req = ChatRequest(messages=messages(p.data_type, p.test_text, p.train_text), max_tokens=4, temperature=0.0, logprobs=10)
                try:
                    r = http.post(f"{endpoint.base_url}/chat/completions", json=req.body(endpoint.model))
                    text = r.json()["choices"][0]["message"]["content"]
                except (httpx.HTTPError, KeyError, ValueError) as exc:  # counted as not parsed
                    _say(f"reference worker: {type(exc).__name__}")
                    text = None
                with lock:
                    parsed[0] += parse_answer(text) is not None

    t = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return len(pairs) / (time.perf_counter() - t), parsed[0]


def _ours(endpoint, pairs: list[JudgePair], concurrency: int) -> tuple[float, int]:
    from curate.llm import ChatClient

    judge = LLMJudge(ChatClient(endpoint, concurrency=concurrency, timeout_s=300), model=endpoint.model, max_parse_retries=0)
    t = time.perf_counter()
    verdicts = judge.judge_many(pairs)
    return len(pairs) / (time.perf_counter() - t), sum(v.label != "error" for v in verdicts)


def cmd_judge(args: argparse.Namespace) -> None:
    srv = _server(args.model, args.url)
    try:
        ep = srv.endpoint
        a, b = _pairs(args.pairs, 0), _pairs(args.pairs, 80)
        _ours(ep, _pairs(4, 160), args.concurrency)  # warm the server up
        runs = []
        for name, fn, pairs in (("reference (2 workers)", lambda p: _reference_structure(ep, p), a),
                                (f"ours (concurrency {args.concurrency})", lambda p: _ours(ep, p, args.concurrency), b),
                                (f"ours (concurrency {args.concurrency})", lambda p: _ours(ep, p, args.concurrency), a),
                                ("reference (2 workers)", lambda p: _reference_structure(ep, p), b)):
            rate, ok = fn(pairs)
            _say(f"{name}: {rate:.2f} pairs/s ({ok}/{len(pairs)} parsed)")
            runs.append((name, rate, ok, len(pairs)))
        warm = _warm_rows(srv, args.model, args.concurrency)
    finally:
        srv.stop()
    print(f"\nJudge throughput, {args.model} served at {srv.base_url} on this machine, {args.pairs} pairs per run:\n")
    print("| structure | pairs/s (set A, set B) | mean | parsed |")
    print("|---|---|---:|---:|")
    for name in dict.fromkeys(r[0] for r in runs):
        rs = [r for r in runs if r[0] == name]
        print(f"| {name} | {', '.join(f'{r[1]:.2f}' for r in rs)} | {sum(r[1] for r in rs) / len(rs):.2f} | "
              f"{sum(r[2] for r in rs)}/{sum(r[3] for r in rs)} |")
    _print_warm(warm, args.model)


_WORDS = ("python list dictionary bread recipe travel visa email budget spreadsheet poem story essay cat dog "
          "weather physics chemistry history tax invoice resume interview marathon guitar piano garden tomato "
          "database server kubernetes docker regex sql javascript css html rust vector matrix integral").split()
_FRAMES = ("How do I {w} with {v} in {n} steps?", "Write a short {w} about {v}.", "Explain {w} vs {v} to a {n}-year-old.",
           "Can you fix my {w} code? It fails on {v} number {n}.", "What is the best {w} for {v} under {n} dollars?",
           "Translate this sentence about {w} and {v} into French: I have {n} of them.",
           "Summarize the article on {w}, {v} and {n} other topics.")


def generate_train(rows: int, seed: int = 0, plant_within: int | None = None) -> tuple[list[dict], dict[str, str]]:
    """Synthetic chat prompts plus planted HumanEval items: 5 verbatim, 5 rephrased.

    Planted rows go into the first `plant_within` rows (all rows by default).
    """
    rng = random.Random(seed)
    data = []
    for i in range(rows):
        frame = rng.choice(_FRAMES)
        data.append({"id": f"g{i}", "text": frame.format(w=rng.choice(_WORDS), v=rng.choice(_WORDS), n=rng.randint(1, 10_000))})
    he = load_benchmark("humaneval")
    planted = {}
    span = min(plant_within or rows, rows)
    slots = rng.sample(range(span), 10)
    for k, idx in enumerate((3, 17, 42, 99, 150)):
        data[slots[k]] = {"id": f"verbatim{k}", "text": "Please help me with this:\n" + he.texts[idx]}
        planted[f"verbatim{k}"] = he.ids[idx]
    for k, idx in enumerate((8, 23, 61, 120, 140)):
        text = he.texts[idx].replace("    ", "  ").replace('"""', "'''").replace("def ", "def my_")
        data[slots[5 + k]] = {"id": f"rephrased{k}", "text": "i need this function, it is like: " + text}
        planted[f"rephrased{k}"] = he.ids[idx]
    return data, planted


def cmd_e2e(args: argparse.Namespace) -> None:
    """The n-gram stage runs over all rows; the embedding stage over the first --embed-rows.

    On a 2-core machine shared with other work, embedding 200k rows takes longer than a
    benchmark run should, so the full-size embedding time is extrapolated from the
    measured rate (and labelled so). Pass --embed-rows equal to --rows to measure it all.
    """
    import os

    from decontam.check import DEFAULT_ATTRIBUTION_TOLERANCE, DEFAULT_COSINE_THRESHOLD, CheckConfig, run_check
    from decontam.train_data import TrainData, load_train

    embed_rows = min(args.embed_rows or args.rows, args.rows)
    tmp = Path(tempfile.mkdtemp(prefix="bench_decontam_"))
    data, planted = generate_train(args.rows, plant_within=embed_rows)
    path = tmp / "train.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for row in data:
            fh.write(json.dumps(row) + "\n")
    _say(f"generated {args.rows} rows at {path}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    t = time.perf_counter()
    train = load_train(str(path))
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    ng = run_check(train, ["humaneval"], CheckConfig(use_embeddings=False, cache_dir=None))
    ngram_s = time.perf_counter() - t
    ng_found = {p.train_id for p in ng.benchmarks[0].flagged} & set(planted)
    _say(f"n-gram over {args.rows} rows: {ngram_s:.1f}s, planted found {len(ng_found)}")
    sample = TrainData(train.texts[:embed_rows], train.ids[:embed_rows], train.parents[:embed_rows], train.source, train.kind)
    runs = []
    for label in ("cold (index built)", "warm (index reused)"):
        t, c = time.perf_counter(), time.process_time()
        res = run_check(sample, ["humaneval"], CheckConfig(cache_dir=tmp / "cache"), progress=_say if args.verbose else None)
        total, cpu = time.perf_counter() - t, time.process_time() - c
        found = {p.train_id for p in res.benchmarks[0].flagged} & set(planted)
        runs.append((label, total, res.timings_s, found, cpu, res.benchmarks[0].contaminated_items))
        _say(f"{label} on {embed_rows} rows: {total:.1f}s, planted found {len(found)}/{len(planted)}")
    t_idx = runs[0][2].get("embed_index", 0.0)
    rate = embed_rows / t_idx if t_idx else float("nan")
    est = load_s + ngram_s + args.rows / rate + runs[0][2].get("embed_search", 0.0)
    # CPU seconds do not grow with other people's load the way wall seconds do; on an idle
    # machine the two cores would run them in about cpu / cores wall seconds.
    cores = os.cpu_count() or 1
    cpu_rows = runs[0][4] - runs[1][4]  # the cold run's extra work is the index build
    cpu_est = load_s + ngram_s + (cpu_rows / embed_rows) * args.rows / cores + runs[1][4] / cores
    print(f"\nHumanEval (164) against generated chat prompts, all-MiniLM-L6-v2 on this CPU "
          f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}), no judge:\n")
    print("| step | rows | wall seconds | planted found | items flagged (10 planted) |")
    print("|---|---:|---:|---:|---:|")
    print(f"| read JSONL | {args.rows} | {load_s:.1f} | | |")
    print(f"| n-gram stage (13-gram) | {args.rows} | {ngram_s:.1f} | {len(ng_found)}/{len(planted)} (verbatim only) | "
          f"{ng.benchmarks[0].contaminated_items} |")
    for label, total, tm, found, cpu, items in runs:
        print(f"| full check, {label} | {embed_rows} | {total:.1f} (index {tm.get('embed_index', 0):.1f}, "
              f"search {tm.get('embed_search', 0):.1f}; {cpu:.1f} CPU s) | {len(found)}/{len(planted)} | {items} |")
    print(f"| embedding rate (wall, under this load) | | {rate:.1f} rows/s | | |")
    # What each cosine cut would flag: every item's top-1 neighbour, from the warm index,
    # with and without the attribution rule (a row counts only for the item it is closest to).
    he = load_benchmark("humaneval")
    truth = {(v, k) for k, v in planted.items()}
    sweeps = []
    for tolerance in (None, DEFAULT_ATTRIBUTION_TOLERANCE):
        every = run_check(sample, ["humaneval"], CheckConfig(cache_dir=tmp / "cache", use_ngram=False, cosine_threshold=-1.0,
                                                             attribution_tolerance=tolerance))
        sweeps.append([(p.test_id, p.train_id, p.cosine) for p in every.benchmarks[0].flagged])
    print("\nEvery item's top-1 neighbour against a cosine cut (embedding stage only, no n-gram stage):")
    print("\n| cosine cut | items flagged | true pairs among them | neighbours that are generated prompts "
          "| items flagged with attribution | true pairs among them |")
    print("|---:|---:|---:|---:|---:|---:|")
    for cut in sorted({0.40, 0.50, 0.63, 0.70, 0.80, DEFAULT_COSINE_THRESHOLD}):
        hit, hit_attr = ([(t, r) for t, r, c in pairs if c >= cut] for pairs in sweeps)
        mark = " (default)" if cut == DEFAULT_COSINE_THRESHOLD else ""
        print(f"| {cut:.2f}{mark} | {len({t for t, _ in hit})} of {len(he)} | {len(set(hit) & truth)} | "
              f"{sum(r not in planted for _, r in hit)} | {len({t for t, _ in hit_attr})} | {len(set(hit_attr) & truth)} |")
    if embed_rows < args.rows:
        print(f"| full check at {args.rows} rows, extrapolated from wall time under this load | {args.rows} | ~{est:.0f} | |")
        print(f"| full check at {args.rows} rows, extrapolated from CPU time on {cores} idle cores | {args.rows} | ~{cpu_est:.0f} | |")


def _warm_rows(srv, model: str, concurrency: int) -> list[tuple]:
    from curate.llm import ChatClient
    from decontam.check import CheckConfig, run_check
    from decontam.train_data import load_train

    tmp = Path(tempfile.mkdtemp(prefix="bench_decontam_warm_"))
    data, _ = generate_train(300)
    path = tmp / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in data))
    rows = []
    for label in ("cold", "warm rerun"):
        client = ChatClient(srv.endpoint, concurrency=concurrency, timeout_s=300)
        judge = LLMJudge(client, model=srv.endpoint.model, cache=VerdictCache(tmp / "verdicts.sqlite"))
        t = time.perf_counter()
        res = run_check(load_train(str(path)), [load_benchmark("humaneval", limit=24)],
                        CheckConfig(cache_dir=tmp / "cache", cascade_floor=-1.0), judge=judge)
        c = res.benchmarks[0].counts
        rows.append((label, time.perf_counter() - t, client.stats.calls, c["judge_calls"], c["judge_cached"]))
        _say(f"{label}: {rows[-1]}")
    return rows


def _print_warm(rows: list[tuple], model: str) -> None:
    print(f"\n`run_check` with the judge on every candidate, {model}, HumanEval[:24] vs 300 rows, one verdict cache:\n")
    print("| run | seconds | HTTP calls | judge verdicts made | from cache |")
    print("|---|---:|---:|---:|---:|")
    for label, secs, calls, made, cached in rows:
        print(f"| {label} | {secs:.1f} | {calls} | {made} | {cached} |")


def cmd_warm(args: argparse.Namespace) -> None:
    srv = _server(args.model, args.url)
    try:
        rows = _warm_rows(srv, args.model, args.concurrency)
    finally:
        srv.stop()
    _print_warm(rows, args.model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    j = sub.add_parser("judge")
    j.add_argument("--model", default="smollm2")
    j.add_argument("--pairs", type=int, default=48)
    j.add_argument("--concurrency", type=int, default=8)
    j.add_argument("--url", help="use this running OpenAI-compatible server instead of starting one")
    e = sub.add_parser("e2e")
    e.add_argument("--rows", type=int, default=200_000)
    e.add_argument("--embed-rows", type=int, help="rows for the embedding stage (default: all)")
    e.add_argument("-v", "--verbose", action="store_true")
    w = sub.add_parser("warm")
    w.add_argument("--model", default="smollm2")
    w.add_argument("--concurrency", type=int, default=8)
    w.add_argument("--url", help="use this running OpenAI-compatible server instead of starting one")
    args = parser.parse_args()
    {"judge": cmd_judge, "e2e": cmd_e2e, "warm": cmd_warm}[args.cmd](args)


if __name__ == "__main__":
    main()
