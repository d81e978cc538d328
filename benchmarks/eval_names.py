"""Name redaction quality by language: recall, consistency and false positives.

Sets (written for this project, see tests/data/make_names_eval.py):
- `tests/data/names_eval.jsonl`: held-out test, 7 languages, private persons with and
  without a cue, plus public figures / fictional characters that must stay;
- `tests/data/names_dev.jsonl`: the dev set the rules and gates were tuned on (`--dev`).
Real clean text: MT-bench and Vicuna questions, GPT-4 reference answers and FastChat's
dummy conversations (`../shared/testbed/fastchat`), the same 733 messages as
docs/tagging.md; every name span found there is a false positive or a public/fictional
person, listed with `--show`.

A mention counts as found when every character of it lies inside a `name` span.
Consistency: in multi-message items, every mention of one person must get one placeholder.

Run: .venv/bin/python benchmarks/eval_names.py [--dev] [--show] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from eval_taggers_quality import DATA, clean_texts, read_jsonl  # noqa: E402


def _mention_found(content: str, mention: str, spans) -> tuple[bool, set[str]]:
    start = content.find(mention)
    if start < 0:
        raise ValueError(f"mention {mention!r} not in {content!r}")
    end = start + len(mention)
    covered = [False] * len(mention)
    placeholders = set()
    for s, ph in spans:
        if s.kind != "name" or s.end <= start or s.start >= end:
            continue
        placeholders.add(ph)
        for i in range(max(s.start, start), min(s.end, end)):
            covered[i - start] = True
    # spaces between words need not be covered (two adjacent spans are one mention found)
    ok = all(c or mention[i].isspace() for i, c in enumerate(covered))
    return ok, placeholders


def eval_items(items: list[dict], redactor=None) -> dict:
    from curate.tag.pii import PIIRedactor

    redactor = redactor or PIIRedactor()
    found, total = Counter(), Counter()
    by_kind_found, by_kind_total = Counter(), Counter()
    clean_fp, clean_items = Counter(), Counter()
    inconsistent, multi = 0, 0
    misses, fps = [], []
    t0 = time.process_time()
    for item in items:
        lang = item["lang"]
        red = redactor.redact_conversation(item["messages"])
        spans_by_msg = defaultdict(list)
        for (i, s), ph in zip(red.spans, red.placeholders):
            spans_by_msg[i].append((s, ph))
        if item["kind"] == "clean":
            clean_items[lang] += 1
            for i, msg in enumerate(item["messages"]):
                for s, _ in spans_by_msg[i]:
                    if s.kind == "name":
                        clean_fp[lang] += 1
                        fps.append({"id": item["id"], "text": msg["content"][s.start:s.end], "rule": s.rule})
            continue
        person_placeholders = set()
        for mention in item["names"]:
            content = item["messages"][mention["message_index"]]["content"]
            ok, phs = _mention_found(content, mention["text"], spans_by_msg[mention["message_index"]])
            total[lang] += 1
            by_kind_total[item["kind"]] += 1
            if ok:
                found[lang] += 1
                by_kind_found[item["kind"]] += 1
                person_placeholders |= phs
            else:
                misses.append({"id": item["id"], "mention": mention["text"], "text": content[:90]})
        if len({m["message_index"] for m in item["names"]}) > 1:
            multi += 1
            inconsistent += len(person_placeholders) > 1
    cpu = time.process_time() - t0
    langs = sorted(total)
    all_found, all_total = sum(found.values()), sum(total.values())
    return {
        "mentions": all_total, "recall": round(all_found / max(all_total, 1), 3),
        "recall_by_language": {lang: round(found[lang] / total[lang], 3) for lang in langs},
        "mentions_by_language": dict(total),
        "recall_by_kind": {k: round(by_kind_found[k] / by_kind_total[k], 3) for k in sorted(by_kind_total)},
        "clean_items": sum(clean_items.values()), "clean_false_positive_spans": sum(clean_fp.values()),
        "clean_false_positives_by_language": dict(clean_fp),
        "multi_message_items": multi, "inconsistent_placeholders": inconsistent,
        "cpu_s": round(cpu, 2), "misses": misses, "false_positives": fps,
    }


def eval_real_clean(redactor=None) -> dict:
    from curate.tag.pii import PIIRedactor

    redactor = redactor or PIIRedactor()
    texts = [(src, t) for src, t in clean_texts() if src != "lang_eval"]
    names = []
    for src, text in texts:
        for s in redactor.find(text):
            if s.kind == "name":
                names.append({"source": src, "text": text[s.start:s.end], "rule": s.rule})
    return {"messages": len(texts), "name_spans": len(names),
            "messages_with_name": len({(n["source"], n["text"]) for n in names}), "spans": names}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dev", action="store_true", help="score the dev set instead of the held-out test set")
    ap.add_argument("--show", action="store_true", help="print misses and false positives")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from curate.tag.pii import PIIRedactor

    redactor = PIIRedactor()
    items = read_jsonl(DATA / ("names_dev.jsonl" if args.dev else "names_eval.jsonl"))
    report = {"set": "dev" if args.dev else "test", "items": eval_items(items, redactor),
              "real_clean": eval_real_clean(redactor), "detector": redactor.detector_id}
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return
    r = report["items"]
    print(f"## names, {report['set']} set ({r['mentions']} mentions; detector {report['detector']})")
    print(f"recall {r['recall']}  by kind {r['recall_by_kind']}")
    print("| language | mentions | recall |\n|---|--:|--:|")
    for lang, rec in r["recall_by_language"].items():
        print(f"| {lang} | {r['mentions_by_language'][lang]} | {rec:.3f} |")
    print(f"public/fictional clean items: {r['clean_items']}, name spans redacted there: "
          f"{r['clean_false_positive_spans']} {r['clean_false_positives_by_language']}")
    print(f"multi-message items: {r['multi_message_items']}, with >1 placeholder for one person: "
          f"{r['inconsistent_placeholders']}; cpu {r['cpu_s']} s")
    c = report["real_clean"]
    print(f"real clean text (MT-bench, Vicuna, GPT-4 answers, FastChat dummy): {c['messages']} messages, "
          f"{c['name_spans']} name spans")
    if args.show:
        for m in r["misses"]:
            print("MISS", m)
        for f in r["false_positives"]:
            print("FP  ", f)
        for s in c["spans"]:
            print("REAL", s)


if __name__ == "__main__":
    main()
