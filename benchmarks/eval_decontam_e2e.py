"""End to end: `decontam check` on a chat log with planted benchmark items (issue #14, "Why").

Runs the real check path (`run_check`, the CLI's defaults, no judge) on
tests/data/decontam_e2e.jsonl (written by tests/data/make_decontam_e2e.py) against HumanEval and
MT-bench (first turns, from the testbed copy), and scores every row by its label:

- planted rows (verbatim, rephrase, rephrase_hard, translation): found (flagged for the labelled item),
  wrong item (flagged, but not for the labelled item), missed (not flagged);
- look-alikes (same topic, another task) and unrelated rows: flagged at all.

The named baseline in the same run is the old cosine-only default
(`CheckConfig(verifier=False, top_k=1)`). A warm-up run loads every model first, so the timed
runs compare the check, not model loading.

    python benchmarks/eval_decontam_e2e.py                      # full set, both configs
    python benchmarks/eval_decontam_e2e.py --per-kind 5 --json out.json
    python benchmarks/eval_decontam_e2e.py --config default --explain   # why each error: the verifier's evidence
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "decontam_e2e.jsonl"
MT_BENCH = Path(os.environ.get("DECONTAM_E2E_MT_BENCH", "/work/shared/testbed/fastchat/mt_bench/question.jsonl"))
PLANTED = ("verbatim", "rephrase", "rephrase_hard", "translation")
KINDS = (*PLANTED, "lookalike", "unrelated")


def load_rows(path: Path = DATA, per_kind: int | None = None) -> list[dict]:
    """The labelled rows; `per_kind`: only the first N of each kind (by id), for a quick slice."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows.sort(key=lambda r: r["id"])
    if per_kind is None:
        return rows
    seen: Counter = Counter()
    out = []
    for r in rows:
        if seen[r["kind"]] < per_kind:
            seen[r["kind"]] += 1
            out.append(r)
    return out


def benchmarks(mt_bench: Path | None = None):
    from decontam.benchmarks import load_benchmark

    mt = load_benchmark(str(mt_bench or MT_BENCH), template="{turns[0]}", id_field="question_id", data_type="knowledge")
    return [load_benchmark("humaneval"), replace(mt, name="mt_bench")]


def configs() -> dict[str, object]:
    from decontam.check import CheckConfig

    # cache_dir None: no index or verdict cache carried between runs or sessions
    return {
        "default": CheckConfig(cache_dir=None),
        "baseline_cosine_top1": CheckConfig(verifier=False, top_k=1, cache_dir=None),
        # the default with each row's language tagged (curate's LanguageTagger), as the lake path has
        # it: a file carries no tags, so only non-Latin-script rows reach the multilingual channel
        "default_lang_tagged": CheckConfig(cache_dir=None),
    }


TAGGED = ("default_lang_tagged",)


def language_tags(texts: list[str]) -> list[str | None]:
    from curate.tag.language import LanguageTagger

    tagger = LanguageTagger()
    return [tagger.detect(t).code for t in texts]


def score(rows: list[dict], result) -> dict:
    """Per-kind counts from a CheckResult, by each row's label (`bench:item id`)."""
    flags: dict[str, set[str]] = {}
    for b in result.benchmarks:
        for p in b.flagged:
            flags.setdefault(p.train_id, set()).add(f"{b.name}:{p.test_id}")
    out: dict[str, dict] = {k: Counter() for k in KINDS}
    errors: list[dict] = []
    for r in rows:
        got = flags.get(r["id"], set())
        c = out[r["kind"]]
        c["rows"] += 1
        if r["kind"] in PLANTED:
            outcome = "found" if r["label"] in got else ("wrong_item" if got else "missed")
            c[outcome] += 1
            c["also_other_items"] += bool(r["label"] in got and len(got) > 1)
        else:
            outcome = "flagged" if got else "clear"
            c[outcome] += 1
        if outcome in ("wrong_item", "missed", "flagged"):
            errors.append({"id": r["id"], "kind": r["kind"], "label": r["label"], "outcome": outcome,
                           "flagged_for": sorted(got), "text": r["text"][:120]})
    return {"per_kind": {k: dict(v) for k, v in out.items() if v}, "errors": errors}


def evaluate(rows: list[dict], names: tuple[str, ...] | None = None, *, warm_up: bool = True) -> dict:
    """Run each config on `rows` and score it; timings in wall and process CPU seconds."""
    from decontam.check import run_check
    from decontam.train_data import TrainData

    data = TrainData(texts=[r["text"] for r in rows], ids=[r["id"] for r in rows],
                     parents=list(range(len(rows))), source=str(DATA.name), kind="file")
    benches = benchmarks()
    cfgs = configs()
    names = names or ("default", "baseline_cosine_top1")
    if warm_up:  # load every model (embedder, static tier, multilingual, verifier) outside the timings
        warm = [r for r in rows if r["kind"] in ("translation", "verbatim")][:4] or rows[:4]
        run_check(TrainData(texts=[r["text"] for r in warm], ids=[r["id"] for r in warm],
                            parents=list(range(len(warm))), source="warm-up", kind="file"),
                  benches, cfgs["default"], model_cache=False)
    report: dict = {"rows": len(rows), "benchmarks": {b.name: len(b) for b in benches}, "configs": {}}
    for name in names:
        t, c = time.perf_counter(), time.process_time()
        run_data = replace(data, langs=language_tags(data.texts)) if name in TAGGED else data
        result = run_check(run_data, benches, cfgs[name], model_cache=False)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        report["configs"][name] = {**score(rows, result), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                                   "top_k": cfgs[name].top_k, "verifier": cfgs[name].verifier}
    return report


