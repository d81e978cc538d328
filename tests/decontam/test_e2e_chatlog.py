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


def test_explain_errors_names_the_evidence_that_keeps_a_rephrasing_out():
    """--explain: for a missed row, the verifier's probability for the labelled item and how far
    each group of evidence moves it; numbers that differ are the group that matters here."""
    from types import SimpleNamespace

    import numpy as np

    import benchmarks.eval_decontam_e2e as e2e
    from curate.models.verify import Verifier

    class Same:  # every text on one vector: both cosines 1, only the lexical evidence differs
        model_id = "same"

        def embed(self, texts):
            return np.ones((len(texts), 4), np.float32)

    item = "Set a timer for 15 minutes and remind me to stretch."
    bench = SimpleNamespace(name="b", ids=["1"], texts=[item])
    rows = [{"id": "r1", "text": "Set a timer for 45 minutes and remind me to stretch."},
            {"id": "r2", "text": "What is the capital of France?"}]
    errors = [{"id": "r1", "outcome": "missed", "label": "b:1", "flagged_for": []},
              {"id": "r2", "outcome": "flagged", "label": "", "flagged_for": ["b:1"]},
              {"id": "r2", "outcome": "missed", "label": "b:unknown", "flagged_for": []}]
    out = e2e.explain_errors(errors, rows, [bench], verifier=Verifier("decontam", full_embedder=Same(), multi_embedder=Same()))
    assert [(x["id"], x["item"], x["outcome"]) for x in out] == [("r1", "b:1", "missed"), ("r2", "b:1", "flagged")]
    twin = out[0]
    assert "numbers 15 vs 45" in twin["reason"]
    moved = twin["probability_if_favourable"]
    assert set(moved) == set(e2e.EVIDENCE_GROUPS)
    # the only difference is a number: taking it away raises the probability, the cosines are already 1
    assert moved["what differs (numbers, names, identifiers)"] > twin["probability"] + 0.2
    assert moved["embedding cosines"] == twin["probability"]
