"""`decontam rephrase`: rephrased copies of a benchmark, to measure a detector with.

This is how the paper built its test cases: paraphrase a question, translate it, or
re-implement a program in another language, keeping what it asks. Output rows align
with the input (row i rephrases item i); a failed row has an empty `text`, as in the
reference tool's files.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curate.core.atomic import atomic_path
from decontam.benchmarks import Benchmark
from decontam.errors import DecontamError

logger = logging.getLogger(__name__)

REPHRASE_VERSION = "v1"

_STYLES = {
    "paraphrase": (
        "Rewrite the text below so that it asks exactly the same thing with the same answer, "
        "but in different words and a different sentence order. Keep every number, name and "
        "answer option. Reply with the rewritten text only."
    ),
    "translate": (
        "Translate the text below into {lang}. Keep its meaning, numbers and answer options. "
        "Reply with the translation only."
    ),
    "code": (
        "Re-implement the program below in {lang}: same behaviour, inputs and outputs, with new "
        "identifier names and your own structure. Reply with the code only."
    ),
    "restructure": (
        "Rewrite the program below in the same language with different identifier names, a "
        "different docstring wording and a different but equivalent implementation. Reply with "
        "the code only."
    ),
}

_FENCE = re.compile(r"^```[\w+-]*\n(.*?)\n?```\s*$", re.DOTALL)


def parse_style(style: str) -> tuple[str, str | None]:
    """`paraphrase`, `restructure`, `translate:Chinese`, `code:C` -> (kind, language)."""
    kind, _, lang = style.partition(":")
    if kind not in _STYLES:
        raise DecontamError(f"unknown rephrase style {style!r}; use paraphrase, restructure, translate:LANG or code:LANG")
    if kind in ("translate", "code") and not lang:
        raise DecontamError(f"style {kind} needs a language, e.g. {kind}:{'Chinese' if kind == 'translate' else 'C'}")
    return kind, lang or None


def rephrase_requests(texts: Sequence[str], style: str, *, temperature: float = 0.7, max_tokens: int = 1024) -> list[Any]:
    from curate.models.llm import ChatRequest

    kind, lang = parse_style(style)
    instruction = _STYLES[kind].format(lang=lang)
    return [
        ChatRequest(
            messages=[
                {"role": "system", "content": instruction},
                {"role": "user", "content": text},
            ],
            max_tokens=max_tokens,
            temperature=temperature,
            seed=0,
        )
        for text in texts
    ]


def clean_output(text: str | None) -> str:
    if not text:
        return ""
    text = text.strip()
    m = _FENCE.match(text)
    return m.group(1).strip() if m else text


def rephrase_benchmark(bench: Benchmark, client: Any, style: str, out_path: str | Path, **kwargs: Any) -> dict[str, int]:
    """Write `out_path` (JSONL: id, text, original, style) with one rephrasing per item."""
    reqs = rephrase_requests(bench.texts, style, **kwargs)
    results = client.chat_many(reqs)
    out = Path(out_path)
    failed = 0
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for item_id, original, res in zip(bench.ids, bench.texts, results):
            text = "" if res.error else clean_output(res.text)
            failed += not text
            fh.write(json.dumps({"id": item_id, "text": text, "original": original, "style": style,
                                 "model": res.model, "version": REPHRASE_VERSION}, ensure_ascii=False) + "\n")
    return {"total": len(bench), "written": len(bench) - failed, "failed": failed}
