"""The pair verifier: features, shipped models, the decision, the hard test set, decontam use."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from curate.models.verify import (
    FEATURES, TASKS, VerifierModel, Verifier, code_score, decide, explain, identifiers, language, load_model,
    model_matrix, number_values, numbers, pair_features, quantities, variant_evidence,
)

HARD = Path(__file__).resolve().parents[1] / "data" / "verify_hard.jsonl"


def test_what_differs_features():
    f = pair_features(
        ["Set a timer for 15 minutes", "def count_vowels(s): return 1", "Plan a trip to Lisbon"],
        ["Set a timer for 30 minutes", "def count_words(s): return 1", "Plan a trip to Kyoto"],
    )
    assert f["num_diff"].tolist() == [1.0, 0.0, 0.0]
    assert f["ident_diff"][1] == 1.0 and f["ident_diff"][0] == 0.0
    assert f["name_diff"][2] == 1.0
    assert numbers("5,000 euros and 5000 dollars") == {"5000"}
    assert "count_vowels" in identifiers("x = count_vowels(s)")


def test_value_diff_reads_spelled_out_numbers_as_values():
    a = ["Pack for a 3-day trip to Oslo", "Calculate 15% of 240", "Undo the last commit in git",
         "Which one is cheaper, a bus or a train?", "A car loan of 18000 at 5.9%", "Save 500 euros in ten months"]
    b = ["Packing list for three days in Oslo", "Calculate fifteen percent of 240", "Undo the last three commits in git",
         "Which is cheaper, a bus or a train?", "18k car loan at 5.9 percent", "Save 500 euros in eleven months"]
    f = pair_features(a, b)
    assert f["value_diff"].tolist() == pytest.approx([0.0, 0.0, 1.0, 0.0, 0.0, 2 / 3])
    # num_diff (which decontam.json reads) still compares the numbers as written
    assert f["num_diff"].tolist()[:3] == [1.0, 0.5, 0.0]
    assert number_values("two hundred and fifty, a thousand, twenty-one, 1,500") == {"250", "1000", "21", "1500"}
    assert number_values("a one-day pass") == {"1"} and number_values("which one") == set()
    # separate numbers stay separate (the parser once summed "three and four" to 7)
    assert number_values("between three and four hours") == {"3", "4"}
    assert number_values("five six-letter words") == {"5", "6"}
    assert number_values("two thousand five hundred and six, ninety nine") == {"2506", "99"}
    assert number_values("İİ 18k") == {"18000"}  # "k" read where lowering shifts positions


def test_qty_diff_reads_durations_clock_times_and_units():
    a = ["Remind me to stretch in 30 minutes", "Budget for a 5 year loan", "Wake me at 7:45", "Convert 12 ounces to grams",
         "Remind me to stretch in 30 minutes", "Steep it for 3 minutes", "Call me at 9 am"]
    b = ["Remind me to stretch in half an hour", "Budget for a loan over 60 months", "Wake me at a quarter to eight",
         "Convert 12 pounds to grams", "Remind me to stretch in 45 minutes", "Steep it for 3 hours", "Call me at 9 in the morning"]
    f = pair_features(a, b)
    assert f["qty_diff"].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]
    # value_diff compares the numbers alone
    assert f["value_diff"].tolist() == pytest.approx([1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0])
    assert quantities("in an hour and a half, for a fortnight, 36g") == {"s:5400", "s:1209600", "g:36"}
    # "a month" after an amount is a rate, not a duration; after "in"/"for" a duration
    assert quantities("save $200 a month") == {"200"} and quantities("done in a month") == {"mo:1"}
    assert quantities("3 times a week, between three and four hours") == {"3", "s:14400"}
    assert quantities("no numbers here") == set()


def test_the_dedup_fitting_pairs_are_not_evaluation_texts():
    from benchmarks.fit_verifier import CLOCK_TEMPLATES, ERROR_FRAMES, ERRORS

    data = Path(__file__).resolve().parents[1] / "data"
    evaluation = " ".join((data / name).read_text(encoding="utf-8").casefold()
                          for name in ("dedup_chat_eval.jsonl", "verify_hard.jsonl"))
    frames = [t for pair in CLOCK_TEMPLATES + ERROR_FRAMES for t in pair]
    pieces = [x.strip().casefold() for t in frames for x in re.split(r"\{\w+\}", t) if len(x.strip()) >= 12]
    assert pieces and not [x for x in pieces if x in evaluation]
    assert not [e for errs in ERRORS.values() for e in errs if e.casefold() in evaluation]


def test_typo_is_not_a_difference_but_a_new_word_is():
    f = pair_features(["How do I reverse a linked list in Java?"] * 2,
                      ["How do I revrese a linked list in Java?", "How do I sort a linked list in Java?"])
    assert f["unmatched_min"][0] == 0.0 < f["unmatched_min"][1]


def test_language_and_code():
    assert language("¿Cuál es la capital de Francia?") == "es"
    assert language("法国的首都是哪里？") == "zh"
    assert language("Wie viele Kalorien hat ein Apfel und eine Banane?") == "de"
    assert code_score("def f(x):\n    return x + 1\n") > 0.4
    assert code_score("What is the capital of France?") == 0.0
    f = pair_features(["What is the capital of France?"], ["¿Cuál es la capital de Francia?"])
    assert f["cross_lingual"][0] == 1.0


@pytest.mark.parametrize("task", TASKS)
def test_shipped_models_load_and_score_deterministically(task):
    m = load_model(task)
    # a model reads any subset of FEATURES by name (a feature added later is read by the models refitted since)
    assert set(m.features) <= set(FEATURES) and m.kind == "gbt" and m.trees
    assert 0.0 < m.band[0] <= m.threshold <= m.band[1] < 1.0 and m.strict_threshold >= m.threshold
    assert m.fitted_on["pairs"] > 1000
    rng = np.random.default_rng(0)
    X = rng.random((50, len(FEATURES)))
    p1, p2 = m.proba(X), m.proba(X[::-1])[::-1]
    assert np.array_equal(p1, p2) and ((p1 >= 0) & (p1 <= 1)).all()


def test_model_refuses_other_features(tmp_path):
    m = load_model("near")
    path = tmp_path / "m.json"
    m.save(path)
    data = json.loads(path.read_text())
    data["features"][0] = "a_feature_nobody_computes"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="refit"):
        VerifierModel.load(path).proba(np.zeros((1, len(FEATURES))))


def test_decide_generic_items_get_the_stricter_cut_and_variants_are_not_duplicates():
    k = len(FEATURES)
    m = VerifierModel("near", list(FEATURES), [0.0] * k, [1.0] * k, [0.0] * k, 0.0, 0.5, [0.3, 0.7], 0.8)
    assert decide(0.6, m).same and not decide(0.6, m, generic=True).same
    assert decide(0.6, m).uncertain and not decide(0.75, m).uncertain and not decide(0.2, m).uncertain
    d = decide(0.1, m, variant_evidence=True)
    assert d.variant and not d.same
    assert not decide(0.9, m, variant_evidence=True).variant


def _verifier(task):
    # channel cosines are passed in, so no embedder is called
    return Verifier(task, full_embedder=object(), multi_embedder=object())


@pytest.mark.parametrize("task", ["near", "semantic"])
def test_template_twins_are_variants_and_typo_copies_are_duplicates(task):
    a = ["How long should I boil an egg for 15 minutes in a small pot?",
         "I want to save 5000 Euro in 11 months, how much per month?"]
    twin = ["How long should I boil an egg for 30 minutes in a small pot?",
            "I want to save 900 Euro in 10 months, how much per month?"]
    typo = ["How long shuold I boil an egg for 15 minutes in a small pot?",
            "I want to save 5000 Euro in 11 months, how mcuh per month?"]
    v = _verifier(task)
    cos = [0.95, 0.95]
    p_twin, f = v.score(a, twin, cos_full=cos, cos_multi=cos)
    p_typo, _ = v.score(a, typo, cos_full=cos, cos_multi=cos)
    assert (p_twin < v.model.threshold).all(), p_twin
    assert (p_typo >= v.model.threshold).all(), p_typo
    assert variant_evidence(f, a, twin).all()
    assert "15 vs 30" in explain({k: float(c[0]) for k, c in f.items()}, a[0], twin[0])


def test_decontam_closer_to_another_item_lowers_the_probability():
    v = _verifier("decontam")
    a, b = ["Return the sum of the squares of the odd numbers in a list."] * 2, ["Sum the squares of odd numbers in a list."] * 2
    p, _ = v.score(a, b, cos_full=[0.8, 0.8], cos_multi=[0.85, 0.85], gap_other=[0.0, 0.3])
    assert p[1] <= p[0]


def test_hard_set_is_what_its_generator_writes_and_has_40_of_each():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_verify_hard", HARD.with_name("make_verify_hard.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = [json.loads(x) for x in HARD.read_text(encoding="utf-8").splitlines()]
    assert rows == mod.build()
    kinds = {}
    for r in rows:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    assert set(kinds) == {"typo_rephrase", "partial", "translated", "decoy", "twin"}
    assert min(kinds.values()) >= 40


def test_hard_set_is_not_in_the_fitting_templates():
    from benchmarks.fit_verifier import FIT_TEMPLATES, FIT_TRANSLATIONS

    fit_text = " ".join(t for tpl in FIT_TEMPLATES for t in tpl[:2]) + " ".join(x for v in FIT_TRANSLATIONS.values() for x in v)
    rows = [json.loads(x) for x in HARD.read_text(encoding="utf-8").splitlines()]
    assert not any(r["a"][:30] in fit_text for r in rows)


def test_model_matrix_fills_a_missing_multilingual_channel_with_the_full_one():
    f = pair_features(["a b c"], ["a b d"], cos_full=[0.7])
    assert math.isnan(f["cos_multi"][0])
    X = model_matrix(f)
    assert X[0, FEATURES.index("cos_multi")] == pytest.approx(0.7)


def test_pair_features_do_not_depend_on_the_pair_order():
    # equally long texts (template twins with same-width numbers) once took the first as the longer
    a = ["Boil the eggs for 15 minutes. Then add salt to the pot.", "Socialization is:", "What is the capital of France?"]
    b = ["Add salt to the pot now. Then boil the eggs for 30 min.", "Social norms are:", "What's the capital city of France"]
    f, g = pair_features(a, b), pair_features(b, a)
    for k in f:
        assert np.array_equal(f[k], g[k], equal_nan=True), k


def test_a_model_reads_its_own_features_by_name_in_its_own_order():
    """A task's model may be fitted on a subset of `FEATURES` in another order (a new feature
    refits one task, not all three); a name the code does not compute is refused."""
    rng = np.random.default_rng(0)
    X = rng.random((20, len(FEATURES)))
    names = ["tfidf", "cos_full"]
    m = VerifierModel("near", names, [0.0, 0.0], [1.0, 1.0], [3.0, -1.0], 0.5, 0.5, [0.3, 0.7], 0.8)
    want = 1.0 / (1.0 + np.exp(-(3.0 * X[:, FEATURES.index("tfidf")] - X[:, FEATURES.index("cos_full")] + 0.5)))
    np.testing.assert_allclose(m.proba(X), want)
    bad = VerifierModel("near", ["tfidf", "no_such"], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0], 0.0, 0.5, [0.3, 0.7], 0.8)
    with pytest.raises(ValueError, match="no_such"):
        bad.proba(X)


@pytest.mark.parametrize("task", ["near", "semantic"])
def test_decisions_without_reasons_are_the_decisions_with_reasons(task):
    a = ["How long should I boil an egg for 15 minutes?", "Sort a list in Python", "What is a hash map?"]
    b = ["How long should I boil an egg for 30 minutes?", "Sort a list in Python please", "Explain queues"]
    v = _verifier(task)
    cos = [0.95, 0.97, 0.7]
    full = v.decide_many(a, b, cos_full=cos, cos_multi=cos)
    bare = v.decide_many(a, b, cos_full=cos, cos_multi=cos, reasons=False)
    assert [(d.same, d.prob, d.uncertain, d.variant) for d in bare] == \
        [(d.same, d.prob, d.uncertain, d.variant) for d in full]
    assert all(d.reason == "" for d in bare) and any(d.reason for d in full)


def test_swap_words_tells_a_swapped_real_word_from_a_typo():
    from curate.models.verify import pair_features

    base = "Book a double room at the hotel near the old harbour for 2 nights."
    others = [
        "Book a double room at the hostel near the old harbour for 2 nights.",  # a real word for a real word
        "Book a double room at the hotle near the old harbour for 2 nights.",   # a typo (transposed)
        "Book a double room at the hotell near the old harbour for 2 nights.",  # a typo (doubled)
        "Book two double rooms at the hotel near the old harbour for 2 nights.",  # another ending, one added word
        "Book a cheap double room at the hotel near the old harbour for 2 nights.",  # one added word
        "Book a double room at the hotel near the old harbour for 3 nights.",   # a number: num_diff's job
    ]
    f = pair_features([base] * len(others), others)
    assert f["swap_words"].tolist() == [2.0, 0.0, 0.0, 1.0, 1.0, 0.0]
    g = pair_features(["Count the lines of every .py file.", "About 70 kg", "What is the capital of Peru?"],
                      ["Count the lines of every .js file.", "About 70 gk", "What is the capitol of Peru?"])
    # short words count; an adjacent swap is a typo, and so is one vowel for another between real words
    assert g["swap_words"].tolist() == [2.0, 0.0, 0.0]


def test_prose_names_are_not_code_words_or_line_starts():
    item = ('from typing import List\n\n\ndef below_zero(operations: List[int]) -> bool:\n'
            '    """ You are given a list of deposit and withdrawal operations on a bank account.\n'
            '    Return True if the balance ever falls below zero, else False.\n    >>> below_zero([1, 2, -4])\n    True\n    """\n')
    ask = "Bank account starts empty. Given the deposits and withdrawals in order, tell me whether it ever goes negative."
    f = pair_features([item, "Plan a trip to Lisbon with Maria"], [ask, "Plan a trip to Kyoto with Maria"])
    # `names` reads List, True, False and the docstring's line starts as names; the prose reading does not
    assert f["name_diff"][0] == 1.0 and f["prose_name_diff"][0] == 0.0
    assert f["prose_name_diff"][1] == f["name_diff"][1] > 0.0  # a real name still differs


