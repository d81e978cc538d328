"""Dedup quality: precision and recall per kind on a corpus with planted duplicates.

Originals (real prompts nobody on this project wrote): MT-bench and Vicuna-bench questions
and MMLU sociology / US-history questions with their correct answer, from
../shared/testbed. Planted, each pointing at one original:
  exact     the original with case and whitespace changed (same key after normalisation)
  near      one or two typos (adjacent letters swapped) and/or punctuation changed, on
            originals of at least 50 characters, case sometimes changed too
  semantic  the test bed's English rephrasing of an MMLU item (a rewording by GPT-4)

The corpus goes through the real stage (ingest into a lake, `run_dedup`, the real embedding
model). For kind K, a planted copy is found when it shares its original's K cluster
(`exact_cluster`, `near_cluster`, `semantic_cluster`); precision counts, over every
conversation that is not first in its K cluster, those whose original is the original of
the cluster's first member. Semantic thresholds are swept (stored embeddings are reused).

    .venv/bin/python benchmarks/eval_dedup_quality.py [--thresholds 0.8,0.85,0.9]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TESTBED = REPO.parent / "shared" / "testbed"

from benchmarks.eval_verifier import use_models  # noqa: E402


def originals() -> tuple[list[str], dict[int, str]]:
    """Original prompts, and rewordings keyed by original index."""
    texts: list[str] = []
    rephrased: dict[int, str] = {}
    fc = TESTBED / "fastchat"
    for name in ("mt_bench/question.jsonl", "vicuna_bench/question.jsonl"):
        for line in (fc / name).read_text().splitlines():
            texts.append(json.loads(line)["turns"][0])
    rd = TESTBED / "llm-decontaminator" / "rephrase"
    for subject in ("sociology", "high_school_us_history"):
        with open(rd / f"{subject}_test.csv", newline="") as fh:
            rows = list(csv.reader(fh))
        reph = [json.loads(x)["text"] for x in (rd / f"{subject}_test_rephrase_english_filtered_question.jsonl").read_text().splitlines()]
        for row, r in zip(rows, reph):
            q, options, ans = row[0], row[1:5], row[5].strip()
            texts.append(f"{q} {options['ABCD'.index(ans)]}")
            if r.strip():
                rephrased[len(texts) - 1] = r
    # The originals must not duplicate each other, or the ground truth is wrong: MMLU history
    # items share source passages ("This question refers to the following information. ..."),
    # and MT-bench / Vicuna-bench share a few questions. Keep one original per opening.
    keep, seen = [], set()
    for i, t in enumerate(texts):
        head = " ".join(t.lower().split())[:60]
        if head not in seen:
            seen.add(head)
            keep.append(i)
    new_index = {old: new for new, old in enumerate(keep)}
    return [texts[i] for i in keep], {new_index[i]: r for i, r in rephrased.items() if i in new_index}


def typo(text: str, rng) -> str:
    chars = list(text)
    letters = [i for i in range(1, len(chars)) if chars[i].isalpha() and chars[i - 1].isalpha() and chars[i] != chars[i - 1]]
    for i in rng.choice(letters, size=min(len(letters), int(rng.integers(1, 3))), replace=False):
        chars[i - 1], chars[i] = chars[i], chars[i - 1]
    return "".join(chars)


def punct(text: str, rng) -> str:
    out = text.replace(",", "") if "," in text and rng.random() < 0.5 else text
    return out.rstrip(".?!") + str(rng.choice(["!!", " ?", "...", "?!"]))


def build_corpus(seed: int = 0):
    rng = np.random.default_rng(seed)
    base, rephrased = originals()
    docs = [(t, i, "original") for i, t in enumerate(base)]
    for i in rng.choice(len(base), size=120, replace=False):
        t = base[i]
        t = t.upper() if rng.random() < 0.3 else t.lower() if rng.random() < 0.5 else t
        docs.append(("  ".join(t.split(" ")) + ("\n" if rng.random() < 0.5 else ""), int(i), "exact"))
    long_ones = [i for i, t in enumerate(base) if len(t) >= 50]
    for i in rng.choice(long_ones, size=150, replace=False):
        t = base[i]
        k = rng.integers(0, 3)
        t = typo(t, rng) if k == 0 else punct(t, rng) if k == 1 else punct(typo(t, rng), rng)
        docs.append((t.lower() if rng.random() < 0.3 else t, int(i), "near"))
    keys = sorted(rephrased)
    for i in rng.choice(keys, size=min(200, len(keys)), replace=False):
        docs.append((rephrased[int(i)], int(i), "semantic"))
    order = rng.permutation(len(docs))
    # originals first in time, copies after: the keep policy `earliest` keeps the original
    docs = [docs[j] for j in order if docs[j][2] == "original"] + [docs[j] for j in order if docs[j][2] != "original"]
    return docs


def write_log(docs, path: Path) -> None:
    with open(path, "w") as fh:
        for n, (text, _, _) in enumerate(docs):
            fh.write(json.dumps({"id": f"d{n}", "created": 1_700_000_000 + n,
                                 "messages": [{"role": "user", "content": text}]}) + "\n")


def score(rows: dict, docs, kind: str, column: str) -> dict:
    group = {f"d{n}": g for n, (_, g, _) in enumerate(docs)}
    original_id = {g: f"d{n}" for n, (_, g, k) in enumerate(docs) if k == "original"}
    found = planted = 0
    for n, (_, g, k) in enumerate(docs):
        if k == kind:
            planted += 1
            found += rows[f"d{n}"][column] == rows[original_id[g]][column]
    first: dict[str, str] = {}
    flagged = correct = 0
    for n in range(len(docs)):
        cid = f"d{n}"
        c = rows[cid][column]
        if c in first:
            flagged += 1
            correct += group[cid] == group[first[c]]
        else:
            first[c] = cid
    return {"kind": kind, "planted": planted, "recall": found / planted if planted else float("nan"),
            "flagged": flagged, "precision": correct / flagged if flagged else float("nan")}


def verifier_corpus(seed: int = 1):
    """Originals, planted copies and template twins for the verifier's dedup evaluation.

    Originals: MT-bench / Vicuna-bench questions, MMLU sociology / US-history questions of
    rows below 100 (rows past 100 fit the verifier), and the hard test set's requests
    (tests/data/verify_hard.jsonl, never fitted on). Distinct requests that must stay: each
    hard request's template twin (other values) and same-topic decoy. Planted duplicates:
    exact and near copies as in `build_corpus`; reworded duplicates (`semantic`): the test
    bed's GPT-4 rephrasings of those MMLU rows and the hard set's hand paraphrases (with
    typos) and translations."""
    rng = np.random.default_rng(seed)
    fc = TESTBED / "fastchat"
    base: list[str] = []
    for name in ("mt_bench/question.jsonl", "vicuna_bench/question.jsonl"):
        base += [json.loads(x)["turns"][0] for x in (fc / name).read_text().splitlines()]
    rd = TESTBED / "llm-decontaminator" / "rephrase"
    reworded: list[tuple[str, int]] = []
    for subject in ("sociology", "high_school_us_history"):
        with open(rd / f"{subject}_test.csv", newline="") as fh:
            rows = list(csv.reader(fh))[:100]
        reph = [json.loads(x)["text"] for x in (rd / f"{subject}_test_rephrase_english_filtered_question.jsonl").read_text().splitlines()]
        for row, r in zip(rows, reph):
            base.append(row[0])
            if r.strip():
                reworded.append((r.split("\nAnswer:")[0], len(base) - 1))
    hard = [json.loads(x) for x in (REPO / "tests" / "data" / "verify_hard.jsonl").read_text(encoding="utf-8").splitlines()]
    distinct_extra = []
    for r in hard:
        if r["kind"] == "typo_rephrase":
            base.append(r["a"])
        if r["kind"] in ("twin", "decoy"):
            distinct_extra.append(r["b"])
    hard_index = {t: i for i, t in enumerate(base)}
    for r in hard:
        if r["kind"] in ("typo_rephrase", "translated"):
            reworded.append((r["b"], hard_index[r["a"]]))
    # one original per opening (MMLU history rows share passages; the benchmarks share questions)
    keep, seen = [], set()
    for i, t in enumerate(base):
        head = " ".join(t.lower().split())[:60]
        if head not in seen:
            seen.add(head)
            keep.append(i)
    new_index = {old: new for new, old in enumerate(keep)}
    base = [base[i] for i in keep]
    docs = [(t, i, "original") for i, t in enumerate(base)]
    for t in distinct_extra:
        docs.append((t, len(docs) + 100_000, "distinct"))  # its own request
    for i in rng.choice(len(base), size=120, replace=False):
        t = base[i]
        docs.append(("  ".join((t.upper() if rng.random() < 0.3 else t).split(" ")), int(i), "exact"))
    long_ones = [i for i, t in enumerate(base) if len(t) >= 50]
    for i in rng.choice(long_ones, size=150, replace=False):
        t = base[i]
        k = rng.integers(0, 3)
        t = typo(t, rng) if k == 0 else punct(t, rng) if k == 1 else punct(typo(t, rng), rng)
        docs.append((t.lower() if rng.random() < 0.3 else t, int(i), "near"))
    for t, i in reworded:
        if i in new_index:
            docs.append((t, new_index[i], "semantic"))
    order = rng.permutation(len(docs))
    first = ("original", "distinct")
    return [docs[j] for j in order if docs[j][2] in first] + [docs[j] for j in order if docs[j][2] not in first]


CHAT = REPO / "tests" / "data" / "dedup_chat_eval.jsonl"


def chat_corpus(seed: int = 2):
    """Chat requests written by hand for this evaluation (tests/data/dedup_chat_eval.jsonl, never
    fitted on): 40 templates with 2-3 requests each that differ in one value or in the task
    ("... in 25 minutes" / "... in 40 minutes", "a haiku" / "a limerick"): every request is
    distinct and must stay. Planted: a hand rewording of each template's first request
    (`semantic`, some with shorthand: "18k car loan, 5.9 percent APR, 60 months"), 40 exact
    and 40 near copies (typos and punctuation, as in `build_corpus`) of random requests."""
    rng = np.random.default_rng(seed)
    rows = [json.loads(x) for x in CHAT.read_text(encoding="utf-8").splitlines() if x.strip()]
    requests = [r for r in rows if r["kind"] == "request"]
    index = {r["request"]: i for i, r in enumerate(requests)}
    docs = [(r["text"], i, "original") for i, r in enumerate(requests)]
    for i in rng.choice(len(requests), size=40, replace=False):
        t = requests[i]["text"]
        docs.append(("  ".join((t.upper() if rng.random() < 0.3 else t.lower()).split(" ")), int(i), "exact"))
    long_ones = [i for i, r in enumerate(requests) if len(r["text"]) >= 50]
    for i in rng.choice(long_ones, size=40, replace=False):
        t = requests[i]["text"]
        k = rng.integers(0, 3)
        docs.append((typo(t, rng) if k == 0 else punct(t, rng) if k == 1 else punct(typo(t, rng), rng), int(i), "near"))
    docs += [(r["text"], index[r["request"]], "semantic") for r in rows if r["kind"] == "reworded"]
    order = rng.permutation(len(docs))
    return [docs[j] for j in order if docs[j][2] == "original"] + [docs[j] for j in order if docs[j][2] != "original"]


def verifier_eval(misses: str | None = None, verifier_only: bool = False, corpus=None) -> None:
    """Dedup with the verifier (default) against the fixed cuts (verify=False), same corpus
    (`verifier_corpus` unless given). `misses`: write each missed planted copy, each wrong
    merge and each lost request (JSONL) there."""
    from curate.dedup.dedup import DedupConfig, run_dedup
    from curate.models.embed import Embedder
    from curate.ingest.ingest import ingest
    from curate.core.lake import Lake

    docs = corpus if corpus is not None else verifier_corpus()
    counts = {k: sum(1 for d in docs if d[2] == k) for k in ("original", "distinct", "exact", "near", "semantic")}
    print(f"corpus: {len(docs)} prompts {counts}", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="dedup-verify-"))
    write_log(docs, work / "corpus.jsonl")
    lake = Lake(work / "lake")
    ingest(lake, [work / "corpus.jsonl"])
    embedder = Embedder()
    group = {f"d{n}": g for n, (_, g, _) in enumerate(docs)}
    out = []
    # the fixed cuts run first: the verifier's run then reuses the stored embeddings and pays only its own cost
    runs = [("fixed cuts (verify=False: Jaccard .65, cosine .90)", DedupConfig(table="dedup_f", verify=False)),
            ("verifier (default)", DedupConfig(table="dedup_v"))]
    for name, cfg in runs[1:] if verifier_only else runs:
        t0, c0 = time.perf_counter(), time.process_time()
        stats = run_dedup(lake, cfg, embedder=embedder)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows = {r["conversation_id"]: r for r in lake.read_annotation(cfg.table).to_pylist()}
        res = {"method": name, "s": round(secs, 1), "cpu_s": round(cpu, 1), "variants": stats.variants,
               "verified": stats.verified}
        for kind, col in (("exact", "exact_cluster"), ("near", "near_cluster"), ("semantic", "cluster_id")):
            res[kind] = score(rows, docs, kind, col)
        # precision of what the stage merges, over every non-first member of a combined cluster
        first: dict[str, str] = {}
        merged = wrong = twin_merged = 0
        for n in range(len(docs)):
            cid = f"d{n}"
            c = rows[cid]["cluster_id"]
            if c in first:
                merged += 1
                bad = group[cid] != group[first[c]]
                wrong += bad
                twin_merged += bad and (docs[n][2] == "distinct" or docs[int(first[c][1:])][2] == "distinct")
            else:
                first[c] = cid
        res["merge_precision"] = round(1 - wrong / max(merged, 1), 4)
        res["distinct_merged"] = twin_merged
        # distinct requests the default export drops entirely (no member kept)
        kept_groups = {group[cid] for cid, r in rows.items() if r["is_representative"]}
        groups = set(group.values())
        res["distinct_requests"] = len(groups)
        lost = groups - kept_groups
        res["distinct_requests_lost"] = len(lost)
        res["export_dropped"] = sum(not r["is_representative"] for r in rows.values())
        out.append(res)
        if misses and cfg.verify:
            original_id = {g: f"d{n}" for n, (_, g, k) in enumerate(docs) if k == "original"}
            with open(misses, "w", encoding="utf-8") as fh:
                for n, (text, g, kind) in enumerate(docs):
                    cid = f"d{n}"
                    col = {"exact": "exact_cluster", "near": "near_cluster", "semantic": "cluster_id"}.get(kind)
                    if col and rows[cid][col] != rows[original_id[g]][col]:
                        fh.write(json.dumps({"what": f"missed_{kind}", "text": text, "original": docs[int(original_id[g][1:])][0]},
                                            ensure_ascii=False) + "\n")
                    c = rows[cid]["cluster_id"]
                    if kind in ("original", "distinct") and group[cid] in lost:
                        rep = rows[cid]["duplicate_of"]
                        fh.write(json.dumps({"what": "lost", "kind": kind, "text": text, "dup_kind": rows[cid]["duplicate_kind"],
                                             "kept": docs[int(rep[1:])][0] if rep else None}, ensure_ascii=False) + "\n")
                    if c in first and group[cid] != group[first[c]] and first[c] != cid:
                        fh.write(json.dumps({"what": "wrong_merge", "kind": kind, "text": text,
                                             "kept": docs[int(first[c][1:])][0], "dup_kind": rows[cid]["duplicate_kind"]},
                                            ensure_ascii=False) + "\n")
    print("\n| method | exact R | near R | reworded R (semantic) | merge precision | distinct requests merged away "
          "(of which twins/decoys) | variants annotated | rows dropped by export | wall s | CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in out:
        print(f"| {r['method']} | {r['exact']['recall']:.3f} | {r['near']['recall']:.3f} | {r['semantic']['recall']:.3f} | "
              f"{r['merge_precision']:.3f} | {r['distinct_requests_lost']} of {r['distinct_requests']} "
              f"({r['distinct_requests_lost'] / r['distinct_requests']:.2%}; {r['distinct_merged']}) | {r['variants']} | "
              f"{r['export_dropped']} of {len(docs)} | {r['s']} | {r['cpu_s']} |")
    print(json.dumps(out, indent=1, default=str))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--thresholds", default="0.75,0.8,0.85,0.9")
    ap.add_argument("--near-threshold", type=float, default=None, help="default: MinHashConfig's")
    ap.add_argument("--near-only", action="store_true", help="exact and near only (no embedding model)")
    ap.add_argument("--verifier", action="store_true",
                    help="the pair verifier against the fixed cuts, with template twins and hand paraphrases/translations")
    ap.add_argument("--chat", action="store_true",
                    help="with --verifier: the hand-written chat requests (tests/data/dedup_chat_eval.jsonl) instead")
    ap.add_argument("--misses", help="with --verifier: write missed copies and wrong merges (JSONL) here")
    ap.add_argument("--verifier-only", action="store_true", help="with --verifier: skip the fixed-cut run")
    ap.add_argument("--models", help="score the verifier models in this folder (as benchmarks/fit_verifier.py --out writes them) instead of the shipped ones")
    args = ap.parse_args()
    use_models(args.models)
    if args.verifier:
        return verifier_eval(args.misses, args.verifier_only, chat_corpus() if args.chat else None)
    if not TESTBED.exists():
        sys.exit(f"needs the test bed at {TESTBED}")
    from curate.dedup.dedup import DedupConfig, run_dedup
    from curate.dedup.minhash import MinHashConfig
    from curate.dedup.semantic import SemanticConfig
    from curate.models.embed import Embedder
    from curate.ingest.ingest import ingest
    from curate.core.lake import Lake

    if args.near_threshold is None:
        args.near_threshold = MinHashConfig().threshold
    docs = build_corpus()
    counts = {k: sum(1 for d in docs if d[2] == k) for k in ("original", "exact", "near", "semantic")}
    print(f"corpus: {len(docs)} prompts {counts}", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="dedup-eval-"))
    write_log(docs, work / "corpus.jsonl")
    lake = Lake(work / "lake")
    ingest(lake, [work / "corpus.jsonl"])
    embedder = None if args.near_only else Embedder()
    results = []
    thresholds = [float(x) for x in args.thresholds.split(",")]
    for n, thr in enumerate(sorted(thresholds, reverse=True)[:1] if args.near_only else sorted(thresholds, reverse=True)):
        cfg = DedupConfig(near=n == 0, semantic=not args.near_only, table=f"dedup_t{n}",
                          minhash=MinHashConfig(threshold=args.near_threshold),
                          semantic_config=SemanticConfig(threshold=thr))
        t0 = time.perf_counter()
        run_dedup(lake, cfg, embedder=embedder)
        secs = time.perf_counter() - t0
        rows = {r["conversation_id"]: r for r in lake.read_annotation(cfg.table).to_pylist()}
        if n == 0:
            results.append({**score(rows, docs, "exact", "exact_cluster"), "threshold": "normalised key", "s": secs})
            results.append({**score(rows, docs, "near", "near_cluster"),
                            "threshold": f"Jaccard {args.near_threshold} (char 5-grams, 128 perm)", "s": secs})
        if not args.near_only:
            results.append({**score(rows, docs, "semantic", "semantic_cluster"), "threshold": f"cosine {thr}", "s": secs})
    print(f"\n{'kind':9s} {'threshold':40s} {'planted':>8s} {'recall':>7s} {'flagged':>8s} {'precision':>9s}")
    for r in results:
        print(f"{r['kind']:9s} {r['threshold']:40s} {r['planted']:8d} {r['recall']:7.3f} {r['flagged']:8d} {r['precision']:9.3f}")
    print("\n(semantic precision counts every pair in a semantic cluster: exact and near copies are "
          "semantic duplicates too, and count as correct when they share the original)")


if __name__ == "__main__":
    main()
