"""Completion markers, fingerprints, retry decisions and stage artifacts (no Prefect server)."""

import json

import pytest

from flows.common import (fingerprint, flatten_stats, inputs_state, lake_state, read_marker, retry_transient,
                          run_once, write_marker)


class _State:
    def __init__(self, exc):
        self.exc = exc

    def result(self):
        raise self.exc


def test_run_once_skips_when_the_marker_matches(tmp_path):
    calls = []

    def work():
        calls.append(1)
        return {"total": 3}

    assert run_once(tmp_path, "stage", "k1", work) == {"total": 3, "skipped": False}
    assert run_once(tmp_path, "stage", "k1", work) == {"total": 3, "skipped": True}
    assert run_once(tmp_path, "stage", "k2", work)["skipped"] is False
    assert len(calls) == 2
    # a marker whose output is gone does not count
    assert run_once(tmp_path, "stage", "k1", work, valid=lambda s: False)["skipped"] is False
    assert len(calls) == 3


def test_a_failed_stage_leaves_no_marker(tmp_path):
    def boom():
        raise OSError("disk full")

    with pytest.raises(OSError):
        run_once(tmp_path, "stage", "k", boom)
    assert read_marker(tmp_path, "stage", "k") is None
    assert list(tmp_path.rglob(".tmp-*")) == []


def test_damaged_marker_is_no_marker(tmp_path):
    path = write_marker(tmp_path, "stage", "k", {"a": 1})
    path.write_text("{half")
    assert read_marker(tmp_path, "stage", "k") is None


def test_fingerprint_changes_with_new_input(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_text("{}\n")
    before = fingerprint("ingest", inputs_state([logs]))
    assert before == fingerprint("ingest", inputs_state([logs]))
    (logs / "b.jsonl").write_text("{}\n")
    assert before != fingerprint("ingest", inputs_state([logs]))
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})


def test_lake_state_follows_catalog_and_annotation_parts(lake, tmp_path):
    import pyarrow as pa

    from curate.ingest.ingest import ingest

    src = tmp_path / "x.jsonl"
    src.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    assert lake_state(lake.root) == {"files": [], "annotations": {}}
    ingest(lake, [src])
    s1 = lake_state(lake.root, ["pii"])
    assert len(s1["files"]) == 1 and s1["annotations"] == {"pii": []}
    lake.write_annotation("pii", pa.table({"conversation_id": ["x"]}), part="p1")
    assert lake_state(lake.root, ["pii"]) != s1
    assert lake_state(lake.root) == lake_state(lake.root, [])  # tables not read do not count


@pytest.mark.parametrize("exc, retry", [
    (OSError("connection reset"), True),
    (TimeoutError(), True),
    (__import__("curate.core.errors", fromlist=["LLMError"]).LLMError("503"), True),
    (__import__("curate.core.errors", fromlist=["ConfigError"]).ConfigError("bad"), False),
    (ValueError("bad data"), False),
    (ModuleNotFoundError("x"), False),
])
def test_retry_only_what_a_retry_can_fix(exc, retry):
    assert retry_transient(None, None, _State(exc)) is retry


def test_duckdb_binder_errors_are_not_retried():
    import duckdb

    try:
        duckdb.connect().execute("SELECT nope FROM range(1)")
    except duckdb.Error as exc:
        assert retry_transient(None, None, _State(exc)) is False


def test_artifact_rows_summarise_nested_stats():
    rows = flatten_stats({"total": 3, "files": {"ingested": 1}, "per_file": [1, 2], "path": "x" * 500})
    assert {"metric": "files.ingested", "value": 1} in rows
    assert {"metric": "per_file", "value": "2 items"} in rows
    assert len(next(r for r in rows if r["metric"] == "path")["value"]) == 200


def test_a_marker_temporary_left_by_a_kill_is_removed(tmp_path):
    from flows.common import marker_path

    folder = marker_path(tmp_path, "stage", "k").parent
    folder.mkdir(parents=True)
    (folder / ".tmp-dead.json").write_text("{half")
    run_once(tmp_path, "stage", "k", lambda: {"n": 1})
    assert [p.name for p in folder.iterdir()] == ["k.json"]