def test_a_shared_frame_on_another_subject_is_not_the_benchmark_item():
    # the e2e chat log's one false flag before the frame negatives (decontam.json fitted with them): MT-bench 146
    # and a generic request in its frame, cosine .28 (multilingual .42), p .69 against the cut .51 then
    item = ("Please explain the differences between exothermic and endothermic reactions, and include the criteria "
            "you used to distinguish between them. Additionally, please provide a real-world example to illustrate "
            "your explanation.")
    v = _verifier("decontam")
    p, _ = v.score([item], ["Explain the difference between a process and a thread."], cos_full=[0.279], cos_multi=[0.419])
    assert p[0] < v.model.threshold


def test_decontam_frames_are_not_evaluation_texts():
    from benchmarks.fit_verifier import DECONTAM_FRAMES

    data = Path(__file__).resolve().parents[1] / "data"
    evaluation = " ".join((data / name).read_text(encoding="utf-8").casefold()
                          for name in ("decontam_e2e.jsonl", "verify_hard.jsonl"))
    assert not [x for _, _, subjects in DECONTAM_FRAMES for x in subjects if x.casefold() in evaluation]


def test_the_reason_lists_no_code_words_as_names():
    item = "from typing import List\n\n\ndef f(xs: List[int]) -> bool:\n    \"\"\" Check if any is None.\n    >>> f([1])\n    True\n    \"\"\"\n"
    row, other = "Check whether a Python list holds a None value.", "Plan a trip to Lisbon"
    f = pair_features([item, other], [row, "Plan a trip to Kyoto"])
    assert "names" not in explain({k: float(c[0]) for k, c in f.items()}, item, row)
    assert "names lisbon vs kyoto" in explain({k: float(c[1]) for k, c in f.items()}, other, "Plan a trip to Kyoto")


