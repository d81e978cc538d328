"""The stage contract: every stage is `curate.stages.run_<stage>(lake, config, ...) -> StageStats`."""

import inspect

import pytest

from curate import stages
from curate.core.stats import StageStats


def test_stage_stats_flat_form_keeps_the_stages_own_figures():
    s = StageStats.from_counts("dedup", {"run_id": "r1", "total": 66, "kept": 34, "dropped_exact": 22,
                                         "dropped_near": 7, "seconds": {"exact": 0.1}, "new": 66}, seconds=2.0)
    assert (s.total, s.kept, s.dropped, s.dropped_total, s.run_id) == (66, 34, {"exact": 22, "near": 7}, 29, "r1")
    flat = s.as_dict()
    assert flat["seconds"] == {"exact": 0.1}  # the stage's own figure wins over the wall time
    assert flat["new"] == 66 and flat["dropped_near"] == 7


def test_canonical_figures_fill_in_what_a_stage_did_not_report():
    flat = StageStats("tag_pii", total=5, kept=5, seconds=1.5, details={"tagged": 5}).as_dict()
    assert flat == {"tagged": 5, "run_id": None, "total": 5, "kept": 5, "seconds": 1.5}


def test_booleans_are_not_counts():
    s = StageStats.from_counts("x", {"total": 1, "kept": 1, "dropped_flagged": True}, seconds=0)
    assert s.dropped == {}


@pytest.mark.parametrize("name", [n for n in dir(stages) if n.startswith("run_")])
def test_every_stage_takes_lake_and_config_first(name):
    params = list(inspect.signature(getattr(stages, name)).parameters.values())
    assert [p.name for p in params[:2]] == ["lake", "config"], name
    assert params[1].default is None  # None: the stage's defaults
    assert all(p.kind is p.KEYWORD_ONLY for p in params[2:]), name
    assert inspect.signature(getattr(stages, name)).return_annotation in ("StageStats", StageStats)


def test_the_taggers_are_stage_functions_in_running_order():
    assert list(stages.TAGGERS) == ["pii", "language", "moderation", "moderation_llm", "topics"]
    assert all(fn.__name__ == f"run_tag_{name}" for name, fn in stages.TAGGERS.items())
