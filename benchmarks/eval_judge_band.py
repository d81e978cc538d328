"""The served judge on the pair verifier's uncertain band: fit its calibration, then score it.

`decontam check --judge` asks the judge only about pairs whose verifier probability lies in
the decontam model's band (`curate/models/verify_models/decontam.json`); the rest the
verifier decides alone. This script measures exactly that, on the reference tool's test bed
(`benchmarks/fit_verifier.protocol_pairs`, the pairs `benchmarks/eval_verifier.py` scores):

    pairs      every protocol pair of the calibration items (HumanEval 100-163, MMLU rows past
               100, CodeAlpaca neighbours of HumanEval 100-163) and of the scored items (0-99;
               CodeAlpaca 0-99 against GPT-4's verdicts), with its verifier probability; the
               band pairs are what the judge is asked about. judge, fit and report rescore
               it with the decontam.json that ships now (the texts and cosines stay; a
               verifier refit needs no new `pairs` run)
    judge      asks a served judge (an OpenAI-compatible URL, as `curate serve-model` serves)
               about the band pairs, calibration split first. Every verdict lands in the
               verdict record, benchmarks/data/judge_verdicts/<model>.jsonl (committed data:
               the pair by the sha256 of its texts, model, prompt version, max_tokens,
               margin, answer; `decontam.judge.VerdictRecord`), which is read before the
               server is asked: only pairs it lacks cost a call. `--cap N` judges a seeded
               sample of at most N distinct band pairs per set; `--range LO,HI` judges the
               pairs with a verifier probability in [LO, HI) (band pairs first, two to one),
               so the record also covers the band of a later verifier refit
    fit        fits the judge's calibration on the calibration split's band pairs that the
               record holds (`decontam.calibrate.fit_band_calibration`), no server needed,
               and writes it (default: decontam/calibrations/<model>.json, which `decontam
               check` loads by the judge's model name). The same record and the same
               decontam.json give the same bytes
    report     F1 per set on the scored items, the verifier alone and with the judge deciding
               its band, judge calls per item, next to the paper's GPT-4 column

    .venv/bin/python benchmarks/eval_judge_band.py pairs --out .cache/judge_band/pairs.json
    .venv/bin/python benchmarks/eval_judge_band.py judge --url http://127.0.0.1:8091/v1 \\
        --model qwen-coder-1.5b --split calibration --range 0.15,0.8 --max-tokens 1
    .venv/bin/python benchmarks/eval_judge_band.py fit --model qwen-coder-1.5b --max-tokens 1
    .venv/bin/python benchmarks/eval_judge_band.py report --model qwen-coder-1.5b --max-tokens 1
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from decontam.judge import DEFAULT_MAX_CHARS  # noqa: E402

TESTBED = REPO.parent / "shared" / "testbed"
CACHE = REPO / ".cache" / "judge_band"

# The paper's GPT-4 column (docs/decontam.md, "Quality (the paper's protocol)"): the pairs
# protocol's F1; a range where the paper gives one per subject group.
PAPER_GPT4 = {
    "humaneval_python": (0.995, 0.995), "humaneval_c": (0.974, 0.974), "humaneval_js": (0.980, 0.980),
    "mmlu_abstract_algebra_english": (0.94, 0.97), "mmlu_sociology_english": (0.94, 0.97),
    "mmlu_high_school_us_history_english": (0.94, 0.97), "mmlu_abstract_algebra_chinese": (0.95, 0.99),
    "mmlu_sociology_chinese": (0.95, 0.99), "mmlu_high_school_us_history_chinese": (0.95, 0.99),
}
PARTS = ("pos", "nn", "rnd", "search")


def _data_type(set_name: str) -> str:
    return "code" if set_name.startswith("humaneval") or set_name == "codealpaca" else "knowledge"


def build_pairs(root: Path, k: int | None = None) -> dict:
    """Every protocol pair of both splits, with its verifier probability and band flag; the
    search protocol hands over the top `k` candidates of each channel (default
    `CheckConfig().top_k`, what `decontam check` sends)."""
    if k is None:
        from decontam.check import CheckConfig

        k = CheckConfig().top_k
    from benchmarks.fit_verifier import embedders, protocol_pairs
    from curate.models.verify import load_model, model_matrix, pair_features

    model = load_model("decontam")
    full, multi = embedders()
    sha = _verifier_sha()
    out: dict = {"verifier": {"threshold": model.threshold, "band": list(model.band), "sha256": sha,
                              "features_sha256": _features_sha()}, "top_k": k, "splits": {}}
    for split, rng_items, ca_items in (("calibration", (100, 10**6), (100, 10**6)), ("scored", (0, 100), (0, 100))):
        prot = protocol_pairs(root, full, multi, k=k, item_range=rng_items, codealpaca_items=ca_items)
        groups = {name: parts for name, parts in prot["sets"].items()}
        groups["codealpaca"] = {"items": sorted({p["item"] for p in prot["codealpaca"]}), "ca": prot["codealpaca"]}
        sets = {}
        for name, parts in sorted(groups.items()):
            rows = []
            for part in (("ca",) if name == "codealpaca" else PARTS):
                for p in parts[part]:
                    rows.append({"part": part, **{k: p[k] for k in ("a", "b", "label", "item", "cos_full", "cos_multi", "gap_other")},
                                 "key": list(p["key"]) if "key" in p else None})
            f = pair_features([r["a"] for r in rows], [r["b"] for r in rows], cos_full=[r["cos_full"] for r in rows],
                              cos_multi=[r["cos_multi"] for r in rows], gap_other=[r["gap_other"] for r in rows])
            probs = model.proba(model_matrix(f))
            lo, hi = model.band
            for r, pr in zip(rows, probs):
                r["prob"] = round(float(pr), 6)
                r["in_band"] = bool(lo <= pr < hi)
            sets[name] = {"items": list(parts["items"]), "data_type": _data_type(name), "rows": rows}
            print(f"{split} {name}: {len(rows)} pairs, {sum(r['in_band'] for r in rows)} in band, "
                  f"{len({(r['a'], r['b']) for r in rows if r['in_band']})} distinct", file=sys.stderr, flush=True)
        out["splits"][split] = sets
    return out


def band_jobs(data: dict, split: str, cap: int | None, seed: int = 0, parts: tuple[str, ...] | None = None,
              sets: tuple[str, ...] | None = None, prob_range: tuple[float, float] | None = None,
              ) -> list[tuple[str, str, str, str]]:
    """The distinct band pairs (set, data type, a, b) of `split`, each set's in a seeded random
    order (so any prefix of a set is a random sample of its band); with `cap`, the first `cap`;
    `parts`, `sets`: only rows of those protocol parts (pos, nn, rnd, search, ca) and sets.

    `prob_range` (lo, hi): the pairs with a verifier probability in [lo, hi) instead of the
    band, so that the record also covers what a refitted verifier's band may hold. Each
    set's band pairs then come first, interleaved two to one with the rest of the range (in
    seeded order), so a run stopped early has judged mostly band pairs and some of the rest."""
    jobs = []
    for name, s in sorted(data["splits"][split].items()):
        if sets and name not in sets:
            continue
        rows = [r for r in s["rows"] if not parts or r["part"] in parts]
        band = sorted({(r["a"], r["b"]) for r in rows if r["in_band"]})
        random.Random(f"{seed}:{split}:{name}").shuffle(band)
        if prob_range is not None:
            lo, hi = prob_range
            rest = sorted({(r["a"], r["b"]) for r in rows if not r["in_band"] and lo <= r["prob"] < hi} - set(band))
            random.Random(f"{seed}:{split}:{name}:rest").shuffle(rest)
            mixed, k = [], 0
            while band[2 * k:] or rest[k:]:
                mixed += band[2 * k:2 * k + 2] + rest[k:k + 1]
                k += 1
            band = mixed
        jobs += [(name, s["data_type"], a, b) for a, b in band[:cap]]
    return jobs


def round_robin(jobs: list, per_round: int) -> list[list]:
    """`jobs` in rounds of at most `per_round` pairs of each set, so that a run stopped early
    has judged about as many pairs of every set."""
    by_set: dict[str, list] = {}
    for j in jobs:
        by_set.setdefault(j[0], []).append(j)
    rounds = []
    for start in range(0, max((len(v) for v in by_set.values()), default=0), per_round):
        rounds.append([j for name in sorted(by_set) for j in by_set[name][start:start + per_round]])
    return rounds


RECORDS = REPO / "benchmarks" / "data" / "judge_verdicts"


def record_path(args) -> Path:
    """The verdict record: committed data, one file per judge model."""
    return Path(args.record) if args.record else RECORDS / f"{args.model}.jsonl"


def recorded_verdicts(record, model: str, jobs, max_tokens: int, max_chars: int = DEFAULT_MAX_CHARS) -> dict[tuple[str, str], dict]:
    """The recorded verdicts of `jobs` (no calls): {(a, b): verdict dict}."""
    out = {}
    for _, dt, a, b in jobs:
        hit = record.get(record.identity(model, dt, "ab", a, b, max_chars, max_tokens))
        if hit is not None:
            out[(a, b)] = hit
    return out


def judge_jobs(jobs, judge, record, per_round: int, say=lambda m: None, by_text: bool = False) -> dict:
    """Ask `judge` about the `jobs` (set, data type, a, b) the record does not hold yet, in
    rounds (`round_robin`); the record is read first and every new verdict lands in it.
    `by_text`: in text order instead, in batches of `per_round` (for judging a whole group: a
    benchmark item's pairs in a row share the prompt's prefix, which vLLM's prefix cache reuses).
    Returns counts: pairs, recorded (read from the record), asked, errors."""
    from decontam.judge import JudgePair

    # each distinct (data type, a, b) once: the HumanEval languages share many search pairs
    distinct = sorted({(dt, a, b) for _, dt, a, b in jobs})
    pairs = [JudgePair(a, b, dt) for dt, a, b in distinct]
    judge.cache = record.cache_for(judge, pairs)
    have = recorded_verdicts(record, judge.model_id, [(None, dt, a, b) for dt, a, b in distinct], judge.max_tokens,
                             judge.max_chars)
    todo, seen = [], set()
    for j in jobs:
        if (j[2], j[3]) not in have and (j[1], j[2], j[3]) not in seen:
            seen.add((j[1], j[2], j[3]))
            todo.append(j)
    counts = {"pairs": len(distinct), "recorded": len(distinct) - len(todo), "asked": 0, "errors": 0}
    t0 = time.perf_counter()
    if by_text:
        todo.sort(key=lambda j: (j[1], j[2], j[3]))
        rounds = [todo[k:k + per_round] for k in range(0, len(todo), per_round)]
    else:
        rounds = round_robin(todo, per_round)
    for k, batch in enumerate(rounds):
        verdicts = judge.judge_many([JudgePair(a, b, dt) for _, dt, a, b in batch])
        counts["asked"] += len(batch)
        counts["errors"] += sum(v.label == "error" for v in verdicts)
        wall = time.perf_counter() - t0
        say(f"{time.strftime('%H:%M:%S')} round {k}: {len(batch)} judged ({counts['errors']} errors so far); "
            f"{counts['asked']}/{len(todo)} in {wall:.0f}s ({wall / max(counts['asked'], 1):.1f} s a pair; "
            f"record {len(record)})")
    return counts


def cmd_judge(args) -> None:
    from curate.models.llm import ChatClient, Endpoint
    from decontam.judge import LLMJudge, VerdictRecord

    data = load_pairs(args.pairs)
    prob_range = tuple(float(x) for x in args.range.split(",")) if args.range else None
    jobs = band_jobs(data, args.split, args.cap, parts=tuple(args.parts.split(",")) if args.parts else None,
                     sets=tuple(args.sets.split(",")) if args.sets else None, prob_range=prob_range)
    client = ChatClient([Endpoint(args.url, args.model, None)], concurrency=args.concurrency, timeout_s=900)
    judge = LLMJudge(client, model=args.model, max_tokens=args.max_tokens)
    record = VerdictRecord(record_path(args))
    t0, c0 = time.perf_counter(), time.process_time()
    counts = judge_jobs(jobs, judge, record, args.per_round, say=lambda m: print(m, file=sys.stderr, flush=True),
                        by_text=args.by_text)
    print(f"{args.split}: {counts} in {time.perf_counter() - t0:.0f}s wall, {time.process_time() - c0:.1f} CPU s here; "
          f"record {record.path} holds {len(record)}", file=sys.stderr)


def load_pairs(path: str | Path) -> dict:
    """pairs.json, rescored with today's decontam model (and written back when that changed it)."""
    data = json.loads(Path(path).read_text())
    sha = (data["verifier"].get("sha256"), data["verifier"].get("features_sha256"))
    data = rescore(data)
    if (data["verifier"]["sha256"], data["verifier"].get("features_sha256")) != sha:
        tmp = Path(path).with_name(Path(path).name + ".tmp")  # atomic: an interrupt leaves the old cache
        tmp.write_text(json.dumps(data) + "\n")
        tmp.replace(path)
    return data


def rescore(data: dict) -> dict:
    """`data`'s verifier probabilities and band flags recomputed with the decontam model that
    ships now (pairs.json keeps the texts and channel cosines, which no verifier refit
    changes), so that a refit needs no new `pairs` run and a fit always reads today's band."""
    from curate.models.verify import load_model, model_matrix, pair_features

    model = load_model("decontam")
    sha = _verifier_sha()
    code = _features_sha()
    if data["verifier"].get("sha256") == sha and data["verifier"].get("features_sha256") == code:
        return data
    for split in data["splits"].values():
        for s in split.values():
            rows = s["rows"]
            f = pair_features([r["a"] for r in rows], [r["b"] for r in rows], cos_full=[r["cos_full"] for r in rows],
                              cos_multi=[r["cos_multi"] for r in rows], gap_other=[r["gap_other"] for r in rows])
            lo, hi = model.band
            for r, pr in zip(rows, model.proba(model_matrix(f))):
                r["prob"] = round(float(pr), 6)
                r["in_band"] = bool(lo <= pr < hi)
    data["verifier"] = {"threshold": model.threshold, "band": list(model.band), "sha256": sha, "features_sha256": code}
    return data


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _verifier_sha() -> str:
    """The shipped decontam model's hash (a calibration records the one it was fitted on)."""
    from curate.models.verify import MODEL_DIR

    return _sha256(MODEL_DIR / "decontam.json")


def _features_sha() -> str:
    """The feature code's hash: a change there (not only in decontam.json) may move the probabilities."""
    import curate.models.verify as verify

    return _sha256(Path(verify.__file__))


def judged_rows(data: dict, split: str, record, model: str, max_tokens: int):
    """The recorded verdicts of `split`'s band pairs ({(a, b): verdict}) and the pairs judged:
    a run stopped early (or `cap`) scores the sample it judged, never unjudged band pairs."""
    got = recorded_verdicts(record, model, band_jobs(data, split, None), max_tokens)
    return got, set(got)


def leave_one_out(examples: list[dict], model: str, band, verifier_cut: float) -> str:
    """F1 of the band fusion on each example fitted without it (fusion and cut refitted), per data type."""
    from decontam.calibrate import fit_band_calibration

    ok = [e for e in examples if e.get("margin") is not None and not e.get("error")]
    pred = []
    for k, e in enumerate(ok):
        cal = fit_band_calibration(ok[:k] + ok[k + 1:], judge_model=model, band=band, verifier_cut=verifier_cut)
        pred.append(bool(cal.band_says(e["prob"], e["margin"], model)))

    def f1(idx) -> float:
        tp = sum(pred[k] and ok[k]["label"] for k in idx)
        return 2 * tp / max(sum(pred[k] for k in idx) + sum(ok[k]["label"] for k in idx), 1)

    per = ", ".join(f"{dt} {f1([k for k, e in enumerate(ok) if e['data_type'] == dt]):.3f}"
                    for dt in sorted({e["data_type"] for e in ok}))
    return f"leave-one-out over {len(ok)} band pairs: F1 {f1(range(len(ok))):.3f} ({per})"


def fit_from_record(data: dict, record, model: str, max_tokens: int, say=lambda m: None, loo: bool = False):
    """The band calibration fitted on the calibration split's band pairs that `record` holds
    (no server): the same record and the same decontam model give the same calibration."""
    from decontam.calibrate import fit_band_calibration

    got, asked = judged_rows(data, "calibration", record, model, max_tokens)
    examples, seen = [], set()
    for name, s in sorted(data["splits"]["calibration"].items()):
        for r in s["rows"]:
            v = got.get((r["a"], r["b"]))
            if not r["in_band"] or v is None or (r["a"], r["b"], r["label"]) in seen:
                continue
            seen.add((r["a"], r["b"], r["label"]))
            examples.append({"prob": r["prob"], "margin": v.get("margin"), "label": bool(r["label"]),
                             "data_type": s["data_type"], "set": name, "error": v.get("label") == "error"})
    band_pairs = {(r["a"], r["b"]) for s in data["splits"]["calibration"].values() for r in s["rows"] if r["in_band"]}
    if loo:
        say(leave_one_out(examples, model, data["verifier"]["band"], data["verifier"]["threshold"]))
    cal = fit_band_calibration(examples, judge_model=model, band=data["verifier"]["band"],
                               verifier_cut=data["verifier"]["threshold"], progress=say)
    cal.fitted_on.update({"script": "benchmarks/eval_judge_band.py fit", "split": "test bed calibration split "
                          "(HumanEval 100-163, MMLU rows past 100, CodeAlpaca 100-163): protocol pairs in the verifier's band",
                          "band_pairs": len(band_pairs), "band_pairs_judged": len(asked),
                          "served_max_tokens": max_tokens, "verifier_sha256": data["verifier"]["sha256"],
                          # the search protocol's candidates per channel (pairs.json before the option: 5)
                          "top_k": data.get("top_k", 5),
                          "record": f"benchmarks/data/judge_verdicts/{model}.jsonl"})
    return cal


def cmd_fit(args) -> None:
    from decontam.judge import VerdictRecord

    data = load_pairs(args.pairs)
    cal = fit_from_record(data, VerdictRecord(record_path(args)), args.model, args.max_tokens,
                          say=lambda m: print(m, file=sys.stderr), loo=args.loo)
    out = Path(args.out or REPO / "decontam" / "calibrations" / f"{args.model}.json")
    cal.save(out)
    print(f"{out}: {cal.fused_verifier} quality {cal.quality}")


def prf(pred, gold) -> dict:
    pred, gold = np.asarray(pred, bool), np.asarray(gold, bool)
    tp = int((pred & gold).sum())
    p = tp / max(int(pred.sum()), 1)
    r = tp / max(int(gold.sum()), 1)
    return {"f1": round(2 * p * r / (p + r), 3) if p + r else 0.0, "precision": round(p, 3), "recall": round(r, 3)}


def cmd_report(args) -> None:
    from decontam.calibrate import Calibration

    from decontam.judge import VerdictRecord

    data = load_pairs(args.pairs)
    cal = Calibration.load(args.calibration or REPO / "decontam" / "calibrations" / f"{args.model}.json")
    cut = data["verifier"]["threshold"]
    if args.floor is not None:
        # a lower band floor: the judge (its fusion, fitted on the band, read below it) also
        # decides the recorded pairs in [floor, band low); the verifier keeps the rest
        hi = data["verifier"]["band"][1]
        for split in data["splits"].values():
            for s in split.values():
                for r in s["rows"]:
                    r["in_band"] = args.floor <= r["prob"] < hi
        data["verifier"]["band"] = [args.floor, hi]
    got, asked = judged_rows(data, "scored", VerdictRecord(record_path(args)), args.model, args.max_tokens)
    result = {"calibration": cal.fused_verifier, "verifier_threshold": cut, "band": data["verifier"]["band"],
              "top_k": data.get("top_k", 5), "sets": {}}

    def decide(r, how: str) -> bool:
        """One row's decision: `verifier` alone; `judge`: the judge decides a band pair it
        answered (unjudged band pairs keep the verifier's decision); `ideal`: a judge that is
        always right on the band (the most the band allows)."""
        alone = r["prob"] >= cut
        if how == "verifier" or not r["in_band"]:
            return alone
        if how == "ideal":
            return bool(r["label"])
        v = got.get((r["a"], r["b"]))
        if v is None or v.get("label") == "error" or v.get("margin") is None:
            return alone
        return bool(cal.band_says(r["prob"], v["margin"], args.model))

    def figures(rows, how: str, weight=lambda r: 1.0) -> dict:
        """F1 per protocol (`weight`: how much each row counts; 1 throughout here)."""
        by_part = {p: [r for r in rows if r["part"] == p] for p in (*PARTS, "ca")}

        def wprf(part_rows) -> dict:
            tp = fp = fn = 0.0
            for r in part_rows:
                w, pred = weight(r), decide(r, how)
                tp += w * (pred and r["label"])
                fp += w * (pred and not r["label"])
                fn += w * (not pred and r["label"])
            p_ = tp / (tp + fp) if tp + fp else 0.0
            r_ = tp / (tp + fn) if tp + fn else 0.0
            return {"f1": round(2 * tp / (2 * tp + fp + fn), 3) if tp else 0.0, "precision": round(p_, 3), "recall": round(r_, 3)}

        if by_part["ca"]:
            ca = by_part["ca"]
            n = sum(weight(r) for r in ca)
            agree = sum(weight(r) * (decide(r, how) == r["label"]) for r in ca)
            return {"codealpaca": {**wprf(ca), "agreement": round(agree / n, 3),
                                   "flagged": round(sum(weight(r) * decide(r, how) for r in ca), 1),
                                   "true_kept": round(sum(weight(r) * (decide(r, how) and r["label"]) for r in ca), 1)}}
        flagged: dict = {}
        for r in by_part["search"]:
            key = tuple(r["key"])
            flagged[key] = flagged.get(key, False) or decide(r, how)
        keys = sorted(k for k in flagged if k[1]) + sorted(k for k in flagged if not k[1])
        return {"pairs_protocol": wprf(by_part["pos"] + by_part["rnd"]), "nn_negatives": wprf(by_part["pos"] + by_part["nn"]),
                "search_protocol": prf([flagged[k] for k in keys], [k[1] for k in keys])}

    cell = lambda d: f"{d['f1']:.3f} ({d['precision']:.2f}/{d['recall']:.2f})"  # noqa: E731
    lines, pooled = [], {}
    for name, s in sorted(data["splits"]["scored"].items()):
        band_all = {(r["a"], r["b"]) for r in s["rows"] if r["in_band"]}
        judged = band_all & asked
        # every figure "with the judge" is exact for what was judged: a band pair the record has
        # no verdict for keeps the verifier's decision (no estimate from a sample); `judged_share`
        # says how much of each group's band that covers (1.0: the figure is the judge's alone)
        scale = {}
        for grp, parts in (("pairs", ("pos", "rnd", "ca")), ("nn", ("nn",)), ("search", ("search",))):
            band_g = {(r["a"], r["b"]) for r in s["rows"] if r["in_band"] and r["part"] in parts}
            scale[grp] = round(len(band_g & judged) / len(band_g), 3) if band_g else 1.0

        search = [r for r in s["rows"] if r["part"] in ("search", "ca")]
        band_search = {(r["a"], r["b"]) for r in search if r["in_band"]}
        n_items = max(len(s["items"]), 1)
        # the judged band pairs themselves: how often the verifier and the judge get them right
        label_of = {(r["a"], r["b"]): bool(r["label"]) for r in s["rows"] if r["in_band"]}
        prob_of = {(r["a"], r["b"]): r["prob"] for r in s["rows"] if r["in_band"]}
        on_band = {"pairs": len(judged), "positives": sum(label_of[p] for p in judged),
                   "verifier_right": sum((prob_of[p] >= cut) == label_of[p] for p in judged),
                   "judge_right": sum(bool(cal.band_says(prob_of[p], got[p]["margin"], args.model)) == label_of[p]
                                      for p in judged if got[p].get("margin") is not None)}
        group = "code" if s["data_type"] == "code" else ("chinese" if name.endswith("chinese") else "english")
        for k2, v2 in on_band.items():
            pooled.setdefault(group, {}).setdefault(k2, 0)
            pooled[group][k2] += v2
        res = {"verifier": figures(s["rows"], "verifier"), "with_judge": figures(s["rows"], "judge"),
               "ideal_judge": figures(s["rows"], "ideal"), "judged_band_pairs": on_band,
               "items": len(s["items"]), "band_pairs": len(band_all), "band_pairs_judged": len(judged),
               "judged_share": scale,
               # the search protocol's band candidates per item at its top_k (CodeAlpaca: its one
               # neighbour per item); a check with a larger top_k meets more
               "judge_calls_per_item_search": round(len(band_search) / n_items, 3),
               "judge_calls_saved_search": round(1 - len(band_search) / max(len({(r['a'], r['b']) for r in search}), 1), 3),
               "paper_gpt4": PAPER_GPT4.get(name)}
        result["sets"][name] = res
        calls = f"{res['judge_calls_per_item_search']:.2f}"
        share = f"{scale['pairs']:.2f} / {scale['nn']:.2f} / {scale['search']:.2f}"
        right = f"{on_band['verifier_right']} / {on_band['judge_right']} of {on_band['pairs']} ({on_band['positives']} pos)"
        if name == "codealpaca":
            fmt = lambda d: f"{d['agreement']:.1%}, F1 {d['f1']:.3f}, flags {d['flagged']:g}, keeps {d['true_kept']:g}"  # noqa: E731
            lines.append(f"| CodeAlpaca 0-99 vs GPT-4 | {fmt(res['verifier']['codealpaca'])} | {fmt(res['with_judge']['codealpaca'])} "
                         f"| {share} | {fmt(res['ideal_judge']['codealpaca'])} | | | {right} | {calls} | |")
            continue
        g = res["paper_gpt4"]
        gtxt = "" if g is None else (f"{g[0]:.3f}" if g[0] == g[1] else f"{g[0]:.2f}-{g[1]:.2f}")
        v, j, i = res["verifier"], res["with_judge"], res["ideal_judge"]
        lines.append(f"| {name} | {cell(v['pairs_protocol'])} | **{cell(j['pairs_protocol'])}** | {share} | {cell(i['pairs_protocol'])} | "
                     f"{cell(v['nn_negatives'])} -> {cell(j['nn_negatives'])} | "
                     f"{cell(v['search_protocol'])} -> {cell(j['search_protocol'])} | {right} | {calls} | {gtxt} |")
    result["judged_band_pairs_pooled"] = pooled
    print("| set | pairs protocol: verifier | with the judge on its band (unjudged: the verifier) | share of the band judged (pairs/NN/search) | a perfect judge on the band | "
          "NN negatives: verifier -> with judge | search protocol: verifier -> judge on the sample | "
          "judged band pairs right: verifier / judge | judge calls per item (search protocol, its top_k) | paper GPT-4 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    for group, c in sorted(pooled.items()):
        print(f"{group}: judged band pairs {c['pairs']} ({c['positives']} positive): verifier right on {c['verifier_right']}, "
              f"judge (calibrated) right on {c['judge_right']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pairs")
    p.add_argument("--testbed", default=str(TESTBED))
    p.add_argument("--out", default=str(CACHE / "pairs.json"))
    p.add_argument("--k", type=int, help="search-protocol candidates per channel [CheckConfig().top_k: what "
                                         "`decontam check` sends; the calibration records it as fitted_on.top_k]")
    for name in ("judge", "fit", "report"):
        q = sub.add_parser(name)
        q.add_argument("--pairs", default=str(CACHE / "pairs.json"))
        q.add_argument("--model", required=True, help="the served judge model's name")
        q.add_argument("--record", help="the verdict record (committed data) [benchmarks/data/judge_verdicts/<model>.jsonl]")
        q.add_argument("--max-tokens", type=int, default=40,
                       help="the judge's reply length; the margin is read at the first token, so 1 gives the same "
                            "verdicts and margins without the reason, for a cheaper measurement [40]")
        if name == "judge":
            q.add_argument("--url", required=True)
            q.add_argument("--cap", type=int, help="at most this many distinct band pairs per set (seeded sample)")
            q.add_argument("--range", help="LO,HI: judge the pairs with a verifier probability in [LO, HI) (the band's "
                                           "first, two to one with the rest) instead of the band alone")
            q.add_argument("--split", choices=("calibration", "scored"), required=True)
            q.add_argument("--concurrency", type=int, default=2)
            q.add_argument("--per-round", type=int, default=2, help="pairs of each set per round [2]")
            q.add_argument("--parts", help="only band pairs of these protocol parts, e.g. pos,nn,rnd,ca (the pairs "
                                           "protocol, NN negatives and CodeAlpaca, judged in full before the search sample)")
            q.add_argument("--sets", help="only these sets, comma-separated")
            q.add_argument("--by-text", action="store_true", help="judge in text order, in batches of --per-round "
                                                                  "(all of a group: shared prompt prefixes)")
        if name == "fit":
            q.add_argument("--out")
            q.add_argument("--loo", action="store_true", help="also print the leave-one-out F1 (a fit per pair)")
        if name == "report":
            q.add_argument("--calibration")
            q.add_argument("--json")
            q.add_argument("--floor", type=float, help="judge from this verifier probability up (a band floor below "
                                                        "the model's), where the record has verdicts")
    args = ap.parse_args()
    if args.cmd == "pairs":
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        t0, c0 = time.perf_counter(), time.process_time()
        data = build_pairs(Path(args.testbed), k=args.k)
        Path(args.out).write_text(json.dumps(data) + "\n")
        print(f"{args.out}: {time.perf_counter() - t0:.0f}s wall, {time.process_time() - c0:.0f} CPU s", file=sys.stderr)
    else:
        {"judge": cmd_judge, "fit": cmd_fit, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    main()
