"""Speed of `decontam`: judge throughput, end-to-end time at 200k rows, warm reruns.

  python benchmarks/bench_decontam.py judge [--model smollm2] [--pairs 48]
      Judge pairs/s through our client (bounded concurrency) against the reference tool's
      structure (two worker threads, one blocking request each), on the same served
      model in the same run. Each side judges set A and set B, in swapped order, so that
      neither gains from a server cache the other warmed.
  python benchmarks/bench_decontam.py e2e [--rows 200000] [--full-rows 20000]
      HumanEval against a generated training set (n-gram + embedding stages, this CPU):
      the cheap-first tier, today's Embedder and plain SentenceTransformer.encode, cold, in
      one process; planted copies must be found; top-1 agreement with the full model.
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
        from curate.models.llm import Endpoint

        self.endpoint = Endpoint(url, model)
        self.base_url = url

    def stop(self) -> None:
        pass


def _server(model: str, url: str | None = None):
    from curate.models.serve_model import ModelServer, ServeConfig

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

    from curate.models.llm import ChatRequest

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
    from curate.models.llm import ChatClient

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


class PlainEncode:
    """`SentenceTransformer.encode` of every text as given (no dedup, no cut): the naive baseline."""

    def __init__(self):
        from sentence_transformers import SentenceTransformer

        from curate.models.embed import default_model_path

        self.model = SentenceTransformer(default_model_path(), device="cpu")
        self.model_id = "plain-encode"

    def embed(self, texts):
        return self.model.encode(list(texts), batch_size=64, convert_to_numpy=True, normalize_embeddings=True)


def _contender(name: str, sample, cache: Path, *, say=None, **cfg):
    """One cold run_check of a contender: wall s, CPU s, result, and the pair verifier's own
    wall and CPU seconds inside it ({"wall_s", "cpu_s"}, both 0 when it did not run)."""
    import decontam.check as check
    from decontam.check import CheckConfig, run_check

    embedder = PlainEncode() if name == "plain" else None
    config = CheckConfig(cache_dir=cache, tier=name == "tier", **cfg)
    verifier = {"wall_s": 0.0, "cpu_s": 0.0}
    inner = check._verify_candidates

    def timed(*a, **kw):  # CPU s are the process's (the verifier's embedder threads included)
        t, c = time.perf_counter(), time.process_time()
        try:
            return inner(*a, **kw)
        finally:
            verifier["wall_s"] += time.perf_counter() - t
            verifier["cpu_s"] += time.process_time() - c

    check._verify_candidates = timed
    try:
        t, c = time.perf_counter(), time.process_time()
        res = run_check(sample, ["humaneval"], config, embedder=embedder, progress=say)
        return time.perf_counter() - t, time.process_time() - c, res, verifier
    finally:
        check._verify_candidates = inner


def _top1(sample, cache: Path, name: str) -> dict[str, tuple[str, float]]:
    """Each item's top-1 neighbour (train id, cosine) from a contender's warm cache."""
    from decontam.check import CheckConfig, run_check

    # The cosine decides here (verifier and cascade off: the verifier would return only the pairs
    # it flags), so at cut -1 every item comes back with its neighbours.
    res = run_check(sample, ["humaneval"], CheckConfig(cache_dir=cache, use_ngram=False, cosine_threshold=-1.0,
                                                       attribution_tolerance=None, tier=name == "tier",
                                                       multilingual=False, verifier=False, cascade=False,
                                                       top_k=1),
                    embedder=PlainEncode() if name == "plain" else None)
    out: dict[str, tuple[str, float]] = {}
    for p in res.benchmarks[0].flagged:  # sorted by item, best cosine first
        out.setdefault(p.test_id, (p.train_id, p.cosine))
    return out


def cmd_e2e(args: argparse.Namespace) -> None:
    """Cold runs of the contenders on the same generated rows, in one process.

    Contenders: `tier` (the default: static proposals re-scored by MiniLM, multilingual
    channel), `embedder` (today's path: every row through `curate.models.embed.Embedder`), `plain`
    (`SentenceTransformer.encode` of every row). `--full-rows M` runs the slow contenders on
    the first M rows only (the tier runs on both sizes), so their time at --rows is measured
    on M rows and said so; `--full-cache DIR` reuses a full-model index that a cold run of
    today's code left for these rows (then only its agreement is measured here).
    """
    import os

    from decontam.check import CheckConfig, run_check
    from decontam.train_data import TrainData, load_train

    tmp = Path(tempfile.mkdtemp(prefix="bench_decontam_"))
    full_rows = min(args.full_rows or args.rows, args.rows)
    data, planted = generate_train(args.rows, plant_within=full_rows)
    path = tmp / "train.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for row in data:
            fh.write(json.dumps(row) + "\n")
    cores = os.cpu_count() or 1
    _say(f"generated {args.rows} rows at {path}; load average {os.getloadavg()[0]:.1f} on {cores} cores")
    t = time.perf_counter()
    train = load_train(str(path))
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    ng = run_check(train, ["humaneval"], CheckConfig(use_embeddings=False, cache_dir=None))
    ngram_s = time.perf_counter() - t
    ng_found = {p.train_id for p in ng.benchmarks[0].flagged} & set(planted)
    say = _say if args.verbose else None
    sizes = sorted({args.rows, full_rows})
    samples = {n: train if n == args.rows else TrainData(train.texts[:n], train.ids[:n], train.parents[:n], train.source,
                                                         train.kind) for n in sizes}
    runs = []  # (contender, rows, wall, cpu, load before, load after, result, cache)
    for name in args.contenders.split(","):
        for n in ([full_rows] if name != "tier" else sizes):
            if name == "embedder" and args.full_cache and n == args.rows:
                runs.append((name, n, None, None, None, None, None, Path(args.full_cache), None))
                continue
            cache = tmp / f"cache-{name}-{n}"
            load0 = os.getloadavg()[0]
            wall, cpu, res, ver = _contender(name, samples[n], cache, say=say)
            runs.append((name, n, wall, cpu, load0, os.getloadavg()[0], res, cache, ver))
            _say(f"{name} cold on {n} rows: {wall:.1f}s wall, {cpu:.1f} CPU s, "
                 f"{res.benchmarks[0].contaminated_items} items flagged; verifier {ver['wall_s']:.1f}s wall, "
                 f"{ver['cpu_s']:.1f} CPU s")
    t, c = time.perf_counter(), time.process_time()
    warm = _contender("tier", train, tmp / f"cache-tier-{args.rows}")
    warm_wall, warm_cpu = time.perf_counter() - t, time.process_time() - c

    print(f"\nHumanEval (164) against {args.rows} generated chat prompts (10 planted), all-MiniLM-L6-v2 on this "
          f"CPU ({cores} cores), no judge. CPU s = this process's user+system seconds:\n")
    print("| contender | rows | cold wall s | CPU s | verifier wall s (share) | verifier CPU s (share) "
          "| load avg (start/end) | planted found | items flagged |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|")
    print(f"| read JSONL | {args.rows} | {load_s:.1f} | | | | | | |")
    print(f"| n-gram stage only (13-gram) | {args.rows} | {ngram_s:.1f} | | | | | {len(ng_found)}/10 (verbatim only) | "
          f"{ng.benchmarks[0].contaminated_items} |")
    flagged_sets = {}
    for name, n, wall, cpu, l0, l1, res, _, ver in runs:
        if res is None:
            print(f"| {name} | {n} | (cold run apart: --full-cache) | | | | | | |")
            continue
        b = res.benchmarks[0]
        found = {p.train_id for p in b.flagged} & set(planted)
        flagged_sets[(name, n)] = {p.test_id for p in b.flagged}
        tm = res.timings_s
        print(f"| {name} | {n} | {wall:.1f} (index {tm.get('embed_index', 0):.1f}, search {tm.get('embed_search', 0):.1f}) "
              f"| {cpu:.1f} | {ver['wall_s']:.1f} ({ver['wall_s'] / wall:.1%}) | {ver['cpu_s']:.1f} ({ver['cpu_s'] / cpu:.1%}) "
              f"| {l0:.1f}/{l1:.1f} | {len(found)}/10 | {b.contaminated_items} |")
    wb = warm[2].benchmarks[0]
    print(f"| tier, warm (index reused) | {args.rows} | {warm_wall:.1f} | {warm_cpu:.1f} | {warm[3]['wall_s']:.1f} "
          f"| {warm[3]['cpu_s']:.1f} | | "
          f"{len({p.train_id for p in wb.flagged} & set(planted))}/10 | {wb.contaminated_items} |")

    # Agreement with the full model: each item's top-1 neighbour, and the flagged item sets.
    print("\n| rows | contender vs embedder (full model) | top-1 neighbour agreement | flagged items, contender "
          "| flagged items, full model | only contender | only full model |")
    print("|---:|---|---:|---:|---:|---|---|")
    for n in sizes:
        ref_run = next((r for r in runs if r[0] == "embedder" and r[1] == n), None)
        if ref_run is None:
            continue
        ref = _top1(samples[n], ref_run[7], "embedder")
        if ref_run[6] is None:  # --full-cache: the flagged set comes from a warm run on that index
            ref_flag = {p.test_id for p in _contender("embedder", samples[n], ref_run[7])[2].benchmarks[0].flagged}
        else:
            ref_flag = flagged_sets[("embedder", n)]
        for name, m, *_rest in runs:
            if m != n or name == "embedder" or (name, n) not in flagged_sets:
                continue
            got = _top1(samples[n], _rest[5], name)
            agree = sum(got.get(i, (None,))[0] == ref[i][0] for i in ref) / max(len(ref), 1)
            mine = flagged_sets[(name, n)]
            print(f"| {n} | {name} | {agree:.3f} ({sum(got.get(i, (None,))[0] == ref[i][0] for i in ref)}/{len(ref)}) "
                  f"| {len(mine)} | {len(ref_flag)} | {', '.join(sorted(mine - ref_flag)) or '-'} "
                  f"| {', '.join(sorted(ref_flag - mine)) or '-'} |")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "rows": args.rows, "full_rows": full_rows, "load_s": load_s, "ngram_s": ngram_s,
            "runs": [{"contender": r[0], "rows": r[1], "wall_s": r[2], "cpu_s": r[3], "load_start": r[4], "load_end": r[5],
                      "verifier": r[8], "items": sorted(flagged_sets.get((r[0], r[1]), []))} for r in runs],
            "warm": {"wall_s": warm_wall, "cpu_s": warm_cpu, "verifier": warm[3]}}, indent=1))


def _warm_rows(srv, model: str, concurrency: int) -> list[tuple]:
    from curate.models.llm import ChatClient
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
    e.add_argument("--contenders", default="tier,embedder,plain", help="comma-separated: tier, embedder, plain")
    e.add_argument("--full-rows", type=int, help="rows for the embedder and plain contenders (default: all)")
    e.add_argument("--full-cache", help="a full-model index of these --rows from a cold run of today's code")
    e.add_argument("--json", help="also write the figures here")
    e.add_argument("-v", "--verbose", action="store_true")
    w = sub.add_parser("warm")
    w.add_argument("--model", default="smollm2")
    w.add_argument("--concurrency", type=int, default=8)
    w.add_argument("--url", help="use this running OpenAI-compatible server instead of starting one")
    args = parser.parse_args()
    {"judge": cmd_judge, "e2e": cmd_e2e, "warm": cmd_warm}[args.cmd](args)


if __name__ == "__main__":
    main()
