"""Benchmark: the review page of a 100k-conversation lake: size, build time, and time to open
in headless chromium, against an uncapped, unpaginated page of the same lake (the baseline).

    .venv/bin/python benchmarks/bench_review.py                 # 100k conversations
    .venv/bin/python benchmarks/bench_review.py --n 10000 --keep /tmp/review-bench

The lake is built for real from generated logs (benchmarks/bench_pipeline.py's generator:
templated prompts in 9 languages with exact and near duplicates, planted PII and HumanEval
items): ingest, the PII tagger, exact and near dedup (semantic off: embedding 100k texts
on this CPU would dominate), and an n-gram decontam check against HumanEval. On top, to fill
every cap the page has, synthetic flags are added the way the stages write them: 5% of the
conversations flagged against random HumanEval items with random cosines, and 2% flagged by
moderation tier 1.

Open time: from `driver.get` to the page's own ready mark (data parsed, counts and the first
page of the decontamination section rendered), read from `performance.now()` in the page
(median and max of --repeat loads, each in a fresh tab), and the wall time of `driver.get`
around it; then the time to build the other three sections (each is built when first
shown). Needs /usr/bin/chromium and /usr/bin/chromedriver (`make browser`). Prints the load
average and the CPU seconds of each build: the machine is shared, so wall time under load
mostly measures the others.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_pipeline import generate  # noqa: E402

SCRIPT_TIMEOUT_S = 120


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def build_lake(root: Path, n: int, seed: int) -> "Lake":  # noqa: F821
    import pyarrow as pa
    from decontam.benchmarks import load_benchmark
    from decontam.check import CheckConfig

    from decontam.lake import check_lake
    from curate.dedup.dedup import DedupConfig, run_dedup
    from curate.ingest.ingest import ingest
    from curate.core.lake import Lake
    from curate.tag.pii import tag_pii
    from moderation.tag import LOCAL_SCHEMA
    from moderation.taxonomy import CATEGORIES

    lake = Lake(root / "lake")
    logs = generate(root / "logs", n, seed=seed)
    for label, step in (("ingest", lambda: ingest(lake, logs)), ("pii", lambda: tag_pii(lake)),
                        ("dedup", lambda: run_dedup(lake, DedupConfig(semantic=False))),
                        ("decontam", lambda: check_lake(lake, ["humaneval"], CheckConfig(
                            use_embeddings=False, cache_dir=root / "cache")))):
        t = time.perf_counter()
        step()
        print(f"  {label}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
    rng = random.Random(seed)
    ids = [r[0] for r in lake.connect().execute("SELECT conversation_id FROM conversations ORDER BY 1").fetchall()]
    he = load_benchmark("humaneval")
    flagged = rng.sample(ids, len(ids) // 20)
    lake.write_annotation("decontam", pa.Table.from_pylist([
        {"conversation_id": cid, "contaminated": True, "benchmarks": ["humaneval"], "decided_by": "embedding",
         "matches": json.dumps([{"benchmark": "humaneval", "test_id": rng.choice(he.ids), "turn": "0",
                                 "decided_by": "embedding", "cosine": round(rng.uniform(0.68, 0.9), 4)}]),
         "check_key": "synthetic", "run_id": "zz-synthetic"} for cid in flagged]), part="zz-synthetic")
    mod = []
    for cid in rng.sample(ids, len(ids) // 50):
        scores = {c: 0.0 for c in CATEGORIES}
        scores["harassment"] = round(rng.uniform(0.5, 1.0), 3)
        verdict = {"categories": {c: c == "harassment" for c in CATEGORIES}, "category_scores": scores, "flagged": True}
        mod.append({"conversation_id": cid, "openai_moderation": [verdict], "flagged": True, "flagged_messages": 1,
                    "review_messages": [0], "moderation_model": "synthetic", "run_id": "zz-synthetic"})
    lake.write_annotation("moderation", pa.Table.from_pylist(mod, schema=LOCAL_SCHEMA.append(
        pa.field("run_id", pa.string()))), part="zz-synthetic")
    return lake


def open_times(path: Path, repeat: int) -> tuple[list[float], list[float], list[float]]:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={tempfile.mkdtemp()}"):
        opts.add_argument(arg)
    def start():
        d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        d.set_page_load_timeout(300)
        d.set_script_timeout(SCRIPT_TIMEOUT_S)
        return d

    driver = start()
    ready, wall, sections = [], [], []
    try:
        for _ in range(repeat):
            driver.switch_to.new_window("tab")
            t = time.perf_counter()
            driver.get(path.as_uri())
            wall.append(time.perf_counter() - t)
            ms = driver.execute_script("return window.chatcurateReview && window.chatcurateReview.readyMs")
            if ms is None:
                raise RuntimeError(f"{path} did not reach its ready mark")
            ready.append(ms / 1000)
            # the other sections are built when first shown: time showing all four once
            try:
                sections.append(driver.execute_script(
                    "const t = performance.now();"
                    "for (const s of ['duplicates', 'quarantine', 'moderation', 'decontam']) window.chatcurateReview.show(s);"
                    "return performance.now() - t;") / 1000)
            except TimeoutException:
                sections.append(math.inf)  # printed as inf: over the script timeout
                driver.quit()
                driver = start()
    finally:
        driver.quit()
    return ready, wall, sections


def main(argv: list[str] | None = None) -> int:
    from curate.review.page import ReviewConfig, write_review_page

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="build (or reuse) the lake here instead of a temporary folder")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-review-"))
    try:
        from curate.core.lake import Lake

        lake = Lake(root / "lake")
        if not lake.exists():
            print(f"building a {args.n:,}-conversation lake under {root}", file=sys.stderr)
            lake = build_lake(root, args.n, args.seed)
        con = lake.connect()
        n = con.execute("SELECT count(*) FROM conversations").fetchone()[0]
        con.close()
        big = 10**9
        contenders = [("chatcurate (capped, 50 a page)", ReviewConfig())]
        if not args.no_baseline:
            contenders.append(("baseline: uncapped, one page", ReviewConfig(
                max_pairs=big, max_clusters=big, max_members=big, max_quarantine_per_reason=big,
                max_moderation=big, max_pii_samples=big, max_section_bytes=big, page_size=big)))
        rows = []
        for label, config in contenders:
            c0, t0 = cpu_s(), time.perf_counter()
            page = write_review_page(lake, root / label.split()[0].strip(":"), config)
            build, build_cpu = time.perf_counter() - t0, cpu_s() - c0
            ready, wall, sections = open_times(page, args.repeat)
            rows.append({"page": label, "MB": round(page.stat().st_size / 1e6, 2), "build s": round(build, 1),
                         "build CPU s": round(build_cpu, 1), "open s (median)": round(statistics.median(ready), 2),
                         "open s (max)": round(max(ready), 2), "driver.get s (median)": round(statistics.median(wall), 2),
                         "other sections s (median)": round(statistics.median(sections), 2)})
        print(f"\nreview page of a {n:,}-conversation lake; load average {os.getloadavg()[0]:.2f}"
              f" {os.getloadavg()[1]:.2f}; chromium headless; {args.repeat} loads each\n")
        cols = list(rows[0])
        print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
        for r in rows:
            print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
