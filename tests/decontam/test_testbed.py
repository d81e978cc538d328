"""The evaluation pairs from ../shared/testbed (skipped when it is absent)."""

import pytest

from decontam.ngram import NgramIndex
from tests.conftest import needs_testbed


def test_protocol_pairs_have_the_papers_shape():
    from decontam.testbed import calibration_pairs, scored_pairs

    root = needs_testbed("llm-decontaminator")
    scored = scored_pairs(root)
    assert len(scored) == 9
    for name, pairs in scored.items():
        pos = [p for p in pairs if p.label]
        neg = [p for p in pairs if not p.label]
        assert 90 <= len(pos) <= 100 and len(neg) == 100, name
        assert all(p.item < 100 for p in pairs) and all(p.b.strip() for p in pos)
    cal = calibration_pairs(root)
    assert cal and all(p.item >= 100 for p in cal)
    # scored and calibration pairs never share an original item
    assert not {(p.set_name, p.item) for p in cal} & {(p.set_name, p.item) for ps in scored.values() for p in ps}


def test_ngram_misses_rephrasings_as_the_paper_reports():
    from decontam.testbed import scored_pairs

    root = needs_testbed("llm-decontaminator")
    pos = [p for p in scored_pairs(root)["mmlu_sociology_english"] if p.label]
    hits = sum(bool(NgramIndex([p.a], n=10).match([p.b])) for p in pos)
    assert hits <= 5


@pytest.mark.slow
def test_embedding_separates_english_rephrasings():
    from curate.models.embed import Embedder
    from decontam.calibrate import auc
    from decontam.testbed import scored_pairs

    root = needs_testbed("llm-decontaminator")
    pairs = scored_pairs(root)["mmlu_sociology_english"][::5]
    e = Embedder()
    a, b = e.embed([p.a for p in pairs]), e.embed([p.b for p in pairs])
    cos = (a * b).sum(1).tolist()
    assert auc(cos, [p.label for p in pairs]) > 0.95
