"""The judge on the pair verifier's uncertain band: its calibration (a fusion of the verifier's
probability and the judge's margin), how `run_check` applies it, and the shipped one."""

import json

import pytest

from decontam import calibrate
from decontam.calibrate import Calibration, fit_band_calibration
from decontam.check import CheckConfig, run_check
from decontam.errors import CalibrationError, JudgeError
from decontam.judge import LLMJudge, VerdictCache
from tests.decontam.fakes import BagOfWordsEmbedder, ScriptedClient, same_if_shared_word
from tests.decontam.test_check import V_TEST, V_TRAIN, _bench


def test_band_fusion_reads_probability_and_margin_only_for_its_judge():
    cal = Calibration(judge_model="q", fused_verifier=[2.0, 1.0, 0.0, 0.0])
    assert cal.band_says(0.5, 0.5, "q") is True  # logit 0, margin +.5
    assert cal.band_says(0.5, -0.5, "q") is False
    assert cal.band_says(0.9, -0.5, "q") is True  # a confident verifier outweighs a weak "no"
    assert cal.band_says(0.5, 0.5, "other") is None
    assert Calibration(judge_model="q").band_says(0.5, 3.0, "q") is None


def _examples(n=60, noise=False):
    out = []
    for k in range(n):
        label = k % 2 == 0
        margin = (k % 7) - 3.0 if noise else (2.0 + k % 3 if label else -2.0 - k % 3)
        out.append({"prob": 0.3 + 0.3 * ((k * 7) % 10) / 10, "margin": margin, "label": label, "data_type": "code"})
    out.append({"prob": 0.4, "margin": None, "label": True, "data_type": "code", "error": True})  # unanswered: not fitted
    return out


def test_fit_band_calibration_learns_the_margin_and_records_the_band():
    cal = fit_band_calibration(_examples(), judge_model="q", band=[0.27, 0.62])
    assert cal.fused_verifier is not None and cal.band == [0.27, 0.62]
    assert cal.quality["margin_auc"] == 1.0 and cal.quality["fused_f1"] == 1.0
    assert cal.fitted_on["judged"] == 60 and cal.fitted_on["pairs"] == 61
    assert cal.band_says(0.4, 3.0, "q") and not cal.band_says(0.4, -3.0, "q")


def test_a_judge_no_better_than_chance_on_the_band_stays_advisory():
    cal = fit_band_calibration(_examples(noise=True), judge_model="q", band=[0.27, 0.62])
    assert cal.quality["margin_auc"] < calibrate.MIN_JUDGE_AUC
    assert cal.fused_verifier is None and cal.band_says(0.5, 5.0, "q") is None


def test_fit_band_calibration_needs_both_labels():
    with pytest.raises(CalibrationError):
        fit_band_calibration([{"prob": 0.4, "margin": 1.0, "label": True, "data_type": "code"}], judge_model="q", band=[0, 1])


def _v_train(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"id": f"t{i}", "text": t}) + "\n" for i, t in enumerate(V_TRAIN)))
    return path


@pytest.fixture
def wide_band(monkeypatch):
    """The shipped decontam model with its uncertain band widened to every probability, so that
    every candidate goes to the judge (the shipped band holds none of these few pairs)."""
    import dataclasses

    from curate.models import verify

    shipped_model = verify.load_model("decontam")
    monkeypatch.setattr(verify, "load_model", lambda task: dataclasses.replace(shipped_model, band=[0.0, 1.01]))


def _v_check(tmp_path, cal, model="fake-judge"):
    client = ScriptedClient(same_if_shared_word("vegetarian"))
    judge = LLMJudge(client, model=model)
    config = CheckConfig(cache_dir=tmp_path / "cache", top_k=3, cascade_high=1.0, cascade_floor=0.0, use_ngram=False,
                         calibration=cal)
    res = run_check(str(_v_train(tmp_path)), [_bench("v", V_TEST)], config, embedder=BagOfWordsEmbedder(), judge=judge)
    return res.benchmarks[0], client


