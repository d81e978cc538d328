"""The pair verifier on its hard test set (tests/data/verify_hard.jsonl, never fitted on).

Per task model (near, semantic, decontam) and per kind of pair: the share decided "same
request" (recall on the positive kinds, false-positive rate on decoys and twins), and
overall precision / recall / F1; plus the baselines the verifier replaces (one cosine and
one Jaccard cut, today's defaults). Also counts pairs in the verifier's uncertain band.

    .venv/bin/python benchmarks/eval_verifier.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HARD = REPO / "tests" / "data" / "verify_hard.jsonl"


def load_hard(path: Path = HARD) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def prf(pred, gold) -> dict:
    pred, gold = np.asarray(pred, bool), np.asarray(gold, bool)
    tp = int((pred & gold).sum())
    p = tp / max(int(pred.sum()), 1)
    r = tp / max(int(gold.sum()), 1)
    return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(2 * p * r / (p + r), 3) if p + r else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json")
    ap.add_argument("--testbed", help="also score decontam on ../shared/testbed (scored items only)")
    ap.add_argument("--k", type=int, default=5, help="candidates per channel in the search protocol")
    args = ap.parse_args()
    from curate.models.verify import TASKS, Verifier

    rows = load_hard()
    a, b = [r["a"] for r in rows], [r["b"] for r in rows]
    gold = [r["label"] for r in rows]
    kinds = sorted({r["kind"] for r in rows}, key=lambda k: (not rows[[x["kind"] for x in rows].index(k)]["label"], k))
    result: dict = {"pairs": len(rows), "per_kind": {k: sum(r["kind"] == k for r in rows) for k in kinds}, "tasks": {}}
    v = None
    for task in TASKS:
        v = Verifier(task, full_embedder=v._full if v else None, multi_embedder=v._multi if v else None)
        if task == "near":  # as dedup runs it: lexical only, no embedding channel
            probs, f = v.score(a, b, cos_full=[0.0] * len(a), cos_multi=[0.0] * len(a))
        else:
            probs, f = v.score(a, b)
        pred = probs >= v.model.threshold
        band = (probs >= v.model.band[0]) & (probs < v.model.band[1])
        result["tasks"][task] = {
            "overall": prf(pred, gold), "in_band": int(band.sum()),
            "said_same_by_kind": {k: round(float(np.mean([p for p, r in zip(pred, rows) if r["kind"] == k])), 3) for k in kinds},
        }
        if task == "semantic":
            f_sem = f
            for name, col, cut in (("cosine .90 (old semantic default)", "cos_full", 0.90),
                                   ("cosine .68 (old decontam default)", "cos_full", 0.68),
                                   ("multilingual cosine .80", "cos_multi", 0.80)):
                bp = f_sem[col] >= cut
                result["tasks"][name] = {"overall": prf(bp, gold), "said_same_by_kind": {
                    k: round(float(np.mean([p for p, r in zip(bp, rows) if r["kind"] == k])), 3) for k in kinds}}
    print(f"{len(rows)} pairs: " + ", ".join(f"{k} {n}" for k, n in result["per_kind"].items()))
    head = "| method | " + " | ".join(kinds) + " | precision | recall | F1 |"
    print(head + "\n|" + "---|" * (len(kinds) + 4))
    for name, res in result["tasks"].items():
        o = res["overall"]
        print(f"| {name} | " + " | ".join(f"{res['said_same_by_kind'][k]:.2f}" for k in kinds)
              + f" | {o['precision']:.3f} | {o['recall']:.3f} | {o['f1']:.3f} |")
    if args.testbed:
        tb = decontam_testbed(Path(args.testbed), k=args.k)
        result["decontam_testbed"] = tb
        print(f"\ndecontam verifier (cut {tb['threshold']}), F1 (precision/recall):")
        print("| set | pairs protocol | nearest-neighbour negatives | search protocol, top-%d per channel |\n|---|---|---|---|" % args.k)
        for name, res in tb["sets"].items():
            print(f"| {name} | " + " | ".join(f"{res[c]['f1']:.3f} ({res[c]['precision']:.2f}/{res[c]['recall']:.2f})"
                                              for c in ("pairs_protocol", "nn_negatives", "search_protocol")) + " |")
        ca = tb["codealpaca"]
        print(f"CodeAlpaca vs GPT-4: agreement {ca['agreement']:.1%}, flags {ca['flagged']}, keeps {ca['true_kept']} of "
              f"{ca['true_total']} True, F1 {ca['f1']:.3f} (P {ca['precision']:.2f} R {ca['recall']:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


# ---------------------------------------------------------------------------------------
# decontam on the reference tool's test bed: scored items only (the first 100 of each set)
# ---------------------------------------------------------------------------------------
def decontam_testbed(root: Path, k: int = 5) -> dict:
    """F1 of the decontam verifier per set: pairs protocol, nearest-neighbour negatives, search
    protocol (top-k per channel over every published rephrasing), and CodeAlpaca vs GPT-4."""
    from benchmarks.fit_verifier import embedders, rephrasing_pool, testbed_sets
    from curate.models.verify import Verifier, model_matrix, pair_features

    full, multi = embedders()
    v = Verifier("decontam", full_embedder=full, multi_embedder=multi)
    model = v.model
    sets, family = testbed_sets(root)
    originals = {family[n]: sets[n][0] for n in sets}
    pool, owner, pool_set = rephrasing_pool(sets, family)
    pf, pm = full.embed(pool), multi.embed(pool)
    of = {f: full.embed(o) for f, o in originals.items()}
    om = {f: multi.embed(o) for f, o in originals.items()}
    owner_arr = np.array([f"{f}:{i}" for f, i in owner])
    pool_set_arr = np.array(pool_set)

    def probs_for(fam: str, items: list[int], rows: list[int], masks: list[int | None]) -> np.ndarray:
        to_items = pf[rows] @ of[fam].T
        gaps = []
        for r, (i, m) in enumerate(zip(items, masks)):
            row = to_items[r].copy()
            row[i] = -2.0
            if m is not None:
                row[m] = -2.0
            gaps.append(float(row.max() - to_items[r, i]))
        a = [originals[fam][i] for i in items]
        b = [pool[j] for j in rows]
        f = pair_features(a, b, cos_full=[float(pf[j] @ of[fam][i]) for i, j in zip(items, rows)],
                          cos_multi=[float(pm[j] @ om[fam][i]) for i, j in zip(items, rows)], gap_other=gaps,
                          context=pool[:0])
        return model.proba(model_matrix(f))

    out: dict = {"threshold": model.threshold, "sets": {}}
    for name in sorted(sets):
        fam = family[name]
        orig, reph, _ = sets[name]
        items = [i for i in range(min(100, len(orig), len(reph))) if reph[i].strip()]
        own_rows = {i: int(np.flatnonzero((owner_arr == f"{fam}:{i}") & (pool_set_arr == name))[0]) for i in items}
        # pairs protocol: positive (i, reph i); negatives: random mismatched and nearest other item's rephrasing (same set)
        rng = np.random.default_rng(0)
        set_rows = np.array([own_rows[i] for i in items])
        sims = pf[set_rows] @ of[fam][items].T  # row r (item items[r]'s rephrasing) vs item c
        nn_neg, rnd_neg = [], []
        for c, i in enumerate(items):
            col = sims[:, c].copy()
            col[c] = -2.0
            nn_neg.append(int(np.argmax(col)))
            r = int(rng.integers(len(items) - 1))
            rnd_neg.append(r + (r >= c))
        pos = probs_for(fam, items, [own_rows[i] for i in items], [None] * len(items))
        nn = probs_for(fam, items, [int(set_rows[r]) for r in nn_neg], [items[r] for r in nn_neg])
        rnd = probs_for(fam, items, [int(set_rows[r]) for r in rnd_neg], [items[r] for r in rnd_neg])
        cut = model.threshold
        res = {
            "pairs_protocol": prf(np.r_[pos, rnd] >= cut, [True] * len(pos) + [False] * len(rnd)),
            "nn_negatives": prf(np.r_[pos, nn] >= cut, [True] * len(pos) + [False] * len(nn)),
        }
        # search protocol: top-k of each channel among all rephrasings; positive: this set's own
        # rephrasing present (others of the item removed); negative: all of the item's removed
        s_items, s_rows, s_masks, s_key = [], [], [], []
        for i in items:
            mine = owner_arr == f"{fam}:{i}"
            for positive in (True, False):
                allowed = ~mine | ((pool_set_arr == name) if positive else np.zeros(len(pool), bool))
                cand = set()
                for s in (pf @ of[fam][i], pm @ om[fam][i]):
                    s = np.where(allowed, s, -2.0)
                    cand |= {int(j) for j in np.argsort(-s, kind="stable")[:k]}
                for j in sorted(cand):
                    s_items.append(i)
                    s_rows.append(j)
                    s_masks.append(owner[j][1] if owner[j][0] == fam and owner[j][1] != i else None)
                    s_key.append((i, positive))
        p = probs_for(fam, s_items, s_rows, s_masks)
        flagged: dict = {}
        for key, pr in zip(s_key, p):
            flagged[key] = flagged.get(key, False) or bool(pr >= cut)
        flag_pos = [flagged[(i, True)] for i in items]
        flag_neg = [flagged[(i, False)] for i in items]
        res["search_protocol"] = prf(flag_pos + flag_neg, [True] * len(flag_pos) + [False] * len(flag_neg))
        out["sets"][name] = res
    # CodeAlpaca: the reference tool's top-1 neighbours, judged by GPT-4 (18 True of 164)
    from decontam.testbed import codealpaca_db

    db = codealpaca_db(root / "llm-decontaminator")
    he = originals["humaneval"]
    a = [r["test"] for r in db]
    b = [r["train"][0] for r in db]
    gold = [bool(r["results"][0]) for r in db]
    vb = full.embed(b)
    gaps = []
    for idx in range(len(db)):
        i = he.index(a[idx]) if a[idx] in he else None
        s = vb[idx] @ of["humaneval"].T
        own = float(full.embed([a[idx]])[0] @ vb[idx])
        if i is not None:
            s[i] = -2.0
        gaps.append(float(s.max() - own))
    probs, _ = v.score(a, b, gap_other=gaps)
    pred = probs >= model.threshold
    agree = float(np.mean(pred == np.array(gold)))
    out["codealpaca"] = {**prf(pred, gold), "agreement": round(agree, 3), "flagged": int(pred.sum()),
                         "true_kept": int((pred & np.array(gold)).sum()), "true_total": int(sum(gold))}
    return out


if __name__ == "__main__":
    main()
