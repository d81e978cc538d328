"""curate.dedup.dedup's decision functions, alone: a verified pair's outcome and a row's duplicate kind."""

import pytest

from curate.dedup.dedup import duplicate_kind, pair_outcome
from curate.models.verify import Decision

BASE = dict(jaccard=None, cosine=None, near_cut=0.65, semantic_cut=0.6, same_near_cluster=False, near_on=True,
            semantic_on=True)


@pytest.mark.parametrize("same, variant, want", [
    (True, False, "duplicate"), (True, True, "duplicate"), (False, True, "variant"), (False, False, "distinct"),
])
def test_pair_outcome(same, variant, want):
    assert pair_outcome(Decision(same=same, prob=0.5, uncertain=False, variant=variant, reason="")) == want


def test_exact_wins_over_everything():
    assert duplicate_kind(**{**BASE, "same_hash": True, "jaccard": 0.7, "cosine": 0.99}) == ("exact", 1.0)


def test_near_at_the_cut_then_semantic():
    assert duplicate_kind(**{**BASE, "same_hash": False, "jaccard": 0.65, "cosine": 0.99}) == ("near", 0.65)
    assert duplicate_kind(**{**BASE, "same_hash": False, "jaccard": 0.4, "cosine": 0.61}) == ("semantic", 0.61)


def test_a_chain_of_near_duplicates_is_near_even_with_a_high_cosine():
    got = duplicate_kind(**{**BASE, "same_hash": False, "jaccard": 0.5, "cosine": 0.95, "same_near_cluster": True})
    assert got == ("near", 0.5)


def test_linked_through_semantic_neighbours_below_the_cut_is_semantic():
    assert duplicate_kind(**{**BASE, "same_hash": False, "jaccard": 0.2, "cosine": 0.3}) == ("semantic", 0.3)
    # without the semantic stage, only near links remain
    assert duplicate_kind(**{**BASE, "same_hash": False, "jaccard": 0.2, "cosine": None, "semantic_on": False}) == ("near", 0.2)
