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
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-kind", type=int, help="only the first N rows of each kind")
    ap.add_argument("--config", action="append", choices=sorted(configs()),
                    help="default: default and baseline_cosine_top1")
    ap.add_argument("--json", type=Path, help="also write the report here")
    args = ap.parse_args(argv)
    report = evaluate(load_rows(per_kind=args.per_kind), tuple(args.config) if args.config else None)
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
