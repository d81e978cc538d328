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


# ---- split_clusters: a member must be the same request as its cluster's representative ----

def _linked(links):
    return lambda u, r: (u, r) in links or (r, u) in links


def _components(links):
    def neighbours(units):
        groups: list[list[str]] = []
        for u in units:
            hit = [g for g in groups if any((u, v) in links or (v, u) in links for v in g)]
            merged = [v for g in hit for v in g] + [u]
            groups = [g for g in groups if g not in hit] + [sorted(merged, key=units.index)]
        return sorted(groups, key=lambda g: units.index(g[0]))
    return neighbours


def test_a_chain_through_a_generic_text_is_split():
    # "Social norms are:" -> "Socialization is:" -> "How can observing people reveal norms?": each link
    # plausible, the ends different requests; the verifier, asked about the end against the
    # representative, says no
    from curate.dedup.dedup import split_clusters

    links = {("b", "a"), ("c", "b")}
    got = split_clusters([("a", ["b", "c"])], _linked(links), lambda pairs: [False] * len(pairs), _components(links))
    assert got == [("a", ["b"]), ("c", [])]


def test_a_member_the_verifier_accepts_against_the_representative_stays():
    from curate.dedup.dedup import split_clusters

    links = {("b", "a"), ("c", "b")}
    asked = []

    def same_many(pairs):
        asked.extend(pairs)
        return [True] * len(pairs)

    got = split_clusters([("a", ["b", "c"])], _linked(links), same_many, _components(links))
    assert got == [("a", ["b", "c"])] and asked == [("c", "a")]  # linked pairs are not asked again


def test_members_that_leave_form_their_own_clusters_and_are_split_again():
    from curate.dedup.dedup import split_clusters

    # a <- b; c, d, e hang off b; c-d linked, d-e linked; the verifier accepts only (d, c)
    links = {("b", "a"), ("c", "b"), ("d", "c"), ("e", "d")}
    ok = {("d", "c")}
    got = split_clusters([("a", ["b", "c", "d", "e"])], _linked(links), lambda ps: [p in ok for p in ps],
                         _components(links))
    assert sorted(got) == [("a", ["b"]), ("c", ["d"]), ("e", [])]


def test_the_dedup_fitting_templates_share_no_request_with_the_evaluations():
    # the near/semantic models are fitted on DEDUP_TEMPLATES; the chat set and the hard set score them
    import json
    from pathlib import Path

    from benchmarks.fit_verifier import dedup_template_pairs, swap_twin_pairs

    data = Path(__file__).resolve().parents[1] / "data"
    fit = " ".join(t for p in dedup_template_pairs() + swap_twin_pairs() for t in (p["a"], p["b"])).lower()
    evals = [json.loads(x)["text"] for x in (data / "dedup_chat_eval.jsonl").read_text(encoding="utf-8").splitlines()]
    for x in (data / "verify_hard.jsonl").read_text(encoding="utf-8").splitlines():
        evals += [json.loads(x)["a"], json.loads(x)["b"]]
    assert len(evals) > 500
    assert not [t for t in evals if t[:30].lower() in fit]
