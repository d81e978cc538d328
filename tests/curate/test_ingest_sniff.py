"""Format detection per file: the majority of the first parseable records decides, a record
that does not fit is quarantined on its own, and a file that is no log at all is one record."""

import json
import logging
from pathlib import Path

import pytest

from curate.ingest.ingest import IngestConfig, ingest
from curate.ingest.read_logs import NOT_A_LOG, SNIFF_RECORDS, sniff


def _lmsys(i: int) -> dict:
    return {"conversation_id": f"l{i}", "model": "vicuna-13b", "turn": 1, "language": "English",
            "conversation": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": "ok"}]}


def _openai(i: int) -> dict:
    return {"id": f"o{i}", "messages": [{"role": "user", "content": f"prompt {i}"},
                                         {"role": "assistant", "content": "answer"}]}


def _write_lines(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def _reasons(lake) -> list[tuple]:
    con = lake.connect()
    try:
        return con.execute("SELECT source_index, reason FROM quarantine ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_lmsys_log_whose_first_line_lacks_conversation_keeps_every_valid_row(lake, tmp_path):
    # The regression: the format was sniffed from the first record, and the file was lost whole.
    first = {"conversation_id": "bad", "model": "vicuna-13b", "turn": 1}  # a truncated write: no conversation
    path = _write_lines(tmp_path / "lmsys.jsonl", [first] + [_lmsys(i) for i in range(30)])
    assert sniff(path) == ("lmsys", "jsonl")
    (f,) = ingest(lake, [path]).files
    assert (f.source_format, f.records_in, f.rows_kept, f.rows_quarantined) == ("lmsys", 31, 30, 1)
    assert _reasons(lake) == [(1, "missing_messages")]
    assert lake.stats()["balanced"]


@pytest.mark.parametrize("fast_path", [True, False])
def test_openai_log_with_bad_first_lines_on_both_paths(lake, tmp_path, fast_path):
    records = ["not json {", {"prompt": "no messages here"}, *[_openai(i) for i in range(20)],
               json.dumps({"conversations": [{"from": "human", "value": "a sharegpt line"}]})]
    path = _write_lines(tmp_path / "chats.jsonl", records)
    assert sniff(path) == ("openai", "jsonl")
    (f,) = ingest(lake, [path], IngestConfig(fast_path=fast_path, chunk_bytes=512)).files
    assert (f.source_format, f.records_in, f.rows_kept, f.rows_quarantined) == ("openai", 23, 20, 3)
    assert _reasons(lake) == [(1, "invalid_json"), (2, "missing_messages"), (23, "missing_messages")]


def test_the_majority_of_the_first_records_decides(tmp_path):
    sharegpt = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    path = _write_lines(tmp_path / "mixed.jsonl", [sharegpt] * 3 + [_openai(i) for i in range(4)])
    assert sniff(path) == ("openai", "jsonl")
    # only the first SNIFF_RECORDS parseable records vote
    path = _write_lines(tmp_path / "late.jsonl", [sharegpt] * SNIFF_RECORDS + [_openai(i) for i in range(150)])
    assert sniff(path) == ("sharegpt", "jsonl")


def test_a_manifest_json_in_the_input_folder_is_one_record(lake, tmp_path, caplog):
    logs = tmp_path / "logs"
    logs.mkdir()
    _write_lines(logs / "chats.jsonl", [_openai(i) for i in range(5)])
    manifest = {"dataset_name": "chats", "splits": {"train": {"num_examples": 5, "num_bytes": 812}},
                "features": {"messages": {"feature": {"role": "string", "content": "string"}}},
                "files": [{"name": "chats.jsonl", "sha256": "ab" * 32}]}
    (logs / "dataset_info.json").write_text(json.dumps(manifest, indent=2))  # pretty-printed: 19 lines
    (logs / "files.json").write_text(json.dumps([{"name": "chats.jsonl", "rows": 5}], indent=2))
    assert sniff(logs / "dataset_info.json")[0] == NOT_A_LOG
    with caplog.at_level(logging.WARNING, logger="curate.ingest.ingest"):
        stats = ingest(lake, [logs])
    by_name = {Path(f.path).name: f for f in stats.files}
    for name in ("dataset_info.json", "files.json"):
        f = by_name[name]
        assert (f.action, f.source_format, f.records_in, f.rows_kept, f.rows_quarantined) == (
            NOT_A_LOG, NOT_A_LOG, 1, 0, 1)
    assert by_name["chats.jsonl"].rows_kept == 5
    warnings = [r for r in caplog.records if "not a log file" in r.getMessage()]
    assert len(warnings) == 2 and all("\n" not in r.getMessage() for r in warnings)
    con = lake.connect()
    assert con.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1").fetchall() == [(NOT_A_LOG, 2)]
    assert con.execute("SELECT count(*) FROM source_files WHERE source_format = ?", [NOT_A_LOG]).fetchone()[0] == 2
    con.close()
    s = lake.stats()
    assert s["balanced"] and s["records_in"] == 7 and s["rows_kept"] == 5


def test_format_forced_reads_a_non_log_file_anyway(lake, tmp_path):
    path = tmp_path / "info.json"
    path.write_text(json.dumps({"name": "x", "rows": 3}, indent=2))
    (f,) = ingest(lake, [path], IngestConfig(format="openai")).files
    assert (f.records_in, f.rows_quarantined) == (1, 1)
    assert _reasons(lake) == [(0, "missing_messages")]


def test_a_pretty_printed_conversation_is_one_kept_record(lake, tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(_openai(1), indent=2))
    assert sniff(path) == ("openai", "json_document")
    (f,) = ingest(lake, [path]).files
    assert (f.records_in, f.rows_kept) == (1, 1)
