"""Quality of the language and PII taggers on labelled sets written for this project.

- Language: accuracy on tests/data/lang_eval.jsonl (13 languages x 20 items, short,
  medium and long, plus one question-with-code item per language), overall, per
  language and per length.
- PII: recall per kind on tests/data/pii_eval.jsonl (planted values; a small held-out set,
  tests/data/pii_heldout.jsonl, was written after the rules were tuned and is reported apart): a value counts as
  found when every one of its characters is inside a redacted span (`full`), and as
  `right kind` when those spans also carry its kind; hard negatives there and real clean
  text (MT-bench and Vicuna-bench questions, MT-bench reference answers, FastChat's dummy
  conversations from ../shared/testbed, plus the language set) give false positives.

Run: .venv/bin/python benchmarks/eval_taggers_quality.py [--json | --language-variants]
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO / "tests" / "data"
TESTBED = REPO.parent / "shared" / "testbed" / "fastchat"

# targets from the issue: recall per kind (fraction of planted values fully redacted)
PII_TARGETS = {"email": 1.0, "secret": 1.0, "credit_card": 1.0, "ip": 1.0, "phone": 0.95}


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# ---------------------------------------------------------------------------- language
def eval_language(items: list[dict] | None = None, config=None) -> dict:
    from curate.tag.language import LanguageTagger

    items = items if items is not None else read_jsonl(DATA / "lang_eval.jsonl")
    tagger = LanguageTagger(config)
    by_lang, by_length = defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0])
    errors = []
    for it in items:
        det = tagger.detect(it["text"])
        ok = det.code == it["lang"]
        for bucket, key in ((by_lang, it["lang"]), (by_length, it["length"])):
            bucket[key][0] += ok
            bucket[key][1] += 1
        if not ok:
            errors.append({"id": it["id"], "want": it["lang"], "got": det.code, "text": it["text"][:60]})
    correct = sum(v[0] for v in by_lang.values())
    return {
        "items": len(items), "languages": len(by_lang), "accuracy": correct / len(items),
        "per_language": {k: v[0] / v[1] for k, v in sorted(by_lang.items())},
        "per_length": {k: v[0] / v[1] for k, v in sorted(by_length.items())},
        "errors": errors, "detector": tagger.detector_id,
    }


# ---------------------------------------------------------------------------- PII
def _covered(text: str, value: str, spans, kind: str) -> tuple[bool, bool]:
    """(every char of each occurrence of value redacted, and only by spans of `kind`)."""
    full, right = True, True
    pos = text.find(value)
    if pos < 0:
        raise ValueError(f"planted value {value!r} not in its text")
    while pos >= 0:
        for i in range(pos, pos + len(value)):
            if text[i].isspace():
                continue
            hit = [s for s in spans if s.start <= i < s.end]
            if not hit:
                full = right = False
            elif any(s.kind != kind for s in hit):
                right = False
        pos = text.find(value, pos + len(value))
    return full, right


def eval_pii(items: list[dict] | None = None, config=None) -> dict:
    from curate.tag.pii import PIIRedactor

    items = items if items is not None else read_jsonl(DATA / "pii_eval.jsonl")
    redactor = PIIRedactor(config)
    planted, full, right = Counter(), Counter(), Counter()
    cue = {"with_cue": [0, 0], "without_cue": [0, 0]}
    misses, negatives_fp, leaks = [], [], []
    for it in items:
        red = redactor.redact_conversation([{"role": "user", "content": it["text"]}])
        spans = [s for _, s in red.spans]
        redacted_text = red.messages[0]["content"]
        if not it["pii"]:
            negatives_fp += [{"id": it["id"], "kind": s.kind, "rule": s.rule, "text": it["text"][s.start:s.end]}
                             for s in spans]
            continue
        for kind, value in it["pii"]:
            f, r = _covered(it["text"], value, spans, kind)
            planted[kind] += 1
            full[kind] += f
            right[kind] += r
            if kind == "name" and "cue" in it:
                bucket = cue["with_cue" if it["cue"] else "without_cue"]
                bucket[0] += f
                bucket[1] += 1
            if not f:
                misses.append({"id": it["id"], "kind": kind, "value": value, "redacted": redacted_text[:90]})
            if value in redacted_text:
                leaks.append(it["id"])
    recall = {k: full[k] / planted[k] for k in sorted(planted)}
    return {
        "items": len(items), "planted": dict(planted), "recall": recall,
        "recall_right_kind": {k: right[k] / planted[k] for k in sorted(planted)},
        "name_recall_by_cue": {k: (v[0] / v[1] if v[1] else None) for k, v in cue.items()},
        "misses": misses, "hard_negative_items": sum(1 for it in items if not it["pii"]),
        "hard_negative_false_positives": negatives_fp, "values_left_in_text": leaks,
        "targets_met": {k: recall.get(k, 0.0) >= t for k, t in PII_TARGETS.items()},
    }


def clean_texts() -> list[tuple[str, str]]:
    """(source, text) of real text with no PII; testbed files are used when present."""
    out = [("lang_eval", it["text"]) for it in read_jsonl(DATA / "lang_eval.jsonl")]
    if TESTBED.exists():
        for q in read_jsonl(TESTBED / "mt_bench" / "question.jsonl"):
            out += [("mt_bench_question", t) for t in q["turns"]]
            out += [("mt_bench_reference", t) for t in q.get("reference", []) or []]
        for a in read_jsonl(TESTBED / "mt_bench" / "reference_answer_gpt-4.jsonl"):
            for choice in a["choices"]:
                out += [("mt_bench_gpt4_answer", t) for t in choice["turns"]]
        for q in read_jsonl(TESTBED / "vicuna_bench" / "question.jsonl"):
            out += [("vicuna_question", t) for t in q["turns"]]
        dummy = json.loads((TESTBED / "dummy_conversation.json").read_text())
        seen = set()
        for conv in dummy:
            for m in conv["conversations"]:
                if m["value"] not in seen:  # the file repeats a few messages hundreds of times
                    seen.add(m["value"])
                    out.append(("fastchat_dummy", m["value"]))
    return out


def eval_clean(config=None) -> dict:
    from curate.tag.pii import PIIRedactor

    redactor = PIIRedactor(config)
    texts = clean_texts()
    per_kind, per_source = Counter(), Counter()
    examples = []
    for source, text in texts:
        for s in redactor.find(text):
            per_kind[s.kind] += 1
            per_source[source] += 1
            examples.append({"source": source, "kind": s.kind, "rule": s.rule, "text": text[s.start:s.end][:60]})
    sources = Counter(src for src, _ in texts)
    return {
        "messages": len(texts), "sources": dict(sources), "false_positives": dict(per_kind),
        "false_positives_per_1000_messages": round(1000 * sum(per_kind.values()) / max(len(texts), 1), 2),
        "messages_with_any": len({i for i, (_, t) in enumerate(texts) if redactor.find(t)}),
        "per_source": dict(per_source), "examples": examples,
    }


def language_variants() -> None:
    """Accuracy of the default against lingua's plain modes and all 75 languages (slow: ~1.3 GB)."""
    from curate.tag.language import LanguageConfig

    variants = {
        "default (45 languages, hybrid)": LanguageConfig(),
        "high accuracy on every text": LanguageConfig(low_accuracy_min_chars=10**9),
        "low accuracy on every text": LanguageConfig(low_accuracy_min_chars=0),
        "all 75 languages, hybrid": LanguageConfig(languages=("all",)),
    }
    for name, cfg in variants.items():
        r = eval_language(config=cfg)
        per_length = ", ".join(f"{k} {v:.3f}" for k, v in r["per_length"].items())
        misses = ", ".join(f"{e['id']}->{e['got']}" for e in r["errors"])
        print(f"{name:<32} accuracy {r['accuracy']:.3f} ({per_length}); misses: {misses}", flush=True)


