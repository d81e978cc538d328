"""MinHash near-dedup throughput, peak memory and cluster agreement against datasketch.

Same run, same machine, identical parameters (permutations, shingles, LSH bands x rows,
verification threshold) for every implementation:

  ours             curate.dedup.minhash: vectorised numpy (shingling included)
  datasketch loop  MinHash() + update() per shingle, one document at a time
  datasketch bulk  MinHash.bulk(): numpy per document
  rensa            RMinHash per document (Rust), shingles built in Python

Signatures are timed on the first --baseline-n documents for all four (the baselines are
slow); ours is then timed on all --n documents, followed by LSH banding and clustering.
Cluster agreement compares our clusters with datasketch's (bulk signatures, MinHashLSH
with the same bands x rows, candidates verified at the same Jaccard threshold, connected
components) on the baseline documents:
  status agreement: share of documents with the same keep/drop decision (first member of
                    its cluster is kept)
  pair F1:          F1 of the co-clustered pairs, datasketch's pairs as the reference

The corpus is generated (seeded): short prompts drawn from a Zipf vocabulary of words
taken from the test bed, with 5% exact copies and 10% near copies (typos, case,
whitespace, punctuation) planted.

    .venv/bin/python benchmarks/bench_minhash.py --n 1000000 --baseline-n 100000 [--rev REV]

--rev REV adds a row for curate/dedup/minhash.py as committed at REV (an earlier version)
on all --n documents, and says whether its clusters equal this version's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TESTBED = REPO.parent / "shared" / "testbed"
_W = re.compile(r"\w+")


# ---- corpus -------------------------------------------------------------------------------

def vocabulary() -> list[str]:
    words: list[str] = []
    for path in list((TESTBED / "fastchat").rglob("*.json*")) + list((REPO / "curate" / "ingest" / "demo_logs").glob("*.json*")):
        if path.suffix in (".json", ".jsonl"):
            words += _W.findall(path.read_text(errors="ignore").lower())
    uniq = sorted(set(w for w in words if w.isalpha() and len(w) > 1))
    rng = np.random.default_rng(7)
    extra = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=rng.integers(3, 10))) for _ in range(20000)]
    return uniq + extra


def perturb(text: str, rng: np.random.Generator) -> str:
    kind = rng.integers(0, 4)
    if kind == 0:  # one or two typos: swap adjacent letters
        chars = list(text)
        for _ in range(rng.integers(1, 3)):
            i = int(rng.integers(1, max(2, len(chars) - 1)))
            chars[i - 1], chars[i] = chars[i], chars[i - 1]
        return "".join(chars)
    if kind == 1:
        return text.upper() if rng.random() < 0.5 else text.capitalize()
    if kind == 2:
        return "  ".join(text.split()) + "\n"
    return text.rstrip(".?!") + rng.choice(["!!", "?", "...", " ?"])


def make_corpus(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    vocab = np.array(vocabulary())
    ranks = np.arange(1, len(vocab) + 1)
    p = 1.0 / ranks**1.1
    p /= p.sum()
    lengths = rng.integers(8, 40, size=n)
    draws = rng.choice(len(vocab), size=int(lengths.sum()), p=p)
    out, pos = [], 0
    kinds = rng.random(n)
    for i in range(n):
        if i > 10 and kinds[i] < 0.05:
            out.append(out[int(rng.integers(0, i))])
        elif i > 10 and kinds[i] < 0.15:
            out.append(perturb(out[int(rng.integers(0, i))], rng))
        else:
            out.append(" ".join(vocab[draws[pos: pos + lengths[i]]]).capitalize() + "?")
        pos += lengths[i]
    return out


# ---- shingles for the baselines (same definition as curate.dedup.minhash) ------------------

def shingles(text: str, mode: str, n: int) -> list[bytes]:
    words = _W.findall(unicodedata.normalize("NFKC", text).lower())
    if mode == "word":
        if not words:
            return []
        if len(words) < n:
            return [" ".join(words).encode()]
        return [" ".join(words[i: i + n]).encode() for i in range(len(words) - n + 1)]
    data = " ".join(words).encode()
    if not data:
        return []
    if len(data) < n:
        return [data]
    return [data[i: i + n] for i in range(len(data) - n + 1)]


# ---- runners (each in its own process: peak RSS is its own) -----------------------------------

def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_revision(rev: str):
    """curate/dedup/minhash.py as committed at git revision `rev`, imported as a module of
    its own (to time an earlier version in the same run)."""
    import importlib.util
    import subprocess
    import tempfile

    src = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:curate/dedup/minhash.py"],
                         check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "dedup_minhash_at_rev.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("dedup_minhash_at_rev", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def run_ours(texts, cfg_kw, q, rev=None):
    if rev is None:
        from curate.dedup.dedup import minhash as mod
    else:
        mod = load_revision(rev)
    MinHashConfig, components, near_pairs, signatures = mod.MinHashConfig, mod.components, mod.near_pairs, mod.signatures

    cfg = MinHashConfig(**cfg_kw)
    signatures(texts[:100], cfg)  # imports and warm-up outside the clock
    base = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    sig, has = signatures(texts, cfg)
    t1, c1 = time.perf_counter(), time.process_time()
    pairs, _ = near_pairs(sig, has, cfg)
    labels = components(len(texts), pairs)
    t2 = time.perf_counter()
    q.put({"sig_s": t1 - t0, "cpu_s": c1 - c0, "lsh_s": t2 - t1, "peak_mb": _peak_mb() - base, "labels": labels.tolist()})


def run_datasketch(texts, cfg_kw, mode, q, seed=1):
    from datasketch import MinHash

    n_perm, sh, ng = cfg_kw["num_perm"], cfg_kw["shingle"], cfg_kw["ngram"]
    MinHash(num_perm=n_perm, seed=seed)
    base = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    sets = [shingles(t, sh, ng) for t in texts]
    if mode == "loop":
        mins = []
        for s in sets:
            m = MinHash(num_perm=n_perm, seed=seed)
            for x in s:
                m.update(x)
            mins.append(m)
    else:
        mins = MinHash.bulk(sets, num_perm=n_perm, seed=seed)
    t1, c1 = time.perf_counter(), time.process_time()
    out = {"sig_s": t1 - t0, "cpu_s": c1 - c0, "peak_mb": _peak_mb() - base}
    if mode == "bulk":
        out["labels"] = datasketch_clusters(mins, [bool(s) for s in sets], cfg_kw).tolist()
    q.put(out)


def datasketch_clusters(mins, has, cfg_kw) -> np.ndarray:
    from datasketch import MinHashLSH

    from curate.dedup.minhash import MinHashConfig, components

    cfg = MinHashConfig(**cfg_kw)
    b, r = cfg.band_rows
    lsh = MinHashLSH(num_perm=cfg.num_perm, params=(b, r))
    for i, (m, ok) in enumerate(zip(mins, has)):
        if ok:
            lsh.insert(i, m)
    pairs = []
    for i, (m, ok) in enumerate(zip(mins, has)):
        if not ok:
            continue
        for j in lsh.query(m):
            if j > i and m.jaccard(mins[j]) >= cfg.threshold - 1e-6:
                pairs.append((i, j))
    return components(len(mins), np.array(pairs, dtype=np.int64).reshape(-1, 2))


def run_rensa(texts, cfg_kw, q):
    from rensa import RMinHash

    n_perm, sh, ng = cfg_kw["num_perm"], cfg_kw["shingle"], cfg_kw["ngram"]
    base = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    for t in texts:
        m = RMinHash(num_perm=n_perm, seed=1)
        m.update([x.decode("utf-8", "replace") for x in shingles(t, sh, ng)])
        m.digest()
    q.put({"sig_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "peak_mb": _peak_mb() - base})


def in_process(target, *args, **kwargs) -> dict:
    import queue

    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q), kwargs=kwargs)
    p.start()
    while True:  # a child that dies without a result must not leave us waiting forever
        try:
            out = q.get(timeout=5)
            break
        except queue.Empty:
            if not p.is_alive():
                raise RuntimeError(f"{target.__name__} died (exit code {p.exitcode}) without a result")
    p.join()
    return out


def agreement(ours: np.ndarray, ref: np.ndarray) -> dict:
    def dropped(labels):
        seen, out = set(), np.zeros(len(labels), bool)
        for i, lab in enumerate(labels):
            out[i] = lab in seen
            seen.add(lab)
        return out

    status = float((dropped(ours) == dropped(ref)).mean())

    def pair_count(labels):
        _, c = np.unique(labels, return_counts=True)
        return int((c * (c - 1) // 2).sum())

    joint = ours.astype(np.int64) * (int(ref.max()) + 1) + ref
    both, p_ours, p_ref = pair_count(joint), pair_count(ours), pair_count(ref)
    prec = both / p_ours if p_ours else 1.0
    rec = both / p_ref if p_ref else 1.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 1.0
    return {"status_agreement": status, "pair_precision": prec, "pair_recall": rec, "pair_f1": f1}


def lsh_only(args) -> None:
    from curate.dedup.minhash import MinHashConfig, components, near_pairs

    cfg = MinHashConfig(num_perm=args.num_perm, shingle=args.shingle, ngram=args.ngram, threshold=args.threshold)
    rng = np.random.default_rng(0)
    sig = rng.integers(0, 2**32, size=(args.n, args.num_perm), dtype=np.uint32)
    copies = rng.random(args.n) < 0.15
    src = rng.integers(0, args.n, size=args.n)
    keep = rng.random((args.n, args.num_perm)) < 0.85  # a copy shares ~85% of its slots
    sig[copies] = np.where(keep[copies], sig[src[copies]], sig[copies])
    has = np.ones(args.n, dtype=bool)
    base = _rss_mb()
    t0 = time.perf_counter()
    pairs, _ = near_pairs(sig, has, cfg)
    t1 = time.perf_counter()
    labels = components(args.n, pairs)
    t2 = time.perf_counter()
    b, r = cfg.band_rows
    print(f"LSH {b} bands x {r} rows over {args.n} signatures: candidates + verification {t1 - t0:.2f} s, "
          f"connected components {t2 - t1:.2f} s, {len(pairs)} pairs, {args.n - len(set(labels.tolist()))} "
          f"duplicates; peak RSS +{_peak_mb() - base:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--baseline-n", type=int, default=100_000)
    ap.add_argument("--shingle", choices=["word", "char"], default="word")
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--skip-loop", action="store_true", help="skip the slow datasketch per-document loop")
    ap.add_argument("--json", dest="json_out", default=None)
    ap.add_argument("--rev", default=None,
                    help="also time curate/dedup/minhash.py as committed at this git revision (e.g. an "
                         "earlier version) on the same documents in the same run")
    ap.add_argument("--lsh-only", action="store_true",
                    help="time LSH banding + clustering alone on --n synthetic signatures (15%% planted near copies)")
    args = ap.parse_args()
    from curate.dedup.minhash import MinHashConfig

    if args.lsh_only:
        return lsh_only(args)

    cfg_kw = {"num_perm": args.num_perm, "shingle": args.shingle, "ngram": args.ngram, "threshold": args.threshold}
    b, r = MinHashConfig(**cfg_kw).band_rows
    t0 = time.perf_counter()
    texts = make_corpus(args.n)
    nb = min(args.baseline_n, args.n)
    small = texts[:nb]
    print(f"corpus: {args.n} generated prompts (mean {np.mean([len(t) for t in small]):.0f} chars) in "
          f"{time.perf_counter() - t0:.0f} s; {args.num_perm} permutations, {args.shingle} {args.ngram}-grams, "
          f"LSH {b} bands x {r} rows, threshold {args.threshold}", file=sys.stderr)

    load_start = os.getloadavg()
    rows = []
    res_bulk = in_process(run_datasketch, small, cfg_kw, "bulk")
    rows.append(("datasketch bulk (baseline)", nb, res_bulk))
    if not args.skip_loop:
        rows.append(("datasketch loop", nb, in_process(run_datasketch, small, cfg_kw, "loop")))
    rows.append(("rensa RMinHash + Python shingles", nb, in_process(run_rensa, small, cfg_kw)))
    res_small = in_process(run_ours, small, cfg_kw)
    rows.append(("ours (numpy, shingling included)", nb, res_small))
    res_big = in_process(run_ours, texts, cfg_kw) if args.n > nb else res_small
    if args.n > nb:
        rows.append(("ours (numpy, shingling included)", args.n, res_big))
    if args.rev:
        res_rev = in_process(run_ours, texts, cfg_kw, rev=args.rev)
        rows.append((f"ours at {args.rev[:12]}", args.n, res_rev))
        same = res_rev["labels"] == res_big["labels"]
        print(f"clusters at {args.rev[:12]} {'identical to' if same else 'DIFFER from'} this version's "
              f"on {args.n} docs", file=sys.stderr)

    base_rate = nb / res_bulk["sig_s"]
    # the machine is shared: the load says how far the absolute figures can be trusted
    print(f"\nload average (1, 5, 15 min) at start {', '.join(f'{x:.2f}' for x in load_start)}, after the "
          f"timed runs {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    # CPU seconds of the contender's process (all its threads): under load, wall time mostly
    # measures the other processes, CPU time much less so
    print(f"\n{'signatures':40s} {'docs':>9s} {'seconds':>8s} {'docs/s':>9s} {'vs bulk':>8s} {'CPU s':>7s} "
          f"{'docs/CPU s':>10s} {'peak MB':>8s}")
    report = {"params": {**cfg_kw, "bands": b, "rows": r}, "signatures": [],
              "load_average": {"start": load_start, "end": os.getloadavg()}}
    for name, n, res in rows:
        rate = n / res["sig_s"]
        print(f"{name:40s} {n:9d} {res['sig_s']:8.2f} {rate:9.0f} {rate / base_rate:7.1f}x {res['cpu_s']:7.2f} "
              f"{n / res['cpu_s']:10.0f} {res['peak_mb']:8.0f}")
        report["signatures"].append({"name": name, "docs": n, "seconds": res["sig_s"], "docs_per_s": rate,
                                     "cpu_seconds": res["cpu_s"], "peak_mb": res["peak_mb"]})
    print(f"\nLSH banding + clustering, ours: {nb} docs {res_small['lsh_s']:.2f} s; "
          f"{args.n} docs {res_big['lsh_s']:.2f} s (peak {res_big['peak_mb']:.0f} MB incl. signatures)")
    agree = agreement(np.array(res_small["labels"]), np.array(res_bulk["labels"]))
    print(f"cluster agreement with datasketch on {nb} docs: status {agree['status_agreement']:.4f}, "
          f"pair precision {agree['pair_precision']:.4f} recall {agree['pair_recall']:.4f} F1 {agree['pair_f1']:.4f}")
    # the noise floor: two datasketch runs that differ only in the seed of their hash permutations
    res_seed2 = in_process(run_datasketch, small, cfg_kw, "bulk", seed=2)
    floor = agreement(np.array(res_seed2["labels"]), np.array(res_bulk["labels"]))
    print(f"noise floor, datasketch seed 2 vs seed 1 on {nb} docs: status {floor['status_agreement']:.4f}, "
          f"pair precision {floor['pair_precision']:.4f} recall {floor['pair_recall']:.4f} F1 {floor['pair_f1']:.4f}")
    ours_dups = len(res_small["labels"]) - len(set(res_small["labels"]))
    ref_dups = len(res_bulk["labels"]) - len(set(res_bulk["labels"]))
    print(f"duplicates found on {nb} docs: ours {ours_dups}, datasketch {ref_dups}")
    report.update({"lsh_seconds": {str(nb): res_small["lsh_s"], str(args.n): res_big["lsh_s"]}, "agreement": agree,
                   "datasketch_seed_agreement": floor})
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