def test_search_why_counts_the_candidate_ceiling_and_cross_lingual_false_flags():
    """eval_verifier's search-protocol diagnosis: an item whose own rephrasing is no candidate
    cannot be found by any verifier, and false flags from rows in another language are told apart."""
    import numpy as np

    from benchmarks.eval_verifier import search_why
    from curate.models.verify import FEATURES

    xl = FEATURES.index("cross_lingual")
    # item 0: own rephrasing a candidate and flagged; with it removed, a cross-lingual false flag
    # item 1: own rephrasing no candidate (another row flagged instead); with it removed, an English false flag
    # item 2: own rephrasing a candidate, not flagged; nothing flagged with it removed
    keys = [(0, True), (0, False), (1, True), (1, False), (1, False), (2, True), (2, False)]
    label = [True, False, False, False, False, True, False]
    probs = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.1])
    X = np.zeros((len(keys), len(FEATURES)))
    X[1, xl] = 1.0
    X[4, xl] = 1.0  # a cross-lingual row under the cut: no false flag
    s = {"items": [0, 1, 2], "search": X, "search_key": keys, "search_label": np.array(label)}
    why = search_why(s, probs, 0.5)
    assert why == {"items": 3, "own_candidate": 2, "own_flagged": 1, "false_flag_items": 2,
                   "false_flag_items_cross_lingual_only": 1}