def main() -> None:
    if "--language-variants" in sys.argv:
        language_variants()
        return
    t0 = time.perf_counter()
    report = {"language": eval_language(), "pii": eval_pii(), "clean": eval_clean(),
              "pii_heldout": eval_pii(read_jsonl(DATA / "pii_heldout.jsonl"))}
    report["seconds"] = round(time.perf_counter() - t0, 1)
    if "--json" in sys.argv:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return
    lang = report["language"]
    print(f"## Language ({lang['detector']})")
    print(f"accuracy {lang['accuracy']:.3f} on {lang['items']} items, {lang['languages']} languages")
    print("per length: " + ", ".join(f"{k} {v:.3f}" for k, v in lang["per_length"].items()))
    print("per language: " + ", ".join(f"{k} {v:.2f}" for k, v in lang["per_language"].items()))
    for e in lang["errors"]:
        print(f"  miss {e['id']}: want {e['want']} got {e['got']}: {e['text']!r}")
    pii = report["pii"]
    print("\n## PII recall on planted values (tests/data/pii_eval.jsonl)")
    print(f"{'kind':<12} {'planted':>7} {'recall':>7} {'right kind':>10} {'target':>7}")
    for k in pii["recall"]:
        target = PII_TARGETS.get(k)
        print(f"{k:<12} {pii['planted'][k]:>7} {pii['recall'][k]:>7.3f} {pii['recall_right_kind'][k]:>10.3f} "
              f"{'' if target is None else f'{target:.2f}':>7}")
    print(f"names with a cue: {pii['name_recall_by_cue']['with_cue']:.3f}, "
          f"without: {pii['name_recall_by_cue']['without_cue']:.3f}")
    for m in pii["misses"]:
        print(f"  miss {m['id']} {m['kind']}: {m['value']!r} -> {m['redacted']!r}")
    print(f"hard negatives: {len(pii['hard_negative_false_positives'])} false positives in "
          f"{pii['hard_negative_items']} items")
    for fp in pii["hard_negative_false_positives"]:
        print(f"  fp {fp['id']} {fp['kind']}/{fp['rule']}: {fp['text']!r}")
    held = report["pii_heldout"]
    print("\n## PII held-out set (tests/data/pii_heldout.jsonl, written after the rules were tuned; do not tune on it)")
    print(", ".join(f"{k} {held['recall'][k]:.3f} of {held['planted'][k]}" for k in held["recall"]))
    for m in held["misses"]:
        print(f"  miss {m['id']} {m['kind']}: {m['value']!r}")
    clean = report["clean"]
    print(f"\n## False positives on clean text ({clean['messages']} messages: {clean['sources']})")
    print(f"spans per kind: {clean['false_positives'] or 'none'}; messages with any: {clean['messages_with_any']}; "
          f"{clean['false_positives_per_1000_messages']} per 1000 messages")
    for ex in clean["examples"]:
        print(f"  {ex['source']} {ex['kind']}/{ex['rule']}: {ex['text']!r}")
    print(f"\n({report['seconds']} s)")


if __name__ == "__main__":
    main()
