import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from decontam.benchmarks import load_benchmark, registry
from decontam.errors import BenchmarkError


def test_humaneval_loads_offline_from_the_package():
    b = load_benchmark("humaneval")
    assert len(b) == 164 and b.data_type == "code" and b.ids[0] == "HumanEval/0"
    assert "def has_close_elements" in b.texts[0] and "return False" in b.texts[0]


def test_hub_benchmark_offline_names_the_fix(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BenchmarkError, match="--benchmark FILE.jsonl --text-field"):
        load_benchmark("gsm8k")


def test_unknown_name_lists_known_ones():
    with pytest.raises(BenchmarkError, match="humaneval"):
        load_benchmark("no-such-bench")
    assert "mmlu" in registry() and "humaneval" in registry()


def test_local_jsonl_csv_parquet_with_field_template_and_type(tmp_path):
    rows = [{"qid": "a", "question": "What is 2+2?", "answer": "4"}, {"qid": "b", "question": "Capital of France?", "answer": "Paris"}]
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "b.csv").write_text("qid,question,answer\na,What is 2+2?,4\nb,Capital of France?,Paris\n")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "b.parquet")
    for name in ("b.jsonl", "b.csv", "b.parquet"):
        b = load_benchmark(str(tmp_path / name), id_field="qid", data_type="math")
        assert b.texts == ("What is 2+2?", "Capital of France?") and b.ids == ("a", "b") and b.data_type == "math"
    t = load_benchmark(str(tmp_path / "b.jsonl"), template="Q: {question}\nA: {answer}", limit=1)
    assert t.texts == ("Q: What is 2+2?\nA: 4",) and t.name == "b"


def test_local_file_errors_are_clear(tmp_path):
    (tmp_path / "x.jsonl").write_text(json.dumps({"foo": 1}) + "\n")
    with pytest.raises(BenchmarkError, match="--text-field"):
        load_benchmark(str(tmp_path / "x.jsonl"))
    with pytest.raises(BenchmarkError, match="missing columns"):
        load_benchmark(str(tmp_path / "x.jsonl"), template="{nope}")
