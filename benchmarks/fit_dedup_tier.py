"""Fit the semantic-dedup tier's proposals (`SemanticConfig.propose_k`, `propose_loose`) for the pair verifier.

    .venv/bin/python benchmarks/fit_dedup_tier.py [--n 8000] [--cache calib.npz]

With the verifier on (the default), the tier's static model only proposes
(`dedup.semantic.tier_candidates`): `propose_k` neighbours per prompt at static cosine >=
`propose_loose`, of which the full model keeps its own `k` best at full cosine >=
`DedupConfig.semantic_candidate`; the verifier decides. The reference is the full path: the
full model's `k` neighbours at cosine >= that cut, all to the verifier. (Which pairs the
verifier sees changes its clusters: it is not transitive.)

Calibration data: `bench_pipeline.generate`'s logs with seed 1 (the benchmark scores seed 0),
their distinct first prompts. For each setting it prints the co-cluster pair F1 of the
tier's clusters against the full path's, how many of the full path's candidate pairs the
tier found, and the share of prompts the full model must still embed.
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
    ap.add_argument("--loose", default="0.3,0.5,0.7", help="propose_loose values")
    ap.add_argument("--propose-k", default="10,20,40,80")
    args = ap.parse_args(argv)

    from curate.dedup.dedup import DedupConfig
    from curate.dedup.semantic import SemanticConfig, SemanticIndex, tier_candidates
    from curate.models.embed import Embedder, MultilingualEmbedder, StaticEmbedder
    from curate.models.verify import Verifier

    texts = calibration_prompts(args.n)
    emb = Embedder()
    if args.cache is not None and args.cache.exists():
        d = np.load(args.cache, allow_pickle=True)
        if list(d["texts"]) != texts:
            sys.exit(f"{args.cache} holds other prompts; remove it")
        full, static = d["full"], d["static"]
        multi = d["multi"] if "multi" in d.files else None
    else:
        t = time.process_time()
        full = emb.embed(texts)
        static = StaticEmbedder(emb.model_name).embed(texts)
        multi = None
        print(f"embedded {len(texts)} prompts in {time.process_time() - t:.0f} CPU s", file=sys.stderr)
    if multi is None:
        # the verifier's multilingual channel, embedded once here rather than per batch of pairs
        multi = MultilingualEmbedder().embed([t[:2000] for t in texts])
        if args.cache is not None:
            np.savez(args.cache, texts=np.array(texts, dtype=object), full=full, static=static, multi=multi)
    keys = [f"{i:06d}" for i in range(len(texts))]
    text_of = dict(zip(keys, texts))
    mvec = dict(zip(keys, multi))
    cut = DedupConfig().semantic_candidate
    sc = SemanticConfig(exact_max=10**7)
    verifier = Verifier("semantic")
    decided: dict[tuple[str, str], bool] = {}

    def duplicates(pairs: list[tuple[str, str, float]]) -> list[tuple[str, str]]:
        todo = sorted({(a, b, s) for a, b, s in pairs if (a, b) not in decided})
        if todo:
            ds = verifier.decide_many([text_of[a] for a, _, _ in todo], [text_of[b] for _, b, _ in todo],
                                      cos_full=[s for _, _, s in todo],
                                      cos_multi=[float(mvec[a] @ mvec[b]) for a, b, _ in todo])
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
    print("| propose_k | loose | pair F1 (P/R) | candidate pairs equal | prompts the full model embeds |")
    print("|---:|---:|---|---:|---:|")
    ref_set = {(a, b) for a, b, _ in ref_pairs}
    for pk in [int(x) for x in args.propose_k.split(",")]:
        for loose in [float(x) for x in args.loose.split(",")]:
            cfg = SemanticConfig(exact_max=10**7, tier=True, propose_loose=loose, propose_k=pk)
            r = tier_candidates(sindex, keys, texts, static, lambda ts: np.stack([fvec[t] for t in ts]), config=cfg,
                                cut=cut)
            got = clusters(keys, duplicates(r.pairs))
            f = pair_f1(got, ref)
            same = len(ref_set & {(a, b) for a, b, _ in r.pairs})
            print(f"| {pk} | {loose:.2f} | {f['f1']:.4f} ({f['precision']:.4f}/{f['recall']:.4f}) | "
                  f"{same}/{len(ref_set)} of {len(r.pairs)} | {r.full_embedded / len(keys):.1%} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
