"""flows.progress: stage lines and bars at the command-line edge, nothing when quiet."""

from curate.cli.progress import rich_bars
from flows import progress


def test_quiet_prints_nothing_and_gives_no_callback(capsys):
    progress.enable(False)
    progress.stage_started("dedup")
    progress.stage_finished("dedup", {"total": 3, "kept": 2}, 1.0)
    with progress.bar("tag pii", 3) as advance:
        assert advance is None
    assert capsys.readouterr().err == ""


def test_enabled_prints_one_line_per_event_to_stderr(capsys):
    progress.enable(bars=rich_bars)
    try:
        progress.stage_started("ingest")
        progress.stage_finished("ingest", {"total": 95, "kept": 66, "quarantined": 29}, 3.14)
        progress.stage_finished("tag pii", {"total": 66, "tagged": 66, "skipped_already_tagged": 0}, 0.5)
        progress.stage_finished("dedup", {"skipped": True}, 0.01)
        with progress.bar("tag pii", 3) as advance:
            advance(2)
            advance(1)
    finally:
        progress.enable(False)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "[ingest] started",
        "[ingest] done in 3.1 s: 95 rows in, 66 kept",
        "[tag pii] done in 0.5 s: 66 rows in, 66 tagged",
        "[dedup] done in 0.0 s: nothing new (marker)",
    ]


def test_rows_of_the_tag_stage_list_each_tagger():
    stats = {"pii": {"tagged": 66}, "language": {"tagged": 66}, "topics": {"failed": "boom"}}
    assert progress.rows_in_out(stats) == "pii 66, language 66 tagged"


def test_step_messages_are_lines_and_counts_drive_a_bar(capsys):
    with progress.steps("decontam") as step:
        assert step is None  # off: the library logs as usual
    progress.enable()
    try:
        with progress.steps("decontam") as step:
            step("n-gram stage done in 0.1s")
            step("embedding training side: 64/128")
            step("embedding training side: 128/128")
    finally:
        progress.enable(False)
    assert capsys.readouterr().err.splitlines() == ["  decontam: n-gram stage done in 0.1s"]


def test_without_the_clis_bars_a_step_gets_no_callback_but_the_lines_print(capsys):
    """flows draw no bars of their own (rich lives in the CLI): enabled without bars, lines only."""
    progress.enable()
    try:
        with progress.bar("tag pii", 3) as advance:
            assert advance is None
        progress.stage_started("export")
    finally:
        progress.enable(False)
    assert capsys.readouterr().err.splitlines() == ["[export] started"]
