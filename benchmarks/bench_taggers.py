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

- names (`pii_multilingual_names`, on the messages of the multilingual name and moderation
  sets): the redactor with names from cues only, as before issue #17, against cues + the
  given-name gazetteer and cues + gazetteer + French NER (the default).

Run: .venv/bin/python benchmarks/bench_taggers.py [--repeat 3] [--all-languages] [--pii-only] [--json]
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
    demo = REPO / "curate" / "ingest" / "demo_logs" / "openai_chats.jsonl"
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
    from curate.tag.language import LanguageConfig, LanguageTagger

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

    from curate.tag.pii import KINDS, PIIConfig, PIIRedactor, find_addresses, find_cards, find_emails, find_ips, \
        find_names, find_phones, find_secrets

    regions = PIIConfig().phone_regions

    def matcher_baseline(text: str):
        for region in regions:
            list(phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID))

    redactor = PIIRedactor()
    cues_only = PIIRedactor(PIIConfig(name_gazetteer=False, name_ner=False))
    no_ner = PIIRedactor(PIIConfig(name_ner=False))
    fns = {
        "baseline: PhoneNumberMatcher x10 regions (phones only)": matcher_baseline,
        "ours: phones only": find_phones,
        f"ours: full redactor ({len(KINDS)} kinds)": redactor.redact_text,
        "full redactor, names from cues only (before #17)": cues_only.redact_text,
        "full redactor, names cues + gazetteer, no NER": no_ner.redact_text,
    }
    for name, fn in (("email", find_emails), ("ip", find_ips), ("credit_card", find_cards), ("secret", find_secrets),
                     ("address", find_addresses), ("name", find_names)):
        fns[f"ours: {name} only"] = fn
    return timed_interleaved(fns, texts, repeat)


def multilingual_messages() -> list[str]:
    """The messages of the multilingual name and moderation sets (7-8 languages, 1/8 French)."""
    from eval_taggers_quality import DATA, read_jsonl

    texts = [m["content"] for it in read_jsonl(DATA / "names_eval.jsonl") for m in it["messages"]]
    texts += [it["text"] for it in read_jsonl(DATA / "moderation_multi_eval.jsonl")]
    return list(dict.fromkeys(texts))


def bench_pii_names(texts, repeat) -> dict:
    """Name finding on multilingual text: what the gazetteer and the French NER cost."""
    from curate.tag.pii import PIIConfig, PIIRedactor

    configs = {
        "baseline: full redactor, names from cues only (before #17)": PIIConfig(name_gazetteer=False, name_ner=False),
        "full redactor, cues + gazetteer": PIIConfig(name_ner=False),
        "full redactor, cues + gazetteer + French NER one text at a time": PIIConfig(),
        "full redactor, cues + gazetteer + French NER batched (default, as tag_batch)": PIIConfig(),
    }
    redactors = {n: PIIRedactor(c) for n, c in configs.items()}
    batched = list(configs)[-1]
    fns = {n: r.redact_text for n, r in redactors.items()}
    # the tagger's way: NER over a batch of up to 1000 conversations' messages, then per text
    chunks = [texts[i:i + 500] for i in range(0, len(texts), 500)]

    result = timed_interleaved({n: f for n, f in fns.items() if n != batched}, texts, repeat)
    redactor = redactors[batched]
    for chunk in chunks:  # warm-up (loads the model)
        redactor.prefetch_names(chunk)
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        for chunk in chunks:
            redactor.prefetch_names(chunk)
            for t in chunk:
                redactor.redact_text(t)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    result[batched] = {"first_pass_s": 0.0, "median_wall_s": round(wall, 3), "median_cpu_s": round(cpu, 3),
                       "msgs_per_s": round(len(texts) / wall, 1), "msgs_per_cpu_s": round(len(texts) / cpu, 1),
                       "chars_per_s": round(sum(map(len, texts)) / wall)}
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--all-languages", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--pii-only", action="store_true", help="skip the language tagger (slow to load)")
    args = ap.parse_args()
    texts = load_messages()
    report = {"messages": len(texts), "mean_chars": round(sum(map(len, texts)) / len(texts), 1)}
    if not args.pii_only:
        report["language"] = bench_language(texts, args.repeat, args.all_languages)
    report["pii"] = bench_pii(texts, args.repeat)
    multi = multilingual_messages()
    report["pii_multilingual_names"] = bench_pii_names(multi, args.repeat)
    report["multilingual_messages"] = len(multi)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['messages']} distinct messages, mean {report['mean_chars']} chars, repeat {args.repeat} (median)")
    for section in ("language", "pii", "pii_multilingual_names"):
        if section not in report:
            continue
        print(f"\n## {section}" + (f" ({report['multilingual_messages']} messages)" if section.endswith("names") else ""))
        print(f"{'configuration':<58} {'msgs/s':>9} {'msgs/cpu-s':>10} {'vs baseline':>11} {'first pass s':>12}")
        base = None
        for name, r in report[section].items():
            base = base or r["msgs_per_cpu_s"]
            print(f"{name:<58} {r['msgs_per_s']:>9.1f} {r['msgs_per_cpu_s']:>10.1f} "
                  f"{r['msgs_per_cpu_s'] / base:>10.2f}x {r['first_pass_s']:>12}")


if __name__ == "__main__":
    main()
