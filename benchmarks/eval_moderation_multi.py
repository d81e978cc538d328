"""Multilingual tier-1 moderation: recall per language on abusive messages, false-positive
rate on benign messages with trigger words.

Sets (written for this project, tests/data/make_moderation_multi_eval.py): the held-out
`moderation_multi_eval.jsonl` (8 languages x 14 abusive + 10 benign) and the dev set the
rules were tuned on (`--dev`). Contenders, all on the same messages:

- `before`: tier 1 as it was (English rules + alt-profanity-check), `multilingual=False`;
- `ours`: tier 1 rules with `moderation.lexicon_multi` (the default);
- `glin-profanity` / `safetext` word lists, when importable (`--others PATH` adds a
  directory to sys.path, e.g. one made with `pip install --target`): flagged = the
  package says the text is profane. They are not dependencies of the project.

Run: .venv/bin/python benchmarks/eval_moderation_multi.py [--dev] [--show] [--others /tmp/others]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO / "tests" / "data"


def load(dev: bool) -> list[dict]:
    path = DATA / ("moderation_multi_dev.jsonl" if dev else "moderation_multi_eval.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def score(rows: list[dict], flagged: list[bool]) -> dict:
    tp, fn, fp, tn = Counter(), Counter(), Counter(), Counter()
    for r, f in zip(rows, flagged, strict=True):
        harmful = r["label"] != "none"
        (tp if harmful and f else fn if harmful else fp if f else tn)[r["lang"]] += 1
    langs = sorted({r["lang"] for r in rows})
    recall = {lang: round(tp[lang] / max(tp[lang] + fn[lang], 1), 3) for lang in langs}
    benign = sum(fp.values()) + sum(tn.values())
    return {"recall_by_language": recall, "recall": round(sum(tp.values()) / max(sum(tp.values()) + sum(fn.values()), 1), 3),
            "min_recall": min(recall.values()), "false_positives": sum(fp.values()), "benign": benign,
            "fp_rate": round(sum(fp.values()) / max(benign, 1), 3), "fp_by_language": dict(fp)}


def real_clean_texts() -> list[tuple[str, str]]:
    """Real text nobody here wrote, none of it abusive: MT-bench/Vicuna questions and GPT-4
    answers, FastChat's dummy conversations, and the Chinese MMLU translations."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from eval_taggers_quality import TESTBED, clean_texts

    out = [(src, t) for src, t in clean_texts() if src != "lang_eval"]
    rephrase = TESTBED.parent / "llm-decontaminator" / "rephrase"
    for path in sorted(rephrase.glob("*_test_chinese.jsonl")) if rephrase.exists() else []:
        out += [("mmlu_chinese", json.loads(line)["text"]) for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()]
    return out


def contenders(others: str | None):
    from moderation.local import LocalConfig, LocalModerator

    out = {}
    for name, cfg in (("before: English rules + profanity-check", LocalConfig(multilingual=False)),
                      ("ours: + multilingual rules (default)", LocalConfig())):
        mod = LocalModerator(cfg)
        out[name] = lambda texts, rows, mod=mod: [v["flagged"] for v in mod.moderate(texts)]
    if others:
        sys.path.insert(0, others)
    try:
        from glin_profanity import Filter

        langs = ["english", "spanish", "french", "german", "italian", "portuguese", "russian", "chinese"]
        flt = Filter({"languages": langs})
        out["glin-profanity 4.1.0 (8 word lists)"] = lambda texts, rows: [bool(flt.is_profane(t)) for t in texts]
    except Exception as exc:  # noqa: BLE001 - optional contender
        print(f"(glin-profanity not run: {exc})", file=sys.stderr)
    try:
        from safetext import SafeText

        checkers = {}

        def safetext_flags(texts, rows):
            flags = []
            for t, r in zip(texts, rows):
                lang = {"zh": "zh"}.get(r["lang"], r["lang"])
                if lang not in checkers:
                    try:
                        checkers[lang] = SafeText(language=lang)
                    except Exception:  # noqa: BLE001 - language without a list (it)
                        checkers[lang] = None
                chk = checkers[lang]
                flags.append(bool(chk and chk.check_profanity(text=t)))
            return flags

        out["safetext 0.3.3 (told the language)"] = safetext_flags
    except Exception as exc:  # noqa: BLE001 - optional contender
        print(f"(safetext not run: {exc})", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dev", action="store_true")
    ap.add_argument("--show", action="store_true", help="print misses and false positives of ours")
    ap.add_argument("--others", help="a directory with glin-profanity / safetext installed (pip --target)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = load(args.dev)
    texts = [r["text"] for r in rows]
    report = {}
    for name, fn in contenders(args.others).items():
        t0 = time.process_time()
        flags = fn(texts, rows)
        report[name] = score(rows, flags) | {"cpu_s": round(time.process_time() - t0, 3)}
        if args.show and name.startswith("ours"):
            for r, f in zip(rows, flags):
                if f != (r["label"] != "none"):
                    print("MISS" if not f else "FP  ", r["lang"], r["label"], r["text"])
    real = real_clean_texts()
    from moderation.local import LocalConfig, LocalModerator

    real_flags = {}
    for name, cfg in (("before", LocalConfig(multilingual=False)), ("ours", LocalConfig())):
        verdicts = LocalModerator(cfg).moderate([t for _, t in real])
        real_flags[name] = [(src, t) for (src, t), v in zip(real, verdicts) if v["flagged"]]
    report["real_clean"] = {"messages": len(real), "sources": dict(Counter(src for src, _ in real)),
                            "flagged": {k: len(v) for k, v in real_flags.items()}}
    if args.show:
        for src, t in real_flags["ours"]:
            print("REAL", src, t[:100].replace("\n", " "))
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return
    langs = sorted({r["lang"] for r in rows})
    harmful = sum(r["label"] != "none" for r in rows)
    print(f"## tier 1, {'dev' if args.dev else 'held-out test'} set: {harmful} abusive, {len(rows) - harmful} benign "
          f"with trigger words, {len(langs)} languages")
    print("| contender | recall | " + " | ".join(langs) + " | FP rate (benign) |")
    print("|---|--:|" + "--:|" * len(langs) + "--:|")
    for name, r in report.items():
        if name == "real_clean":
            continue
        cells = " | ".join(f"{r['recall_by_language'][lang]:.2f}" for lang in langs)
        print(f"| {name} | {r['recall']:.3f} | {cells} | {r['fp_rate']:.3f} ({r['false_positives']}/{r['benign']}) |")
    rc = report["real_clean"]
    print(f"\nreal clean text ({rc['messages']} messages: {rc['sources']}): flagged before "
          f"{rc['flagged']['before']}, ours {rc['flagged']['ours']}")


if __name__ == "__main__":
    main()
