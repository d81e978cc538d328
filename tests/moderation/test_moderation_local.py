from pathlib import Path

import pytest

from curate.core.errors import ConfigError
from moderation.evaluate import agreement, category_match, load_eval_set
from moderation.local import LocalConfig, LocalModerator
from moderation.taxonomy import CATEGORIES, top_category, verdict

EVAL_SET = Path(__file__).resolve().parents[1] / "data" / "moderation_eval.jsonl"




def test_verdict_lifts_parent_and_flags_at_threshold():
    v = verdict({"hate/threatening": 0.8, "sexual": 0.49}, threshold=0.5)
    assert v["category_scores"]["hate"] == pytest.approx(0.8)  # a subcategory implies its parent
    assert v["categories"]["hate"] and v["categories"]["hate/threatening"]
    assert not v["categories"]["sexual"]
    assert v["flagged"]
    assert set(v["categories"]) == set(CATEGORIES) == set(v["category_scores"])
    assert not verdict({})["flagged"]


def test_top_category_prefers_the_subcategory_on_ties():
    v = verdict({"violence/graphic": 0.7})
    assert top_category(v["category_scores"]) == ("violence/graphic", pytest.approx(0.7))


@pytest.mark.parametrize(
    "kwargs",
    [{"method": "regex"}, {"threshold": 0.0}, {"threshold": 1.5}, {"band_low": 0.6}, {"max_chars": 0}],
)
def test_bad_local_config_fails_before_any_data(kwargs):
    with pytest.raises(ConfigError):
        LocalConfig(**kwargs)


def test_rules_flag_threats_and_leave_clean_text():
    mod = LocalModerator(LocalConfig(method="rules"))
    threat, clean, zombie, empty = mod.moderate(
        ["I will find where you live and hurt you.", "What is the capital of Australia?",
         "How do I kill a zombie process in Linux?", ""]
    )
    assert threat["flagged"] and threat["categories"]["harassment/threatening"]
    assert not clean["flagged"] and max(clean["category_scores"].values()) == 0.0
    assert not zombie["flagged"]
    assert not empty["flagged"]


def test_band_sends_uncertain_messages_to_review():
    mod = LocalModerator(LocalConfig(method="rules", band_low=0.25))
    weak, clean = mod.moderate(["There is so much blood in this film.", "Good morning!"])
    assert not weak["flagged"] and mod.needs_review(weak)
    assert not mod.needs_review(clean)


def test_long_messages_are_cut_before_scoring():
    mod = LocalModerator(LocalConfig(method="rules", max_chars=50))
    [v] = mod.moderate(["hello " * 20 + "I will find where you live and hurt you."])
    assert not v["flagged"]


def test_rules_agree_with_the_labelled_set():
    # In-sample for the rules (written alongside this set): a regression guard, not a quality claim.
    rows = load_eval_set(EVAL_SET)
    mod = LocalModerator(LocalConfig(method="rules"))
    preds = [(v["flagged"], top_category(v["category_scores"])[0]) for v in mod.moderate([r["text"] for r in rows])]
    got = agreement(rows, preds)
    assert got["n"] == len(rows) >= 60
    assert got["false_positives"] <= 2
    assert got["recall"] >= 0.9


def test_agreement_counts_errors_as_misses_not_guesses():
    rows = [{"label": "hate", "text": "x"}, {"label": "none", "text": "y"}, {"label": "violence", "text": "z"}]
    got = agreement(rows, [(True, "hate/threatening"), (False, None), (None, None)])
    assert got["errors"] == 1
    assert got["precision"] == 1.0 and got["recall"] == 1.0 and got["category_agreement"] == 1.0
    assert category_match("hate", "hate/threatening") and not category_match("hate", "violence")


@pytest.mark.slow
def test_hybrid_trains_the_embedding_classifier_and_keeps_rule_hits():
    rules = LocalModerator(LocalConfig(method="rules"))
    hybrid = LocalModerator(LocalConfig(method="hybrid"))
    texts = ["I'm standing on the roof and I'm going to jump tonight.", "Explain how TCP works."]
    r, h = rules.scores(texts), hybrid.scores(texts)
    for a, b in zip(r, h):
        assert all(b[c] >= a[c] for c in CATEGORIES)  # hybrid takes the max per category
    assert hybrid.moderate(texts)[0]["flagged"]
    assert not hybrid.moderate(texts)[1]["flagged"]
