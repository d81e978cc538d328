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


def _run_model() -> str:
    """The model `make run` serves (the Makefile's RUN_MODEL)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    return re.search(r"^RUN_MODEL \?= (\S+)", text, re.MULTILINE).group(1)


def test_the_model_make_run_serves_has_a_band_calibration_for_the_current_prompt():
    # refit (a prompt change, another model): benchmarks/eval_judge_band.py judge/fit (docs/decontam.md)
    model = _run_model()
    cal = shipped(model)
    assert cal is not None and cal.judge_model == model and cal.prompt_version == PROMPT_VERSION
    assert cal.fitted_on["judged"] >= 60 and cal.band is not None
    assert cal.quality["margin_auc"] >= calibrate.MIN_JUDGE_AUC and cal.fused_verifier is not None
    # a clear answer decides a band pair either way
    assert cal.band_says(0.45, 8.0, model) is True and cal.band_says(0.45, -8.0, model) is False
    assert cal.band_says(0.45, 8.0, "another-model") is None


def test_run_check_applies_the_shipped_band_calibration(tmp_path, monkeypatch):
    import dataclasses

    from curate.models import verify
    from decontam.check import CheckConfig, run_check
    from decontam.judge import LLMJudge
    from tests.decontam.fakes import BagOfWordsEmbedder, ScriptedClient
    from tests.decontam.test_check import V_TEST, V_TRAIN, _bench

    # every candidate in the band (the shipped band holds none of these few pairs)
    model = verify.load_model("decontam")
    monkeypatch.setattr(verify, "load_model", lambda task: dataclasses.replace(model, band=[0.0, 1.01]))

    def answer(req):  # a judge sure that only the two dinner requests are the same item
        user = req.messages[-1]["content"]
        same = user.count("vegetarian") == 2
        return ("True" if same else "False"), [{"True": 0.0, "False": -8.0} if same else {"False": 0.0, "True": -8.0}]

    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"id": f"t{i}", "text": t}) + "\n" for i, t in enumerate(V_TRAIN)))
    judge = LLMJudge(ScriptedClient(answer, model=_run_model()), model=_run_model())
    config = CheckConfig(cache_dir=tmp_path / "cache", top_k=3, cascade_high=1.0, cascade_floor=0.0, use_ngram=False)
    [b] = run_check(str(path), [_bench("v", V_TEST)], config, embedder=BagOfWordsEmbedder(), judge=judge).benchmarks
    assert b.judge_calibrated
    assert {(p.test_index, p.train_id, p.decided_by) for p in b.flagged} == {(1, "t1", "judge")}


def test_the_shipped_band_calibration_was_fitted_on_the_shipped_verifier():
    # Fails when decontam.json is refitted and the judge's band calibration is not (it was stale
    # for three verifier refits once). Refit it from the committed verdict record, no server:
    #   benchmarks/eval_judge_band.py pairs (once), then fit --model <model> --max-tokens 1
    import hashlib
    from pathlib import Path

    from curate.models import verify
    from decontam.judge import VerdictRecord

    model = _run_model()
    cal = shipped(model)
    shipped_verifier = verify.MODEL_DIR / "decontam.json"
    assert cal.band == list(verify.load_model("decontam").band)
    assert cal.fitted_on["verifier_sha256"] == hashlib.sha256(shipped_verifier.read_bytes()).hexdigest()
    # ... and on the candidates a check sends: `pairs --k CheckConfig().top_k` (candidates 6-10
    # of a top_k 10 check have lower cosines than a top-5 fit ever saw)
    from decontam.check import CheckConfig

    assert cal.fitted_on["top_k"] == CheckConfig().top_k
    # the record it was fitted from ships too, and holds at least the pairs it was fitted on
    record = VerdictRecord(Path(__file__).resolve().parents[2] / cal.fitted_on["record"])
    assert len(record) >= cal.fitted_on["judged"]
