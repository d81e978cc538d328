"""The judge's verdict record (committed data): read before the server is asked, and a
calibration refit from it is deterministic."""

import random

import pytest

from benchmarks.eval_judge_band import band_jobs, fit_from_record, judge_jobs
from decontam.errors import JudgeError
from decontam.judge import LLMJudge, VerdictRecord, text_sha256
from tests.decontam.fakes import ScriptedClient


def _answer(req):
    """True (margin grows with the shared words) when both texts share the word 'same'."""
    user = req.messages[-1]["content"]
    a = user.split("<text_a>")[1].split("</text_a>")[0]
    b = user.split("<text_b>")[1].split("</text_b>")[0]
    m = 1.0 + len(set(a.split()) & set(b.split())) / 10
    same = "same" in a and "same" in b
    return ("True" if same else "False"), [{"True": 0.0, "False": -m} if same else {"False": 0.0, "True": -m}]


def _data(n=24):
    """A pairs.json-like split: half positives; probabilities spread over and around the band."""
    rows = []
    for k in range(n):
        label = k % 2 == 0
        b = f"item {k} {'same' if label == (k % 6 != 0) else 'other'} words {k % 5}"
        rows.append({"part": "pos" if label else "nn", "a": f"item {k} same words", "b": b, "label": label,
                     "item": k, "prob": round(0.1 + 0.8 * ((k * 7) % n) / n, 6), "key": None})
    for r in rows:
        r["in_band"] = 0.3 <= r["prob"] < 0.6
    return {"verifier": {"threshold": 0.45, "band": [0.3, 0.6], "sha256": "x" * 64},
            "splits": {"calibration": {"humaneval_python": {"items": list(range(n)), "data_type": "code", "rows": rows}}}}


def test_the_record_is_read_before_the_server_is_asked(tmp_path):
    data = _data()
    jobs = band_jobs(data, "calibration", None, prob_range=(0.0, 1.0))
    assert len(jobs) == 24  # the whole range, band pairs first
    rec = VerdictRecord(tmp_path / "m.jsonl")
    first = LLMJudge(ScriptedClient(_answer, model="m"), model="m", max_tokens=1)
    counts = judge_jobs(jobs[:10], first, rec, per_round=3)
    assert counts == {"pairs": 10, "recorded": 0, "asked": 10, "errors": 0} and first.client.calls == 10
    # a fresh run (the record reloaded from disk) asks only about the 14 pairs it lacks
    rec2 = VerdictRecord(tmp_path / "m.jsonl")
    assert len(rec2) == 10
    client = ScriptedClient(_answer, model="m")
    counts = judge_jobs(jobs, LLMJudge(client, model="m", max_tokens=1), rec2, per_round=3)
    assert counts["recorded"] == 10 and counts["asked"] == client.calls == 14
    asked = {r.messages[-1]["content"].split("<text_a>")[1].split("</text_a>")[0].strip() for r in client.requests}
    assert asked == {a for _, _, a, _ in jobs[10:]}
    # and another model's or another reply length's verdicts are not this judge's
    other = ScriptedClient(_answer, model="m")
    judge_jobs(jobs[:4], LLMJudge(other, model="m", max_tokens=40), VerdictRecord(tmp_path / "m.jsonl"), per_round=3)
    assert other.calls == 4
    # the record names texts by hash only
    text = (tmp_path / "m.jsonl").read_text()
    assert "item 0" not in text and text_sha256(jobs[0][2]) in text


def test_a_refit_from_the_record_is_deterministic(tmp_path):
    data = _data()
    jobs = band_jobs(data, "calibration", None, prob_range=(0.0, 1.0))
    rec = VerdictRecord(tmp_path / "a.jsonl")
    judge_jobs(jobs, LLMJudge(ScriptedClient(_answer, model="m"), model="m", max_tokens=1), rec, per_round=2)
    # the same verdicts recorded in another order give the same bytes
    shuffled = list(jobs)
    random.Random(1).shuffle(shuffled)
    rec_b = VerdictRecord(tmp_path / "b.jsonl")
    judge_jobs(shuffled, LLMJudge(ScriptedClient(_answer, model="m"), model="m", max_tokens=1), rec_b, per_round=5)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    cals = []
    for name in ("a", "b"):
        cal = fit_from_record(data, VerdictRecord(tmp_path / f"{name}.jsonl"), "m", 1)
        cal.save(tmp_path / f"cal_{name}.json")
        cals.append(cal)
    assert (tmp_path / "cal_a.json").read_bytes() == (tmp_path / "cal_b.json").read_bytes()
    # fitted on the band pairs only, with the band and the record's figures written down
    n_band = sum(r["in_band"] for r in data["splits"]["calibration"]["humaneval_python"]["rows"])
    assert cals[0].fitted_on["judged"] == n_band and cals[0].band == [0.3, 0.6]
    assert cals[0].fitted_on["verifier_sha256"] == "x" * 64
    # a verifier refit that moves the band refits from the same record, with no server
    for r in data["splits"]["calibration"]["humaneval_python"]["rows"]:
        r["in_band"] = 0.2 <= r["prob"] < 0.7
    data["verifier"]["band"] = [0.2, 0.7]
    moved = fit_from_record(data, VerdictRecord(tmp_path / "a.jsonl"), "m", 1)
    assert moved.band == [0.2, 0.7] and moved.fitted_on["judged"] > n_band


def test_errors_are_not_recorded_and_a_bad_line_is_a_clear_error(tmp_path):
    rec = VerdictRecord(tmp_path / "r.jsonl")
    ident = rec.identity("m", "code", "ab", "x", "y", 6000, 1)
    rec.put(ident, {"label": "error", "margin": None})
    assert len(rec) == 0 and rec.get(ident) is None
    rec.put(ident, {"label": "true", "margin": 1.5, "answer": "True"})
    assert VerdictRecord(tmp_path / "r.jsonl").get(ident)["margin"] == 1.5
    (tmp_path / "bad.jsonl").write_text('{"model": "m"}\n')
    with pytest.raises(JudgeError, match="bad.jsonl:1"):
        VerdictRecord(tmp_path / "bad.jsonl")
