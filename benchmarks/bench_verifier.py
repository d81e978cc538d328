"""Speed of the pair verifier's features: per-text cache against the per-pair loop it replaced.

    .venv/bin/python benchmarks/bench_verifier.py                 # dedup candidates at 3,000 conversations
    .venv/bin/python benchmarks/bench_verifier.py --n 10000 --repeat 2

Two candidate sets, as the pipeline hands them to the verifier:

- `dedup near` / `dedup semantic`: the candidate pairs `curate.dedup.dedup.run_dedup` sends
  to the verifier on `bench_pipeline.py`'s generated logs of `--n` conversations (found with
  the real MinHash and MiniLM stages; the verifier itself is not run there);
- `decontam`: each HumanEval item with 5 rows of `bench_decontam.py`'s generated training
  set (long code prompts against short chat prompts, as in `bench_decontam.py e2e`).

Contenders, on the same pairs in the same process, alternating: `per-pair loop (before)`,
`per_pair_features` below: the code before the per-text cache, which recomputed every
text's quantities (normalised text, word sets, shingles, numbers, names, identifiers,
language, content words, code score) for every pair it sits in, and compared every content
word with every word of the other text for typos; and `per-text cache`, today's
`curate.models.verify.pair_features`. Both compute the features only (the embedding channels
are the embedders' cost, measured in bench_embed.py). The run fails if their values differ.

    .venv/bin/python benchmarks/bench_verifier.py --use-threads      # USE-multilingual: 1 thread vs min(4, cores)

`--use-threads` times instead `MultilingualEmbedder` (the channel the verifier, decontam's tier
and dedup embed with) on one BLAS thread against its former default of min(4, cores) threads,
alternating, on HumanEval's 164 items and 3,000 generated chat prompts; it fails if the vectors differ.

CPU s are this process's user+system seconds (wall time swings 2-5x on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from curate.models import verify  # noqa: E402


def per_pair_features(a: Sequence[str], b: Sequence[str]) -> dict[str, np.ndarray]:
    """`pair_features(a, b)` as it was computed before the per-text cache (main at 6f051c9,
    with the later features: typo-tolerant name/identifier differences, unmatched words
    against all the other text's words, the segment cosines), channel cosines left NaN: each
    pair recomputes both texts' quantities. The baseline of
    this benchmark and the reference `tests/curate/test_verify.py` checks the cache against."""
    n = len(a)
    f = {"cos_full": np.full(n, np.nan, np.float32), "cos_multi": np.full(n, np.nan, np.float32),
         "tfidf": verify._tfidf_cosines(a, b) if n else np.zeros(0, np.float32)}
    cols = {k: np.zeros(n, dtype=np.float32) for k in verify._PAIR_COLUMNS}
    word_idf = verify._idf_tables()[1]
    for i, (x, y) in enumerate(zip(a, b)):
        nx, ny = verify.normalise(x), verify.normalise(y)
        wx, wy = set(verify._WORD.findall(nx)), set(verify._WORD.findall(ny))
        cols["word_jaccard"][i] = len(wx & wy) / len(wx | wy) if wx | wy else 1.0
        sx, sy = verify._shingles_of(verify.normalise(x)), verify._shingles_of(verify.normalise(y))
        small, big = (sx, sy) if len(sx) <= len(sy) else (sy, sx)
        cols["containment"][i] = len(small & big) / len(small) if small else 0.0
        lx, ly = len(nx), len(ny)
        cols["len_ratio"][i] = min(lx, ly) / max(lx, ly) if max(lx, ly) else 1.0
        cols["num_diff"][i] = verify._diff(verify.numbers(x), verify.numbers(y))
        if verify._mixed_case(x) and verify._mixed_case(y):
            cols["name_diff"][i] = verify._diff_close(verify.names(x), verify.names(y))
            cols["prose_name_diff"][i] = verify._diff_close(verify.prose_names(x), verify.prose_names(y))
        cols["ident_diff"][i] = verify._diff_close(verify.identifiers(x), verify.identifiers(y))
        la, lb = verify.language(x), verify.language(y)
        cols["cross_lingual"][i] = float(la != lb and "und" not in (la, lb))
        cols["short"][i] = 1.0 / (1.0 + min(len(wx), len(wy)) / 8.0)
        cx, cy = verify._content_words(x)[:300], verify._content_words(y)[:300]
        ua, ub = _unmatched(cx, wy, word_idf), _unmatched(cy, wx, word_idf)
        cols["unmatched_max"][i], cols["unmatched_min"][i] = max(ua, ub), min(ua, ub)
        cols["code"][i] = max(verify.code_score(x), verify.code_score(y))
        cols["swap_words"][i] = verify._swap_words(wx, wy, {})
        cols["value_diff"][i] = verify._diff(verify.number_values(x), verify.number_values(y))
        cols["qty_diff"][i] = verify._diff(verify.quantities(x), verify.quantities(y))
    f.update(cols)
    f["gap_other"] = np.zeros(n, np.float32)
    f["seg_tfidf"], f["seg_last"] = np.zeros(n, np.float32), np.zeros(n, np.float32)
    for i, (x, y) in enumerate(zip(a, b)):
        nx, ny = verify.normalise(x), verify.normalise(y)
        longer, shorter = (x, y) if (len(nx), nx) >= (len(ny), ny) else (y, x)
        segs = verify.segments(longer)
        cands = segs + [segs[k] + " " + segs[k + 1] for k in range(len(segs) - 1)] + [verify.normalise(longer)[:4000]]
        cos = verify._tfidf_of(cands, [verify.normalise(shorter)[:4000]] * len(cands))
        f["seg_tfidf"][i], f["seg_last"][i] = cos.max(), cos[len(segs) - 1]
    return f


def _unmatched(words: list[str], other: set[str], idf: np.ndarray) -> float:
    """IDF-weighted share of `words` with no equal or typo-close word in `other` (every pair compared)."""
    if not words:
        return 0.0
    total = miss = 0.0
    for w in words:
        weight = float(idf[verify.word_bucket(w)])
        total += weight
        if w not in other and not any(verify._close(w, v) for v in other):
            miss += weight
    return miss / total if total else 0.0


def dedup_pairs(n: int) -> dict[str, tuple[list[str], list[str]]]:
    """The near and semantic candidate pairs run_dedup hands the verifier on n generated conversations."""
    import bench_pipeline

    import curate.dedup.dedup as dedup
    from curate.core.lake import Lake
    from curate.ingest.ingest import ingest

    got: dict[str, tuple[list[str], list[str]]] = {}

    def capture(kind, cand, text_of, stats, variant_links):
        cand = sorted(c for c in cand if c[0] in text_of and c[1] in text_of)
        got[f"dedup {kind}"] = ([text_of[c[0]] for c in cand], [text_of[c[1]] for c in cand])
        return []

    tmp = Path(tempfile.mkdtemp(prefix="bench_verifier_"))
    lake = Lake(tmp / "lake")
    ingest(lake, bench_pipeline.generate(tmp / "landing", n))
    inner, dedup._verify_pairs = dedup._verify_pairs, capture
    try:
        dedup.run_dedup(lake, dedup.DedupConfig())
    finally:
        dedup._verify_pairs = inner
    return got


def decontam_pairs(rows: int = 3000, per_item: int = 5, max_chars: int = 2000) -> tuple[list[str], list[str]]:
    """Each HumanEval item with `per_item` generated training rows (the planted ones among them)."""
    from bench_decontam import generate_train

    from decontam.benchmarks import load_benchmark

    he = load_benchmark("humaneval")
    data, _ = generate_train(rows)
    rng = random.Random(0)
    a, b = [], []
    for text in he.texts:
        for row in rng.sample(data, per_item):
            a.append(text[:max_chars])
            b.append(row["text"][:max_chars])
    return a, b


def use_threads(repeat: int) -> int:
    """USE-multilingual on 1 thread against min(4, cores) threads, the same texts, alternating."""
    from bench_decontam import generate_train

    from curate.models.embed import MultilingualEmbedder
    from decontam.benchmarks import load_benchmark

    sets = {"HumanEval items": [t[:2000] for t in load_benchmark("humaneval").texts],
            "generated chat prompts": [r["text"] for r in generate_train(3000)[0]]}
    many = min(4, os.cpu_count() or 1)
    models = {n: MultilingualEmbedder(threads=n) for n in (1, many)}
    for m in models.values():
        m.embed(["load the model outside the timings"])
    print(f"\nUSE-multilingual threads, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
          f"sum of {repeat} runs each, alternating:\n")
    print("| texts | n | threads | wall s | CPU s | same vectors |")
    print("|---|---:|---:|---:|---:|---|")
    failed = False
    for name, texts in sets.items():
        spent = {n: [0.0, 0.0] for n in models}
        vecs = {}
        for _ in range(repeat):
            for n, m in models.items():
                t, c = time.perf_counter(), time.process_time()
                vecs[n] = m.embed(texts)
                spent[n][0] += time.perf_counter() - t
                spent[n][1] += time.process_time() - c
        same = np.array_equal(vecs[1], vecs[many])
        failed |= not same
        for n, (wall, cpu) in spent.items():
            print(f"| {name} | {len(texts)} | {n} | {wall:.2f} | {cpu:.2f} | {'yes' if same else 'NO'} |")
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")
    return 1 if failed else 0


def _timed(fn, a, b) -> tuple[float, float, dict[str, np.ndarray]]:
    t, c = time.perf_counter(), time.process_time()
    out = fn(a, b)
    return time.perf_counter() - t, time.process_time() - c, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="generated conversations for the dedup candidates")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per contender (alternating)")
    parser.add_argument("--use-threads", action="store_true", help="time USE-multilingual on 1 vs min(4, cores) threads")
    args = parser.parse_args(argv)
    if args.use_threads:
        return use_threads(args.repeat)
    sets = {**dedup_pairs(args.n), "decontam": decontam_pairs()}
    verify.pair_features(["warm up"], ["warm up, once"])  # imports and the IDF tables load outside the timings
    contenders = {"per-pair loop (before)": per_pair_features, "per-text cache": verify.pair_features}
    print(f"\nPair features, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; best of "
          f"{args.repeat} by CPU s:\n")
    print("| pairs | n | distinct texts | contender | wall s | CPU s | pairs per CPU s | CPU speed-up | same values |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---|")
    failed = False
    for name, (a, b) in sets.items():
        best: dict[str, tuple[float, float]] = {}
        outs = {}
        for _ in range(args.repeat):
            for label, fn in contenders.items():
                wall, cpu, outs[label] = _timed(fn, a, b)
                if label not in best or cpu < best[label][1]:
                    best[label] = (wall, cpu)
        ref = outs["per-pair loop (before)"]
        same = all(np.array_equal(ref[k], outs["per-text cache"][k], equal_nan=True) for k in ref)
        failed |= not same
        base_cpu = best["per-pair loop (before)"][1]
        for label, (wall, cpu) in best.items():
            print(f"| {name} | {len(a)} | {len(set(a) | set(b))} | {label} | {wall:.2f} | {cpu:.2f} | "
                  f"{len(a) / max(cpu, 1e-9):,.0f} | {base_cpu / max(cpu, 1e-9):.1f}x | {'yes' if same else 'NO'} |")
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
