"""The report of a check: Markdown for people, JSON for machines."""

from __future__ import annotations

import json
from pathlib import Path

from decontam.check import CheckResult

_STAGE_ROWS = (
    ("ngram_items", "items with a shared n-gram"),
    ("candidates", "embedding candidates (top-k pairs)"),
    ("above_high", "cosine above the cascade's high mark (flagged, no judge)"),
    ("below_floor", "cosine below the cascade's floor (cleared, no judge)"),
    ("band", "in the band between"),
    ("judge_calls", "judge calls made"),
    ("judge_cached", "judge verdicts from the cache"),
    ("judge_calls_saved", "judge calls saved (cascade marks, and the verifier's sure pairs)"),
    ("judge_errors", "judge errors (embedding decision kept)"),
    ("judge_true", "judge answered True"),
    ("judge_overrides", "calibrated judge overrode the embedding decision"),
    ("flagged_ngram", "pairs flagged by n-gram"),
    ("flagged_embedding_high", "pairs flagged by high cosine"),
    ("flagged_embedding", "pairs flagged by the cosine threshold"),
    ("closer_to_other_item", "above the threshold but left to a closer benchmark item"),
    ("verifier_pairs", "pairs the verifier decided"),
    ("verifier_uncertain", "of which in its uncertain band (judge asked when served)"),
    ("flagged_verifier", "pairs flagged by the verifier"),
    ("verifier_attributed_elsewhere", "flagged for another item the verifier was surer of"),
    ("generic_items", "generic items (stricter cut)"),
    ("flagged_judge", "pairs flagged by the calibrated judge"),
)


def to_json(result: CheckResult) -> str:
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str)


def to_markdown(result: CheckResult, *, max_pairs: int = 50, max_text: int = 300) -> str:
    lines = [
        f"# Contamination report (run {result.run_id})",
        "",
        f"Training side: `{result.train_source}`, {result.train_rows} texts. "
        f"Judge: {result.judge_model or 'none'} (prompt {result.prompt_version}).",
        "",
        "| benchmark | items | contaminated | rate | cosine cut | judge calibrated |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for b in result.benchmarks:
        cut = "-" if b.cosine_threshold is None else f"{b.cosine_threshold:.2f}"
        lines.append(
            f"| {b.name} | {b.size} | {b.contaminated_items} | {b.rate:.2%} | {cut} | "
            f"{'yes' if b.judge_calibrated else 'no'} |"
        )
    lines += ["", "## Per-stage counts", "", "| stage | " + " | ".join(b.name for b in result.benchmarks) + " |",
              "|---|" + "---:|" * len(result.benchmarks)]
    for key, label in _STAGE_ROWS:
        lines.append(f"| {label} | " + " | ".join(str(b.counts.get(key, 0)) for b in result.benchmarks) + " |")
    for b in result.benchmarks:
        if b.verifier:
            v = b.verifier
            lines += ["", f"Verifier ({b.name}): flags at p >= {v['threshold']:.2f} ({v['strict_threshold']:.2f} for generic "
                      f"items); uncertain band {v['band'][0]:.2f}-{v['band'][1]:.2f}."]
        if b.generic_items:
            shown = ", ".join(f"`{x}`" for x in b.generic_items[:30])
            more = f" and {len(b.generic_items) - 30} more" if len(b.generic_items) > 30 else ""
            lines += ["", f"Generic items in {b.name} (short or common requests, stricter cut): {shown}{more}"]
    for b in result.benchmarks:
        lines += ["", f"## Flagged pairs: {b.name} ({len(b.flagged)})", ""]
        for p in b.flagged[:max_pairs]:
            evidence = [f"decided by **{p.decided_by}**"]
            if p.cosine is not None:
                evidence.append(f"cosine {p.cosine:.3f}")
            if p.probability is not None:
                who = "multilingual channel" if p.decided_by == "multilingual" and not p.reason else "verifier"
                evidence.append(f"{who} p={p.probability:.2f}" + (f" ({p.reason})" if p.reason else ""))
            if p.ngram_shared:
                evidence.append(f"{p.ngram_shared} shared n-grams, e.g. `{_short(p.ngram_examples[0], 80)}`")
            if p.verdict:
                m = p.verdict.get("margin")
                why = p.verdict.get("reason")
                evidence.append(
                    (f"judge {p.verdict.get('label')} (margin {m:.2f})" if m is not None else f"judge {p.verdict.get('label')}")
                    + (f': "{_short(why, 160)}"' if why else "")
                )
                evidence.append(f"model {p.verdict.get('model')}, prompt {p.verdict.get('prompt_version')}")
            lines += [
                f"- `{p.test_id}` ↔ training row `{p.train_id}`: " + "; ".join(evidence),
                f"  - test: {_quote(p.test_text, max_text)}",
                f"  - train: {_quote(p.train_text, max_text)}",
            ]
        if len(b.flagged) > max_pairs:
            lines.append(f"- ... {len(b.flagged) - max_pairs} more in the JSON report")
    t = result.timings_s
    lines += ["", "Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()), ""]
    return "\n".join(lines)


def write_reports(result: CheckResult, out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "decontam_report.md", out / "decontam_report.json"
    md.write_text(to_markdown(result), encoding="utf-8")
    js.write_text(to_json(result), encoding="utf-8")
    return md, js


def _short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _quote(text: str, n: int) -> str:
    return "`" + _short(text, n).replace("`", "'") + "`"
