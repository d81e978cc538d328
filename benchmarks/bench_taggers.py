"""Messages/s of the language and PII taggers on this machine, against baselines run in the same process.

Messages: every distinct message of the demo logs, the two labelled sets in tests/data and,
when ../shared/testbed is present, MT-bench/Vicuna questions, GPT-4 reference answers and
FastChat's dummy conversations (deduplicated, so caches do not flatter the figures).
Each configuration is timed `--repeat` times, interleaved round by round, after a warm-up
pass that loads models (reported apart as `first pass`); the language tagger's per-text
cache is cleared before every pass. Wall-clock msgs/s and msgs per CPU-second of this
process are both printed: the machine is shared, so read ratios, and prefer the CPU column.

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


def timed_interleaved(fns: dict, texts: list[str], repeat: int, before: dict | None = None) -> dict:
    """Time each configuration `repeat` times, interleaving them round by round, so that
    load from other users of the machine falls on all of them alike. Reports wall time
    and this process's CPU time (steadier when the machine is shared)."""
    before = before or {}
    out = {name: {"wall": [], "cpu": []} for name in fns}
    for name, fn in fns.items():  # warm-up pass: loads models
        if name in before:
            before[name]()
        t0 = time.perf_counter()
        for t in texts:
            fn(t)
        out[name]["first_pass_s"] = round(time.perf_counter() - t0, 2)
    for _ in range(repeat):
        for name, fn in fns.items():
            if name in before:
                before[name]()
            w0, c0 = time.perf_counter(), time.process_time()
            for t in texts:
                fn(t)
            out[name]["wall"].append(time.perf_counter() - w0)
            out[name]["cpu"].append(time.process_time() - c0)
    n, chars = len(texts), sum(map(len, texts))
    result = {}
    for name, r in out.items():
        wall, cpu = statistics.median(r["wall"]), statistics.median(r["cpu"])
        result[name] = {"first_pass_s": r["first_pass_s"], "median_wall_s": round(wall, 3),
                        "median_cpu_s": round(cpu, 3), "msgs_per_s": round(n / wall, 1),
                        "msgs_per_cpu_s": round(n / max(cpu, 1e-9), 1), "chars_per_s": round(chars / wall)}
    return result


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
    taggers = {name: LanguageTagger(cfg) for name, cfg in configs.items()}
    return timed_interleaved({n: t.detect for n, t in taggers.items()}, texts, repeat,
                             before={n: t._detect_cached.cache_clear for n, t in taggers.items()})


def bench_pii(texts, repeat) -> dict:
    import phonenumbers

    from curate.tag_pii import KINDS, PIIConfig, PIIRedactor, find_addresses, find_cards, find_emails, find_ips, \
        find_names, find_phones, find_secrets

    regions = PIIConfig().phone_regions

    def matcher_baseline(text: str):
        for region in regions:
            list(phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID))

    redactor = PIIRedactor()
    fns = {
        "baseline: PhoneNumberMatcher x10 regions (phones only)": matcher_baseline,
        "ours: phones only": find_phones,
        f"ours: full redactor ({len(KINDS)} kinds)": redactor.redact_text,
    }
    for name, fn in (("email", find_emails), ("ip", find_ips), ("credit_card", find_cards), ("secret", find_secrets),
                     ("address", find_addresses), ("name", find_names)):
        fns[f"ours: {name} only"] = fn
    return timed_interleaved(fns, texts, repeat)


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
        print(f"{'configuration':<58} {'msgs/s':>9} {'msgs/cpu-s':>10} {'vs baseline':>11} {'first pass s':>12}")
        base = None
        for name, r in report[section].items():
            base = base or r["msgs_per_cpu_s"]
            print(f"{name:<58} {r['msgs_per_s']:>9.1f} {r['msgs_per_cpu_s']:>10.1f} "
                  f"{r['msgs_per_cpu_s'] / base:>10.2f}x {r['first_pass_s']:>12}")


if __name__ == "__main__":
    main()
