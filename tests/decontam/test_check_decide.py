"""decontam.check.decide: the decision for one candidate, alone (no index, no model)."""

from dataclasses import dataclass

import numpy as np
import pytest

from decontam.check import decide

CUTS = dict(cut=0.68, multi_cut=0.56, high=0.9, floor=0.5)


@dataclass(frozen=True)
class V:  # the verifier's Decision, as run_check passes it
    same: bool
    uncertain: bool = False


def test_above_high_is_flagged_without_the_verifier_or_judge():
    call = decide(4, 0.93, 0, verifier=V(False), judge_says=False, judged=True, **CUTS)
    assert (call.decided_by, call.target, call.cosine) == ("embedding_high", 4, 0.93)
    assert call.counts == {"above_high": 1, "judge_calls_saved": 1}


def test_below_floor_is_never_flagged():
    call = decide(0, 0.49, 0, verifier=V(True), **CUTS)
    assert call.decided_by is None and call.counts == {"below_floor": 1, "judge_calls_saved": 0}


def test_multilingual_channel_has_no_high_mark_and_its_own_cut():
    assert decide(0, 0.95, 1, **CUTS).decided_by == "multilingual"
    assert decide(0, 0.57, 1, **CUTS).decided_by == "multilingual"
    assert decide(0, 0.57, 0, **CUTS).decided_by is None  # below the embedder's cut


@pytest.mark.parametrize("same, uncertain, judge, want", [
    (True, False, None, "verifier"),
    (False, False, None, None),
    (False, True, True, "judge"),   # the judge decides the verifier's uncertain band
    (True, True, False, None),      # ... either way
])
def test_verifier_decides_the_band_and_the_judge_overrides(same, uncertain, judge, want):
    call = decide(2, 0.75, 0, verifier=V(same, uncertain), judge_says=judge, judged=True, **CUTS)
    assert call.decided_by == want
    assert call.counts["verifier_pairs"] == 1 and call.counts["band"] == 1
    assert call.counts["verifier_uncertain"] == int(uncertain)
    assert call.counts["judge_calls_saved"] == int(not uncertain)
    assert call.counts.get("judge_overrides", 0) == int(judge is not None and judge != same)


def test_without_verifier_the_cut_decides_and_attribution_moves_the_flag():
    assert decide(1, 0.70, 0, **CUTS).decided_by == "embedding"
    assert decide(1, 0.60, 0, **CUTS).decided_by is None
    moved = decide(1, 0.70, 0, closest=(0.85, 7), attribution_tolerance=0.02, **CUTS)
    assert (moved.decided_by, moved.target, moved.cosine) == ("embedding", 7, 0.85)
    assert moved.counts["closer_to_other_item"] == 1
    # within the tolerance, or closest to this very item: stays
    assert decide(1, 0.70, 0, closest=(0.71, 7), attribution_tolerance=0.02, **CUTS).target == 1
    assert decide(1, 0.70, 0, closest=(0.85, 1), attribution_tolerance=0.02, **CUTS).target == 1
    # moved to an item it matches above the high mark: that stage's label
    assert decide(1, 0.70, 0, closest=(0.95, 7), attribution_tolerance=0.02, **CUTS).decided_by == "embedding_high"


def test_the_judge_overrides_the_cut_and_attribution():
    call = decide(1, 0.70, 0, closest=(0.85, 7), attribution_tolerance=0.02, judge_says=True, judged=True, **CUTS)
    assert (call.decided_by, call.target) == ("judge", 1)
    assert call.counts["judge_overrides"] == 1  # the cut said no (closer to item 7)
    assert decide(1, 0.80, 0, judge_says=False, **CUTS).decided_by is None


def test_no_cascade_means_infinite_marks():
    call = decide(0, 0.99, 0, cut=0.68, multi_cut=0.56, high=np.inf, floor=-np.inf)
    assert call.decided_by == "embedding" and call.counts == {"band": 1}