def test_band_calibration_lets_the_judge_decide_the_verifier_band(tmp_path, wide_band):
    # margin only (w_p 0): the scripted judge says True (+3) only where both texts mention
    # "vegetarian": the template twin the verifier clears, not the typo copy it flags
    b, client = _v_check(tmp_path, Calibration(judge_model="fake-judge", fused_verifier=[0.0, 1.0, 0.0, 0.0]))
    assert client.calls == b.counts["judge_calls"] == b.counts["verifier_uncertain"] == b.counts["verifier_pairs"] > 0
    assert b.judge_calibrated and b.counts["judge_calls_saved"] == 0
    assert {(p.test_index, p.train_id, p.decided_by) for p in b.flagged} == {(1, "t1", "judge")}
    assert b.flagged[0].verdict["label"] == "true" and b.counts["judge_overrides"] >= 2  # t1 flagged, t0 cleared
    # the same run with a fusion for another judge model: the judge is advisory, the verifier decides
    (tmp_path / "other").mkdir()
    b2, _ = _v_check(tmp_path / "other", Calibration(judge_model="someone-else", fused_verifier=[0.0, 1.0, 0.0, 0.0]))
    assert not b2.judge_calibrated
    assert {(p.test_index, p.train_id, p.decided_by) for p in b2.flagged} == {(0, "t0", "verifier"), (2, "t2", "verifier")}


def test_run_check_uses_the_calibration_shipped_for_the_judge_model(tmp_path, monkeypatch, wide_band):
    monkeypatch.setattr(calibrate, "SHIPPED_DIR", tmp_path / "cals")
    (tmp_path / "cals").mkdir()
    Calibration(judge_model="fake-judge", fused_verifier=[0.0, 1.0, 0.0, 0.0]).save(tmp_path / "cals" / "fake-judge.json")
    b, _ = _v_check(tmp_path, None)
    assert b.judge_calibrated and {(p.test_index, p.train_id, p.decided_by) for p in b.flagged} == {(1, "t1", "judge")}


def test_a_shorter_reply_keeps_the_margin_and_has_its_own_cache_key(tmp_path):
    cache = VerdictCache(tmp_path / "v.sqlite")
    client = ScriptedClient(same_if_shared_word("x"))
    short = LLMJudge(client, model="m", max_tokens=1, cache=cache)
    full = LLMJudge(client, model="m", cache=cache)
    assert short.cache_key("code", "ab", "a", "b") != full.cache_key("code", "ab", "a", "b")
    # the default reply length keeps the keys verdicts were cached under before
    assert full.cache_key("code", "ab", "a", "b") == VerdictCache.key("m", "code", "ab", "a", "b", 6000)
    from decontam.judge import JudgePair

    [v] = short.judge_many([JudgePair("x one", "x two", "code")])
    assert client.requests[-1].max_tokens == 1 and v.label == "true" and v.margin == pytest.approx(3.0)
    with pytest.raises(JudgeError):
        LLMJudge(client, model="m", max_tokens=0)


def test_a_higher_verifier_probability_never_lowers_the_band_score():
    # positives sit at the band's low end here, so a free fit would weight the probability negatively
    ex = [{"prob": 0.3 if k % 2 == 0 else 0.6, "margin": (2.0 if k % 2 == 0 else -2.0) + (k % 5) * 0.3 - 0.6,
           "label": k % 2 == 0, "data_type": "code"} for k in range(40)]
    cal = fit_band_calibration(ex, judge_model="q", band=[0.27, 0.62])
    assert cal.fused_verifier[0] == 0.0 and cal.quality["verifier_weight_dropped"] == 1.0
    assert cal.band_says(0.6, 3.0, "q") and not cal.band_says(0.6, -3.0, "q")


def test_the_paper_gpt4_column_names_sets_of_the_protocol():
    # eval_judge_band.report looks the GPT-4 figure up by set name; a key no set has (it was
    # "mmlu_us_history_*" for "mmlu_high_school_us_history_*") silently drops that column
    from benchmarks.eval_judge_band import PAPER_GPT4
    from decontam.testbed import CODE_LANGS, MMLU_SUBJECTS

    names = {f"humaneval_{lang}" for lang in CODE_LANGS}
    names |= {f"mmlu_{s}_{lang}" for s in MMLU_SUBJECTS for lang in ("english", "chinese")}
    assert set(PAPER_GPT4) == names


def test_leave_one_out_scores_each_pair_with_a_fit_that_never_saw_it():
    from benchmarks.eval_judge_band import leave_one_out

    assert "over 60 band pairs: F1 1.000 (code 1.000)" in leave_one_out(_examples(), "q", [0.27, 0.62], 0.5)
    # a positive whose margin says "no" is fitted right in-sample only if the cut bends to it;
    # held out, it is missed: F1 below 1
    bent = _examples() + [{"prob": 0.45, "margin": -4.0, "label": True, "data_type": "knowledge"}]
    text = leave_one_out(bent, "q", [0.27, 0.62], 0.5)
    assert "over 61 band pairs" in text and "F1 1.000 (" not in text and "knowledge 0.000" in text
