import json

import pytest

from curate.models.llm import ChatResult
from decontam.benchmarks import Benchmark
from decontam.errors import DecontamError
from decontam.rephrase import clean_output, parse_style, rephrase_benchmark


class EchoClient:
    def chat_many(self, reqs, on_result=None):
        out = []
        for r in reqs:
            text = r.messages[-1]["content"]
            out.append(ChatResult(text=None, top_logprobs=None, model="fake", error="boom") if "fail" in text
                       else ChatResult(text=f"```python\nREPHRASED {text}\n```", top_logprobs=None, model="fake"))
        return out


def test_styles():
    assert parse_style("translate:Chinese") == ("translate", "Chinese")
    assert parse_style("paraphrase") == ("paraphrase", None)
    with pytest.raises(DecontamError):
        parse_style("code")
    with pytest.raises(DecontamError):
        parse_style("poem")


def test_rows_align_and_failures_are_empty(tmp_path):
    bench = Benchmark(name="b", ids=("b/0", "b/1"), texts=("add two numbers", "please fail"), data_type="code", source="t")
    stats = rephrase_benchmark(bench, EchoClient(), "code:C", tmp_path / "out.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["b/0", "b/1"]
    assert rows[0]["text"] == "REPHRASED add two numbers" and rows[1]["text"] == ""
    assert stats == {"total": 2, "written": 1, "failed": 1}


def test_clean_output_strips_fences():
    assert clean_output("```c\nint x;\n```") == "int x;"
    assert clean_output(None) == ""
