import pytest

from decontam.calibrate import Calibration, auc, fit_threshold
from decontam.errors import CalibrationError


def test_fit_threshold_separable_and_noisy():
    assert fit_threshold([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == (0.5, 1.0)
    cut, f1 = fit_threshold([1, 2, 3, 4, 5, 6], [False, True, False, True, True, True])
    assert 1 < cut <= 2 and f1 == pytest.approx(2 * 4 / (5 + 4))


def test_fit_threshold_needs_both_classes():
    with pytest.raises(CalibrationError):
        fit_threshold([0.1, 0.2], [True, True])


def test_auc():
    assert auc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert auc([0.5, 0.5], [True, False]) == 0.5


def test_calibration_applies_only_to_its_judge_model(tmp_path):
    cal = Calibration(judge_model="qwen", margin_cuts={"*": 1.5, "code": 2.0}, cosine_cut=0.6)
    assert cal.margin_cut("code", "qwen") == 2.0
    assert cal.margin_cut("knowledge", "qwen") == 1.5
    assert cal.margin_cut("code", "other-model") is None
    cal.save(tmp_path / "cal.json")
    assert Calibration.load(tmp_path / "cal.json") == cal


def test_broken_calibration_file_is_a_clear_error(tmp_path):
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(CalibrationError, match="decontam calibrate"):
        Calibration.load(tmp_path / "bad.json")
    with pytest.raises(CalibrationError):
        Calibration.load(tmp_path / "missing.json")


def test_fit_logistic_separates_two_signals():
    from decontam.calibrate import fit_logistic

    # positives have a high cosine OR a high margin; negatives neither
    feats = [[0.9, -1.0], [0.2, 3.0], [0.8, 0.5], [0.1, -2.0], [0.3, -1.0], [0.2, -0.5]]
    labels = [True, True, True, False, False, False]
    w = fit_logistic(feats, labels, l2=1e-3)
    scores = [w[0] * c + w[1] * m + w[2] for c, m in feats]
    assert min(scores[:3]) > max(scores[3:]) and w[0] > 0 and w[1] > 0


def test_fused_decision_only_for_its_judge():
    cal = Calibration(judge_model="qwen", margin_cuts={"*": 0.0}, fused=[10.0, 1.0, -5.0, 0.0])
    assert cal.fused_says(0.9, -1.0, "qwen") is True
    assert cal.fused_says(0.1, 1.0, "qwen") is False
    assert cal.fused_says(0.9, 3.0, "other") is None


def test_fit_calibration_with_a_judge(tmp_path):
    from decontam.calibrate import fit_calibration
    from decontam.judge import LLMJudge
    from decontam.testbed import LabelledPair
    from tests.decontam.fakes import BagOfWordsEmbedder, ScriptedClient, same_if_shared_word

    pairs = []
    for i in range(30):
        pairs.append(LabelledPair("toy_english", f"same topic{i} alpha beta", f"same topic{i} alpha gamma", True, "knowledge", i))
        pairs.append(LabelledPair("toy_english", f"unrelated{i} delta", f"other{i} epsilon", False, "knowledge", i))
    judge = LLMJudge(ScriptedClient(same_if_shared_word("same")), model="fake-judge")
    cal = fit_calibration(pairs, judge=judge, embedder=BagOfWordsEmbedder())
    assert cal.judge_model == "fake-judge" and cal.embed_model == "fake-bow"
    assert cal.margin_cut("knowledge", "fake-judge") is not None and cal.fused is not None
    assert cal.quality["margin_f1"] == 1.0 and cal.fitted_on["pairs"] == 60
    cal.save(tmp_path / "cal.json")
    assert Calibration.load(tmp_path / "cal.json").fused == cal.fused


def test_a_judge_no_better_than_chance_stays_advisory():
    from decontam.calibrate import fit_calibration
    from decontam.judge import LLMJudge
    from decontam.testbed import LabelledPair
    from tests.decontam.fakes import BagOfWordsEmbedder, ScriptedClient, same_if_shared_word

    pairs = []
    for i in range(30):  # the judge says True exactly on the negatives: AUC 0
        pairs.append(LabelledPair("toy_english", f"same topic{i} alpha beta", f"same topic{i} alpha gamma", True, "knowledge", i))
        pairs.append(LabelledPair("toy_english", f"bogus{i} delta", f"bogus{i} epsilon", False, "knowledge", i))
    judge = LLMJudge(ScriptedClient(same_if_shared_word("bogus")), model="fake-judge")
    cal = fit_calibration(pairs, judge=judge, embedder=BagOfWordsEmbedder())
    assert cal.quality["margin_auc"] < 0.6 and cal.quality["judge_advisory"] == 1.0
    assert cal.margin_cut("knowledge", "fake-judge") is None and cal.fused is None