# Feature groups of the pair verifier and the value that speaks most for "the same request":
# `explain_errors` sets one group at a time to it and reports how far the probability moves.
EVIDENCE_GROUPS = {
    "what differs (numbers, names, identifiers)": {"num_diff": 0.0, "name_diff": 0.0, "prose_name_diff": 0.0,
                                                   "ident_diff": 0.0},
    "unmatched content words": {"unmatched_max": 0.0, "unmatched_min": 0.0},
    "lexical overlap": {"tfidf": 1.0, "same_tfidf": 1.0, "word_jaccard": 1.0, "containment": 1.0, "seg_tfidf": 1.0,
                        "seg_last": 1.0},
    "embedding cosines": {"cos_full": 1.0, "cos_multi": 1.0},
    "length (short, length ratio)": {"short": 0.0, "len_ratio": 1.0},
}


def explain_errors(errors: list[dict], rows: list[dict], benches, verifier=None) -> list[dict]:
    """For each error of `score`: the decontam verifier's probability for the pair that decides it
    (the labelled item for a missed or misattributed row, the flagged item for a false flag), its
    one-line reason, and the probability with each `EVIDENCE_GROUPS` group set to its most
    favourable value: which evidence keeps a rephrasing out, or lets a look-alike in. The pair is
    scored alone (both channels embedded here, `gap_other` 0), so the probability can differ a
    little from the run's."""
    from curate.models.verify import FEATURES, Verifier, explain, model_matrix

    texts = {f"{b.name}:{i}": t for b in benches for i, t in zip(b.ids, b.texts)}
    by_id = {r["id"]: r for r in rows}
    pairs = []
    for e in errors:
        for item in ([e["label"]] if e["outcome"] in ("missed", "wrong_item") else e["flagged_for"]):
            if item in texts:
                pairs.append((e, item))
    if not pairs:
        return []
    verifier = verifier or Verifier("decontam")
    a = [texts[item][:2000] for _, item in pairs]
    b = [by_id[e["id"]]["text"][:2000] for e, _ in pairs]
    probs, f = verifier.score(a, b)
    X = model_matrix(f)
    out = []
    for n, (e, item) in enumerate(pairs):
        moved = {}
        for group, values in EVIDENCE_GROUPS.items():
            x = X[n : n + 1].copy()
            for name, v in values.items():
                x[0, FEATURES.index(name)] = v
            moved[group] = round(float(verifier.model.proba(x)[0]), 3)
        out.append({"id": e["id"], "outcome": e["outcome"], "item": item, "probability": round(float(probs[n]), 3),
                    "cut": verifier.model.threshold, "reason": explain({k: float(v[n]) for k, v in f.items()}, a[n], b[n]),
                    "probability_if_favourable": moved})
    return out


def table(report: dict) -> str:
    lines = [f"{report['rows']} rows; benchmarks {report['benchmarks']}"]
    for name, r in report["configs"].items():
        lines.append(f"\n{name} (top_k={r['top_k']}, verifier={r['verifier']}): wall {r['wall_s']} s, CPU {r['cpu_s']} s")
        for kind, c in r["per_kind"].items():
            if kind in PLANTED:
                lines.append(f"  {kind:12s} found {c.get('found', 0)}/{c['rows']}, wrong item {c.get('wrong_item', 0)}, "
                             f"missed {c.get('missed', 0)}")
            else:
                lines.append(f"  {kind:12s} flagged {c.get('flagged', 0)}/{c['rows']}")
        for e in r["errors"]:
            lines.append(f"    - {e['outcome']:10s} {e['kind']:11s} {e['id']} label={e['label'] or '-'} "
                         f"flagged_for={','.join(e['flagged_for']) or '-'} | {e['text'][:70]!r}")
        for x in r.get("explained", []):
            top = sorted(x["probability_if_favourable"].items(), key=lambda kv: -abs(kv[1] - x["probability"]))[:3]
            lines.append(f"    ? {x['id']} vs {x['item']}: p {x['probability']:.3f} (cut {x['cut']}); "
                         + ", ".join(f"{g} -> {v:.2f}" for g, v in top) + f" | {x['reason']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-kind", type=int, help="only the first N rows of each kind")
    ap.add_argument("--config", action="append", choices=sorted(configs()),
                    help="default: default and baseline_cosine_top1")
    ap.add_argument("--json", type=Path, help="also write the report here")
    ap.add_argument("--explain", action="store_true",
                    help="for each error of a verifier config: the verifier's probability for the deciding pair and "
                         "how far it moves with each group of evidence set to its most favourable value")
    args = ap.parse_args(argv)
    rows = load_rows(per_kind=args.per_kind)
    report = evaluate(rows, tuple(args.config) if args.config else None)
    if args.explain:
        benches = benchmarks()
        for r in report["configs"].values():
            if r["verifier"]:
                r["explained"] = explain_errors(r["errors"], rows, benches)
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
