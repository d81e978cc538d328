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

from curate.models.verify import FEATURES  # noqa: E402

HARD = REPO / "tests" / "data" / "verify_hard.jsonl"


def load_hard(path: Path = HARD) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def use_models(folder: str | None) -> None:
    """Point the verifier at the models (and IDF table) in `folder`, for comparing a refit
    with the shipped models before it replaces them."""
    if not folder:
        return
    from curate.models import verify

    verify.MODEL_DIR = Path(folder)
    verify.load_model.cache_clear()
    verify._idf_tables.cache_clear()


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
    from decontam.check import CheckConfig

    ap.add_argument("--k", type=int, default=CheckConfig().top_k,
                    help="candidates per channel in the search protocol (default: what `decontam check` takes, its --top-k)")
    ap.add_argument("--lexical-k", type=int, default=CheckConfig().lexical_k,
                    help="the lexical channel's candidates per item in the search protocol (default: `decontam check`'s, its --lexical-k; 0: off)")
    ap.add_argument("--models", help="score the verifier models in this folder (as benchmarks/fit_verifier.py --out writes them) instead of the shipped ones")
    ap.add_argument("--cuts", help="with --testbed: also score the decontam model at these cuts (comma-separated), "
                                   "e.g. 0.35,0.45,0.55: the search protocol and CodeAlpaca pull the cut apart")
    args = ap.parse_args()
    use_models(args.models)
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
        from curate.models.verify import load_model

        matrices, model = testbed_matrices(Path(args.testbed), k=args.k, lexical_k=args.lexical_k), load_model("decontam")
        tb = score_testbed(matrices, model)
        result["decontam_testbed"] = tb
        print(f"\ndecontam verifier (cut {tb['threshold']}), F1 (precision/recall):")
        print("| set | pairs protocol | nearest-neighbour negatives | search protocol, top-%d per channel, %d lexical |\n|---|---|---|---|"
              % (args.k, args.lexical_k))
        for name, res in tb["sets"].items():
            print(f"| {name} | " + " | ".join(f"{res[c]['f1']:.3f} ({res[c]['precision']:.2f}/{res[c]['recall']:.2f})"
                                              for c in ("pairs_protocol", "nn_negatives", "search_protocol")) + " |")
        print("\nsearch protocol, where the errors come from (items): own rephrasing a candidate / own rephrasing flagged / "
              "flagged with it removed (of which only by rows in another language)")
        for name, res in tb["sets"].items():
            w = res.get("search_why")
            if w and "chinese" not in name:
                print(f"  {name}: {w['own_candidate']} / {w['own_flagged']} of {w['items']}; false flags {w['false_flag_items']} "
                      f"({w['false_flag_items_cross_lingual_only']} cross-lingual only)")
        ca = tb["codealpaca"]
        print(f"CodeAlpaca vs GPT-4: agreement {ca['agreement']:.1%}, flags {ca['flagged']}, keeps {ca['true_kept']} of "
              f"{ca['true_total']} True, F1 {ca['f1']:.3f} (P {ca['precision']:.2f} R {ca['recall']:.2f})")
        sc = ca["scored_items_0_99"]
        print(f"  items 0-99 only (100-163 are calibration): agreement {sc['agreement']:.1%}, flags {sc['flagged']}, "
              f"F1 {sc['f1']:.3f} (P {sc['precision']:.2f} R {sc['recall']:.2f})")
        if args.cuts:
            cuts = sorted({float(c) for c in args.cuts.split(",")} | {model.threshold})
            result["decontam_cuts"] = {str(c): score_testbed(matrices, model, cut=c) for c in cuts}
            print("\nthe same model at other cuts (English and code sets: min / mean F1; CodeAlpaca items 0-99):")
            print("| cut | search protocol | NN negatives | CodeAlpaca 0-99: agreement, F1, True kept, flags |\n|---|---|---|---|")
            for c in cuts:
                print(f"| {c:.4g}{' (fitted)' if c == model.threshold else ''} | " + cut_summary(result["decontam_cuts"][str(c)]) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


# ---------------------------------------------------------------------------------------
# decontam on the reference tool's test bed: scored items only (the first 100 of each set)
# ---------------------------------------------------------------------------------------
def decontam_testbed(root: Path, k: int = 5, model=None) -> dict:
    """F1 of the decontam verifier per set: pairs protocol, nearest-neighbour negatives, search
    protocol (top-k per channel over every published rephrasing), and CodeAlpaca vs GPT-4."""
    from curate.models.verify import load_model

    return score_testbed(testbed_matrices(root, k=k), model or load_model("decontam"))


def testbed_matrices(root: Path, k: int = 5, item_range: tuple[int, int] = (0, 100), lexical_k: int = 0) -> dict:
    """The scored testbed pairs as model matrices (first 100 items of each set; CodeAlpaca),
    so that several models can be scored on the same features (`score_testbed`). `item_range`
    (100, 10**6): the same protocols on the calibration items (what the fit uses). `lexical_k`:
    the lexical channel's candidates per item, added to the search protocol's."""
    from benchmarks.fit_verifier import embedders, protocol_pairs
    from curate.models.verify import model_matrix, pair_features

    full, multi = embedders()
    # CodeAlpaca: every item for the figures (which also report items 0-99 alone), else the same range
    prot = protocol_pairs(root, full, multi, k=k, item_range=item_range, lexical_k=lexical_k,
                          codealpaca_items=(0, 10**6) if item_range == (0, 100) else None)

    def matrix(pairs: list[dict]) -> np.ndarray:
        f = pair_features([p["a"] for p in pairs], [p["b"] for p in pairs], cos_full=[p["cos_full"] for p in pairs],
                          cos_multi=[p["cos_multi"] for p in pairs], gap_other=[p["gap_other"] for p in pairs])
        return model_matrix(f)

    out: dict = {"sets": {}}
    for name, parts in prot["sets"].items():
        res = {part: matrix(parts[part]) for part in ("pos", "nn", "rnd", "search")}
        res["texts"] = {part: ([p["a"] for p in parts[part]], [p["b"] for p in parts[part]]) for part in ("pos", "nn", "rnd", "search")}
        res["search_key"] = [p["key"] for p in parts["search"]]
        res["search_label"] = np.array([p["label"] for p in parts["search"]], dtype=bool)
        res["items"] = parts["items"]
        out["sets"][name] = res
    ca = prot["codealpaca"]
    out["codealpaca"] = {"X": matrix(ca), "texts": ([p["a"] for p in ca], [p["b"] for p in ca]),
                         "gold": np.array([p["label"] for p in ca]), "item": np.array([p["item"] for p in ca])}
    return out


def cut_summary(res: dict) -> str:
    """One table row of `score_testbed`'s figures: search and NN-negative F1 (min / mean over the
    English and code sets), CodeAlpaca on the scored items 0-99."""
    eng = [n for n in res["sets"] if "chinese" not in n]
    search = [res["sets"][n]["search_protocol"]["f1"] for n in eng]
    nn = [res["sets"][n]["nn_negatives"]["f1"] for n in eng]
    sc = res["codealpaca"]["scored_items_0_99"]
    kept = round(sc["recall"] * res["codealpaca"]["true_total"])  # all 18 True are items 10-60
    return (f"{min(search):.3f} / {np.mean(search):.3f} | {min(nn):.3f} / {np.mean(nn):.3f} | "
            f"{sc['agreement']:.1%}, {sc['f1']:.3f}, {kept} of {res['codealpaca']['true_total']}, {sc['flagged']}")


def search_why(s: dict, probs: np.ndarray, cut: float) -> dict:
    """Where a set's search-protocol errors come from (item counts):

    - `own_candidate`: items whose own rephrasing is among the candidates at all (the top k of
      each channel): the recall any verifier can reach in this protocol;
    - `own_flagged`: items whose own rephrasing is flagged (a flag of another row counts as a
      hit in the protocol's recall, so this is the honest part of it);
    - `false_flag_items` / `..._cross_lingual_only`: items flagged with all their rephrasings
      removed, and those whose every false flag is a row in another language (found by the
      multilingual channel; in `decontam check` such candidates go to that channel's own
      scorer, not to this verifier)."""
    xl = s["search"][:, FEATURES.index("cross_lingual")] > 0
    own_cand, own_flag, neg_flags = set(), set(), {}
    for (i, positive), lab, pr, x in zip(s["search_key"], s["search_label"], probs, xl):
        if positive and lab:
            own_cand.add(i)
            if pr >= cut:
                own_flag.add(i)
        elif not positive and pr >= cut:
            neg_flags.setdefault(i, []).append(bool(x))
    return {"items": len(s["items"]), "own_candidate": len(own_cand), "own_flagged": len(own_flag),
            "false_flag_items": len(neg_flags), "false_flag_items_cross_lingual_only": sum(all(v) for v in neg_flags.values())}


def score_testbed(m: dict, model, cut: float | None = None) -> dict:
    """Figures of `model` (a VerifierModel; its cut unless `cut`) on `testbed_matrices`' pairs."""
    cut = model.threshold if cut is None else cut
    out: dict = {"threshold": cut, "sets": {}}
    for name, s in m["sets"].items():
        pos, nn, rnd = (model.proba(s[x]) for x in ("pos", "nn", "rnd"))
        res = {
            "pairs_protocol": prf(np.r_[pos, rnd] >= cut, [True] * len(pos) + [False] * len(rnd)),
            "nn_negatives": prf(np.r_[pos, nn] >= cut, [True] * len(pos) + [False] * len(nn)),
        }
        flagged: dict = {}
        probs = model.proba(s["search"])
        for key, pr in zip(s["search_key"], probs):
            flagged[key] = flagged.get(key, False) or bool(pr >= cut)
        flag_pos = [flagged[(i, True)] for i in s["items"]]
        flag_neg = [flagged[(i, False)] for i in s["items"]]
        res["search_protocol"] = prf(flag_pos + flag_neg, [True] * len(flag_pos) + [False] * len(flag_neg))
        if "search_label" in s:
            res["search_why"] = search_why(s, probs, cut)
        out["sets"][name] = res
    ca = m["codealpaca"]
    pred = model.proba(ca["X"]) >= cut
    gold = ca["gold"]
    scored = ca["item"] < 100  # HumanEval items 100-163 are the calibration split
    out["codealpaca"] = {**prf(pred, gold), "agreement": round(float(np.mean(pred == gold)), 3), "flagged": int(pred.sum()),
                         "true_kept": int((pred & gold).sum()), "true_total": int(gold.sum()),
                         "scored_items_0_99": {**prf(pred[scored], gold[scored]),
                                               "agreement": round(float(np.mean(pred[scored] == gold[scored])), 3),
                                               "flagged": int(pred[scored].sum())}}
    return out


if __name__ == "__main__":
    main()
