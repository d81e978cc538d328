"""The judge calibration that ships for the default served model (`curate serve-model`'s)."""

import json

from curate.models.fetch_model import DEFAULT_MODEL
from decontam import calibrate
from decontam.calibrate import Calibration, shipped
from decontam.prompts import PROMPT_VERSION


def test_the_default_served_judge_has_a_calibration_for_the_current_prompt():
    # fails when the prompt changes (PROMPT_VERSION bump) and nobody refits it:
    # benchmarks/fit_judge_calibration.py --judge-model smollm2
    cal = shipped(DEFAULT_MODEL)
    assert cal is not None and cal.prompt_version == PROMPT_VERSION and cal.judge_model == DEFAULT_MODEL
    # SmolLM2's margin ranked the calibration pairs no better than chance (AUC .45):
    # the calibration keeps it advisory, so it never overrides the verifier
    if cal.quality["margin_auc"] < calibrate.MIN_JUDGE_AUC:
        assert cal.margin_cut("code", DEFAULT_MODEL) is None and cal.fused is None
    else:
        assert cal.margin_cut("code", DEFAULT_MODEL) is not None
    assert cal.cosine_cut is None  # only the judge's part ships; the check keeps its own cosine cut
    assert cal.fitted_on["judged"] >= 100


def test_a_calibration_for_another_prompt_or_model_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setattr(calibrate, "SHIPPED_DIR", tmp_path)
    Calibration(judge_model="m", margin_cuts={"*": 0.5}).save(tmp_path / "m.json")
    assert shipped("m").margin_cut("knowledge", "m") == 0.5
    assert shipped("other") is None
    data = json.loads((tmp_path / "m.json").read_text())
    data["prompt_version"] = "v0"
    (tmp_path / "m.json").write_text(json.dumps(data))
    assert shipped("m") is None
