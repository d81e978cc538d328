"""Moderation quality: agreement of each tier with our labelled sets.

Sets (written by us, `tests/data/`): `moderation_eval.jsonl` (64 messages, the 11
categories x 4 plus 20 clean, 10 of them with trigger words) and
`moderation_heldout.jsonl` (33 messages, written after the rules and never used to
tune them). The keyword rules were written while looking at the eval set, so their
figures there are in-sample; the held-out set is the honest one. The embedding
classifier is trained on `moderation/exemplars.py`, disjoint from both sets.

Tier 2 rows (with --serve or --llm-url): the LLM alone on every message, and the
pipeline as it runs in the lake (tier 1 flags or sends to review, tier 2 judges the
reviewed ones; the final flag is tier 2's where it answered, else tier 1's).
An answer that failed validation counts as an error, never as a guess.

    python benchmarks/eval_moderation.py
    python benchmarks/eval_moderation.py --serve
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from moderation.evaluate import agreement, load_eval_set  # noqa: E402
from moderation.taxonomy import top_category  # noqa: E402

SETS = {"eval": REPO / "tests/data/moderation_eval.jsonl", "heldout": REPO / "tests/data/moderation_heldout.jsonl"}


def review_recall(rows, reviewed) -> float:
    harmful = [r for r in rows if r["label"] != "none"]
    return round(sum(rv for r, rv in zip(rows, reviewed) if r["label"] != "none") / len(harmful), 3)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--serve", action="store_true")
    p.add_argument("--llm-url")
    p.add_argument("--llm-model", default="smollm2")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--structured", default="response_format")
    args = p.parse_args(argv)

    from moderation.local import LocalConfig, LocalModerator

    table = Table(title="moderation agreement with labelled sets")
    for c in ("set", "tier", "n", "errors", "flag acc", "precision", "recall", "FP", "category agr", "sent to tier 2"):
        table.add_column(c, justify="left" if c in ("set", "tier") else "right")
    data = {name: load_eval_set(path) for name, path in SETS.items()}
    local_verdicts = {}
    for method in ("rules", "embedding", "hybrid"):
        mod = LocalModerator(LocalConfig(method=method))
        for name, rows in data.items():
            vs = mod.moderate([r["text"] for r in rows])
            if method == "hybrid":
                local_verdicts[name] = (mod, vs)
            a = agreement(rows, [(v["flagged"], top_category(v["category_scores"])[0]) for v in vs])
            table.add_row(name, f"tier 1 {method}", *_cells(a), f"{review_recall(rows, [mod.needs_review(v) for v in vs]):.0%}")

    if args.serve or args.llm_url:
        from curate.models.llm import ChatClient, Endpoint
        from moderation.llm_tier import LLMModerator, LLMTierConfig

        with contextlib.ExitStack() as stack:
            if args.llm_url:
                endpoint = Endpoint(args.llm_url, args.llm_model)
            else:
                from curate.models.serve_model import ModelServer

                endpoint = stack.enter_context(ModelServer()).endpoint
            llm = LLMModerator(ChatClient(endpoint, concurrency=args.concurrency, timeout_s=300),
                               LLMTierConfig(structured=args.structured))
            for name, rows in data.items():
                js = llm.judge([r["text"] for r in rows])
                a = agreement(rows, [(j.flagged, j.category) if j.ok else (None, None) for j in js])
                table.add_row(name, f"tier 2 alone ({endpoint.model})", *_cells(a), "")
                mod, vs = local_verdicts[name]
                final = []
                for v, j in zip(vs, js):
                    if mod.needs_review(v) and j.ok:
                        final.append((j.flagged, j.category))
                    else:
                        final.append((v["flagged"], top_category(v["category_scores"])[0]))
                a = agreement(rows, final)
                table.add_row(name, "pipeline: hybrid -> tier 2", *_cells(a), "")
    Console(width=160).print(table)


def _cells(a: dict) -> list[str]:
    def f(x):
        return "-" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)

    return [f(a[k]) for k in ("n", "errors", "flag_accuracy", "precision", "recall", "false_positives",
                              "category_agreement")]


if __name__ == "__main__":
    main()
