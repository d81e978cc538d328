"""Would a static-model gate spare MiniLM work in semantic dedup? (issue #13, cheap-first)

The idea measured: the distilled static model (model2vec from MiniLM, `StaticEmbedder`)
embeds every distinct first prompt; MiniLM embeds only the prompts whose nearest static
neighbour has static cosine >= a loose cut L, and searches its own top 10 among those, so
every candidate it gives the pair verifier is one the full path gives. A full-path candidate
(MiniLM top 10 at cosine >= .6, `DedupConfig.semantic_candidate`) is lost when one of its
texts is left out. Per data set and cut: the share of prompts MiniLM would still embed, and
the full path's candidate pairs kept (recall).

Data: `bench_pipeline.py`'s generator (seed 1: calibration; seed 0: the prompts the pipeline
benchmark scores), the first prompts of the test bed's ShareGPT log, and a diverse set of
real questions (MT-bench and Vicuna-bench first turns, the MMLU English rephrasings, 600
GSM8K rephrasings).

    .venv/bin/python benchmarks/bench_dedup_gate.py --n 8000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
TESTBED = REPO.parent / "shared" / "testbed"
CUTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def generated(n: int, seed: int) -> list[str]:
    from bench_pipeline import generate

    with tempfile.TemporaryDirectory() as tmp:
        seen: dict[str, None] = {}
        for path in generate(Path(tmp), int(n * 1.3), seed=seed, prefix="gate"):
            for line in open(path, encoding="utf-8"):
                seen.setdefault(json.loads(line)["messages"][0]["content"])
    return list(seen)[:n]


def sharegpt() -> list[str]:
    log = json.loads((TESTBED / "fastchat" / "dummy_conversation.json").read_text())
    return list(dict.fromkeys(c["conversations"][0]["value"] for c in log))


def diverse() -> list[str]:
    out = []
    for name in ("mt_bench/question.jsonl", "vicuna_bench/question.jsonl"):
        out += [json.loads(x)["turns"][0] for x in (TESTBED / "fastchat" / name).read_text().splitlines()]
    rd = TESTBED / "llm-decontaminator" / "rephrase"
    for subject in ("sociology", "high_school_us_history", "abstract_algebra"):
        out += [json.loads(x)["text"] for x in
                (rd / f"{subject}_test_rephrase_english_filtered_question.jsonl").read_text().splitlines()]
    out += [json.loads(x)["text"] for x in (rd / "rephrase_gsm8k.jsonl").read_text().splitlines()][:600]
    return list(dict.fromkeys(t for t in out if t.strip()))


def measure(texts: list[str], full, static, *, cut: float = 0.6, k: int = 10) -> dict:
    import faiss

    c0 = time.process_time()
    f = full.embed(texts)
    c1 = time.process_time()
    s = static.embed(texts)
    c2 = time.process_time()
    fi = faiss.IndexFlatIP(f.shape[1])
    fi.add(f)
    sims, idx = fi.search(f, k + 1)
    cand = {(min(a, b), max(a, b)) for a in range(len(texts)) for sim, b in zip(sims[a], idx[a])
            if b >= 0 and b != a and sim >= cut - 1e-6}
    si = faiss.IndexFlatIP(s.shape[1])
    si.add(s)
    ssims, sidx = si.search(s, 3)
    nearest = np.array([max((v for v, j in zip(ssims[i], sidx[i]) if j != i and j >= 0), default=-1.0)
                        for i in range(len(texts))])
    row = {"texts": len(texts), "full_cpu_s": round(c1 - c0, 2), "static_cpu_s": round(c2 - c1, 2),
           "full_candidate_pairs": len(cand), "texts_in_candidates": len({i for p in cand for i in p}), "cuts": {}}
    for gate in CUTS:
        kept = nearest >= gate
        lost = sum(1 for a, b in cand if not (kept[a] and kept[b]))
        row["cuts"][gate] = {"embedded_share": round(float(kept.mean()), 4), "pairs_lost": lost,
                             "pair_recall": round(1 - lost / len(cand), 4) if cand else 1.0}
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8000, help="distinct generated prompts per generator seed")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    from curate.models.embed import Embedder, StaticEmbedder

    sets = {"generator seed 1 (calibration)": generated(args.n, 1), "generator seed 0 (bench_pipeline)": generated(args.n, 0)}
    if TESTBED.exists():
        sets["ShareGPT log, first prompts"] = sharegpt()
        sets["diverse questions (MT/Vicuna bench, MMLU, GSM8K)"] = diverse()
    full, static = Embedder(), StaticEmbedder()
    out = {}
    print("| data | texts | in a full-path candidate pair | " + " | ".join(f"L={c}: embedded / recall" for c in CUTS) + " |")
    for name, texts in sets.items():
        r = out[name] = measure(texts, full, static)
        cells = " | ".join(f"{r['cuts'][c]['embedded_share']:.3f} / {r['cuts'][c]['pair_recall']:.4f}" for c in CUTS)
        print(f"| {name} | {r['texts']} | {r['texts_in_candidates'] / r['texts']:.3f} | {cells} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
