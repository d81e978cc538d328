"""Fit the semantic-dedup tier's `loose` cut (`SemanticConfig.loose`) for the pair verifier.

    .venv/bin/python benchmarks/fit_dedup_tier.py [--n 8000] [--cache calib.npz]

With the verifier on (the default), the tier's static model only proposes: a neighbour
pair at static cosine >= `loose` is re-scored by the full model, and at full cosine >=
`DedupConfig.semantic_candidate` goes to the verifier, which decides. The reference is the
full path: the full model's 10 neighbours at cosine >= that cut, all to the verifier.

Calibration data: `bench_pipeline.generate`'s logs with seed 1 (the benchmark scores seed 0),
their distinct first prompts. For each `loose` it prints the co-cluster pair F1 of the
tier's clusters against the full path's and the share of prompts the full model must still
embed; the cut shipped is the highest with pair recall >= .99.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import generate, pair_f1  # noqa: E402


def calibration_prompts(n: int) -> list[str]:
    import json

    with tempfile.TemporaryDirectory() as tmp:
        seen: dict[str, None] = {}
        for path in generate(Path(tmp), int(n * 1.3), seed=1, prefix="calib"):
            for line in open(path, encoding="utf-8"):
                msgs = json.loads(line)["messages"]
                seen.setdefault(next(m["content"] for m in msgs if m["role"] == "user"))
    return list(seen)[:n]


def clusters(keys: list[str], pairs) -> dict[str, str]:
    parent = {k: k for k in keys}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {k: find(k) for k in keys}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8000, help="distinct calibration prompts")
    ap.add_argument("--cache", type=Path, default=None, help="npz with the prompts' full and static vectors (made if absent)")
    ap.add_argument("--loose", default="0.5,0.55,0.6,0.65,0.7,0.75,0.8,0.85")
    args = ap.parse_args(argv)

    from curate.dedup.dedup import DedupConfig
    from curate.dedup.semantic import SemanticConfig, SemanticIndex, tier_pairs
    from curate.models.embed import Embedder, StaticEmbedder
    from curate.models.verify import Verifier

    texts = calibration_prompts(args.n)
    emb = Embedder()
    if args.cache is not None and args.cache.exists():
        d = np.load(args.cache, allow_pickle=True)
        if list(d["texts"]) != texts:
            sys.exit(f"{args.cache} holds other prompts; remove it")
        full, static = d["full"], d["static"]
    else:
        t = time.process_time()
        full = emb.embed(texts)
        static = StaticEmbedder(emb.model_name).embed(texts)
        print(f"embedded {len(texts)} prompts in {time.process_time() - t:.0f} CPU s", file=sys.stderr)
        if args.cache is not None:
            np.savez(args.cache, texts=np.array(texts, dtype=object), full=full, static=static)
    keys = [f"{i:06d}" for i in range(len(texts))]
    text_of = dict(zip(keys, texts))
    cut = DedupConfig().semantic_candidate
    sc = SemanticConfig(exact_max=10**7)
    verifier = Verifier("semantic")
    decided: dict[tuple[str, str], bool] = {}

    def duplicates(pairs: list[tuple[str, str, float]]) -> list[tuple[str, str]]:
        todo = sorted({(a, b, s) for a, b, s in pairs if (a, b) not in decided})
        if todo:
            ds = verifier.decide_many([text_of[a] for a, _, _ in todo], [text_of[b] for _, b, _ in todo],
                                      cos_full=[s for _, _, s in todo])
            decided.update({(a, b): d.same for (a, b, _), d in zip(todo, ds)})
        return [(a, b) for a, b, _ in pairs if decided[(a, b)]]

    def once(pairs):
        best = {}
        for a, b, s in pairs:
            k = (a, b) if a < b else (b, a)
            best[k] = max(s, best.get(k, s))
        return [(a, b, s) for (a, b), s in sorted(best.items())]

    index = SemanticIndex(full.shape[1], sc)
    index.add(keys, full)
    ref_pairs = once(index.pairs(keys, full, threshold=cut, k=sc.k))
    ref = clusters(keys, duplicates(ref_pairs))
    print(f"full path: {len(ref_pairs)} candidate pairs, {len(set(ref.values()))} clusters of {len(keys)} prompts")
    sindex = SemanticIndex(static.shape[1], sc)
    sindex.add(keys, static)
    fvec = dict(zip(texts, full))
    print("| loose | pair F1 (P/R) | verifier pairs | prompts the full model embeds |")
    print("|---:|---|---:|---:|")
    for loose in [float(x) for x in args.loose.split(",")]:
        r = tier_pairs(sindex, keys, texts, static, lambda ts: np.stack([fvec[t] for t in ts]),
                       config=SemanticConfig(exact_max=10**7, tier=True, loose=loose), candidates_from=cut)
        got = clusters(keys, duplicates(once(r.pairs)))
        f = pair_f1(got, ref)
        print(f"| {loose:.2f} | {f['f1']:.4f} ({f['precision']:.4f}/{f['recall']:.4f}) | {len(once(r.pairs))} | "
              f"{r.full_embedded / len(keys):.1%} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
