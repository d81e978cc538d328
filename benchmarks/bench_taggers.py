"""Messages/s of the language and PII taggers on this machine, against baselines run in the same process.

Messages: every distinct message of the demo logs, the two labelled sets in tests/data and,
when ../shared/testbed is present, MT-bench/Vicuna questions, GPT-4 reference answers and
FastChat's dummy conversations (deduplicated, so caches do not flatter the figures).
Each configuration is timed `--repeat` times after a warm-up pass that loads models (the
load time is reported apart); the language tagger's per-text cache is cleared before
every pass. The machine is shared: read ratios, not absolute numbers.

Baselines:
- language: lingua high-accuracy on every text over the same ~45 languages (what you get
  without the hybrid), and optionally (`--all-languages`, slow: ~1.3 GB, a minute to load)
  lingua's default of all 75 languages.
- PII: `phonenumbers.PhoneNumberMatcher` run over every message for each of the 10 default
  regions, the usual way to find phone numbers, against our whole redactor (all kinds).

Run: .venv/bin/python benchmarks/bench_taggers.py [--repeat 3] [--all-languages] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def load_messages() -> list[str]:
    from eval_taggers_quality import DATA, clean_texts, read_jsonl

    texts = [t for _, t in clean_texts()]
    texts += [it["text"] for it in read_jsonl(DATA / "pii_eval.jsonl")]
    demo = REPO / "curate" / "demo_logs" / "openai_chats.jsonl"
    for line in demo.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
            texts += [m["content"] for m in rec.get("messages", []) if isinstance(m.get("content"), str)]
        except (json.JSONDecodeError, AttributeError, TypeError):
            continue  # the demo log has malformed lines on purpose
    return list(dict.fromkeys(t for t in texts if t))


def timed(fn, texts: list[str], repeat: int, before=None) -> dict:
    t0 = time.perf_counter()
    if before:
        before()
    for t in texts:  # warm-up: loads models
        fn(t)
    warm = time.perf_counter() - t0
    runs = []
    for _ in range(repeat):
        if before:
            before()
        t0 = time.perf_counter()
        for t in texts:
            fn(t)
        runs.append(time.perf_counter() - t0)
    best, med = min(runs), statistics.median(runs)
    return {"first_pass_s": round(warm, 2), "best_s": round(best, 3), "median_s": round(med, 3),
            "msgs_per_s": round(len(texts) / med, 1), "chars_per_s": round(sum(map(len, texts)) / med)}


def bench_language(texts, repeat, all_languages) -> dict:
    from curate.tag_language import LanguageConfig, LanguageTagger

    configs = {
        "baseline: lingua high accuracy, 45 langs": LanguageConfig(low_accuracy_min_chars=10**9),
        "ours: hybrid (high < 120 chars, low >= 120), 45 langs": LanguageConfig(),
        "lingua low accuracy only, 45 langs": LanguageConfig(low_accuracy_min_chars=0),
    }
    if all_languages:
        configs["baseline: lingua all 75 languages, high accuracy"] = LanguageConfig(
            languages=("all",), low_accuracy_min_chars=10**9)
    out = {}
    for name, cfg in configs.items():
        tagger = LanguageTagger(cfg)
        out[name] = timed(tagger.detect, texts, repeat, before=tagger._detect_cached.cache_clear)
    return out


def bench_pii(texts, repeat) -> dict:
    import phonenumbers

    from curate.tag_pii import KINDS, PIIConfig, PIIRedactor, find_addresses, find_cards, find_emails, find_ips, \
        find_names, find_phones, find_secrets

    regions = PIIConfig().phone_regions

    def matcher_baseline(text: str):
        for region in regions:
            list(phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID))

    redactor = PIIRedactor()
    out = {
        "baseline: PhoneNumberMatcher x10 regions (phones only)": timed(matcher_baseline, texts, repeat),
        "ours: phones only": timed(find_phones, texts, repeat),
        f"ours: full redactor ({len(KINDS)} kinds)": timed(redactor.redact_text, texts, repeat),
    }
    for name, fn in (("email", find_emails), ("ip", find_ips), ("credit_card", find_cards), ("secret", find_secrets),
                     ("address", find_addresses), ("name", find_names)):
        out[f"ours: {name} only"] = timed(fn, texts, repeat)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--all-languages", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    texts = load_messages()
    report = {
        "messages": len(texts), "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
        "language": bench_language(texts, args.repeat, args.all_languages),
        "pii": bench_pii(texts, args.repeat),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['messages']} distinct messages, mean {report['mean_chars']} chars, repeat {args.repeat} (median)")
    for section in ("language", "pii"):
        print(f"\n## {section}")
        print(f"{'configuration':<58} {'msgs/s':>9} {'chars/s':>10} {'first pass s':>12}")
        base = None
        for name, r in report[section].items():
            base = base or r["msgs_per_s"]
            print(f"{name:<58} {r['msgs_per_s']:>9.1f} {r['chars_per_s']:>10} {r['first_pass_s']:>12} "
                  f"({r['msgs_per_s'] / base:.2f}x baseline)")


if __name__ == "__main__":
    main()
