"""decontam check end to end on a slice of tests/data/decontam_e2e.jsonl (benchmarks/eval_decontam_e2e.py).

Floors the current default meets; the full figures are in docs/decontam.md.
"""

import json

import pytest

from tests.conftest import needs_testbed


def test_e2e_set_is_deterministic_and_labelled(monkeypatch):
    import tests.data.make_decontam_e2e as make

    monkeypatch.setattr(make, "MT_BENCH", needs_testbed("fastchat", "mt_bench", "question.jsonl"))
    rows = make.build()
    assert [json.loads(line) for line in make.OUT.read_text(encoding="utf-8").splitlines()] == rows
    kinds = {r["kind"] for r in rows}
    assert kinds == {"unrelated", "verbatim", "rephrase", "rephrase_hard", "translation", "lookalike"}
    assert all((r["label"] == "") == (r["kind"] == "unrelated") for r in rows)
    assert len({r["text"] for r in rows}) == len(rows)


@pytest.mark.slow
def test_default_check_on_chatlog_slice(monkeypatch):
    import benchmarks.eval_decontam_e2e as e2e

    monkeypatch.setattr(e2e, "MT_BENCH", needs_testbed("fastchat", "mt_bench", "question.jsonl"))
    rows = e2e.load_rows(per_kind=4)
    report = e2e.evaluate(rows, ("default",), warm_up=False)
    per_kind = report["configs"]["default"]["per_kind"]
    assert per_kind["verbatim"]["found"] == per_kind["verbatim"]["rows"] == 4
    assert per_kind["unrelated"].get("flagged", 0) == 0
    assert per_kind["rephrase"].get("found", 0) >= 3
    assert per_kind["rephrase"].get("wrong_item", 0) == 0
