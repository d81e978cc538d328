import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.ingest.ingest import IngestConfig, ingest
from curate.core.lake import Lake
from tests.conftest import DEMO_LOGS, REPO, needs_testbed


def _write_jsonl(path: Path, records: list) -> Path:
    with open(path, "wb") as fh:
        for r in records:
            fh.write(r if isinstance(r, bytes) else json.dumps(r).encode())
            fh.write(b"\n")
    return path


def _lake_content(lake: Lake) -> list[tuple]:
    con = lake.connect()
    rows = con.execute(
        "SELECT conversation_id, source_file, source_index, content_hash FROM conversations ORDER BY ALL"
    ).fetchall()
    q = con.execute("SELECT source_file, source_index, reason FROM quarantine ORDER BY ALL").fetchall()
    return rows + [("Q",) + r for r in q]


def test_demo_logs_ingest_balanced(lake):
    stats = ingest(lake, [DEMO_LOGS])
    assert stats.total == stats.kept + stats.quarantined
    assert stats.kept > 40 and stats.quarantined >= 8
    s = lake.stats()
    assert s["balanced"] and s["rows_kept"] == stats.kept
    assert set(s["formats"]) == {"openai", "sharegpt", "lmsys"}
    assert {"invalid_json", "unknown_role", "missing_messages", "non_string_content", "not_an_object",
            "messages_not_list", "no_user_content", "invalid_utf8", "duplicate_id_conflict"} <= set(s["quarantine_reasons"])


def test_reingest_unchanged_does_nothing(lake):
    ingest(lake, [DEMO_LOGS])
    before = _lake_content(lake)
    stats = ingest(lake, [DEMO_LOGS])
    assert {f.action for f in stats.files} == {"unchanged"}
    assert stats.total == 0
    assert _lake_content(lake) == before


def test_changed_file_replaces_old_rows(lake, tmp_path):
    src = _write_jsonl(tmp_path / "a.jsonl", [{"id": "1", "messages": [{"role": "user", "content": "hi"}]}])
    ingest(lake, [src])
    _write_jsonl(src, [{"id": "1", "messages": [{"role": "user", "content": "hi"}]},
                       {"id": "2", "messages": [{"role": "user", "content": "again"}]}])
    os.utime(src, (time.time() + 5, time.time() + 5))
    stats = ingest(lake, [src])
    assert stats.files[0].action == "replaced"
    con = lake.connect()
    assert con.execute("SELECT count(*) FROM conversations").fetchone()[0] == 2
    assert len(list((lake.root / "conversations").glob("*.parquet"))) == 1


def test_on_change_error(lake, tmp_path):
    from curate.core.errors import LakeError

    src = _write_jsonl(tmp_path / "a.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}])
    ingest(lake, [src])
    _write_jsonl(src, [{"messages": [{"role": "user", "content": "changed"}]}])
    with pytest.raises(LakeError):
        ingest(lake, [src], IngestConfig(on_change="error"))


def test_copied_file_is_recorded_as_duplicate(lake, tmp_path):
    src = _write_jsonl(tmp_path / "a.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}])
    shutil.copy(src, tmp_path / "b.jsonl")
    stats = ingest(lake, [tmp_path / "a.jsonl", tmp_path / "b.jsonl"])
    assert [f.action for f in stats.files] == ["ingested", "duplicate_file"]
    assert lake.stats()["rows_kept"] == 1


BAD = [
    (b'{"messages": [{"role": "user", "content": "trunc', "invalid_json"),
    (b'{"messages": [{"role": "user", "content": "caf\xe9"}]}', "invalid_utf8"),
    (b'{"id": "x"}', "missing_messages"),
    (b'{"messages": "hello"}', "messages_not_list"),
    (b'{"messages": [{"role": "narrator", "content": "x"}]}', "unknown_role"),
    (b'{"messages": [{"role": "user", "content": 42}]}', "non_string_content"),
    (b'{"messages": [{"role": "user", "content": "   "}]}', "no_user_content"),
    (b'{"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "x"}]}', "no_user_content"),
    (b'"just a string"', "not_an_object"),
    (b'{"messages": ["not an object"]}', "message_not_object"),
    (b'{"messages": [{"content": "no role"}]}', "missing_role"),
]


@pytest.mark.parametrize("line,reason", BAD, ids=[r for _, r in BAD])
def test_bad_record_is_quarantined_with_reason(lake, tmp_path, line, reason):
    good = {"id": "good", "messages": [{"role": "user", "content": "fine"}]}
    src = _write_jsonl(tmp_path / "x.jsonl", [good, line])
    stats = ingest(lake, [src], IngestConfig(format="openai"))
    assert (stats.total, stats.kept, stats.quarantined) == (2, 1, 1)
    row = lake.connect().execute("SELECT reason, source_index, raw FROM quarantine").fetchone()
    assert row[0] == reason and row[1] == 2 and row[2] == line


def test_limits_and_normalisation_rules(lake, tmp_path):
    records = [
        {"id": "big", "messages": [{"role": "user", "content": "x" * 3_000_000}]},
        {"id": "long", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}] * 3000},
        {"id": "nul", "messages": [{"role": "User", "content": "a\u0000b"}]},
        {"id": "parts", "messages": [{"role": "user", "content": [{"type": "text", "text": "p1"}, {"type": "text", "text": "p2"}]}]},
        {"id": "dup", "messages": [{"role": "user", "content": "same"}]},
        {"id": "dup", "messages": [{"role": "user", "content": "same"}]},
        {"id": "dup", "messages": [{"role": "user", "content": "different"}]},
    ]
    src = _write_jsonl(tmp_path / "x.jsonl", records)
    stats = ingest(lake, [src])
    reasons = stats.files[0].reasons
    assert reasons == {"message_too_large": 1, "too_many_messages": 1, "duplicate_record": 1, "duplicate_id_conflict": 1}
    con = lake.connect()
    got = dict(con.execute("SELECT conversation_id, conversation[1].content FROM conversations").fetchall())
    assert got == {"nul": "ab", "parts": "p1\np2", "dup": "same"}
    meta = json.loads(con.execute("SELECT metadata FROM conversations WHERE conversation_id='nul'").fetchone()[0])
    assert meta["_normalized"] == ["nul_removed:0"] and meta["_message_fields"]["0"]["_role"] == "User"


def test_oversized_line_does_not_stop_the_file(lake, tmp_path):
    src = tmp_path / "x.jsonl"
    src.write_bytes(b'{"messages": [{"role": "user", "content": "' + b"y" * 5000 + b'"}]}\n'
                    + b'{"messages": [{"role": "user", "content": "ok"}]}\n')
    stats = ingest(lake, [src], IngestConfig(max_record_bytes=1000))
    assert stats.files[0].reasons == {"record_too_large": 1} and stats.kept == 1


def test_truncated_gzip_keeps_what_was_read(lake, tmp_path):
    lines = b"".join(json.dumps({"messages": [{"role": "user", "content": f"m{i}"}]}).encode() + b"\n" for i in range(2000))
    data = gzip.compress(lines)
    src = tmp_path / "x.jsonl.gz"
    src.write_bytes(data[: len(data) // 2])
    stats = ingest(lake, [src])
    assert stats.total == stats.kept + stats.quarantined
    assert stats.kept > 100 and stats.files[0].reasons.get("invalid_json", 0) >= 1


def test_sharegpt_array_truncated(lake, tmp_path):
    src = tmp_path / "x.json"
    src.write_text('[{"id": "a", "conversations": [{"from": "human", "value": "hi"}]}, {"id": "b", "conversations": [{"fr')
    stats = ingest(lake, [src])
    assert (stats.total, stats.kept, stats.quarantined) == (2, 1, 1)


def test_lmsys_rows_roundtrip_losslessly(lake, tmp_path):
    row = {"conversation_id": "c1", "model": "vicuna-13b",
           "conversation": [{"content": "Hi", "role": "user"}, {"content": "Hello!", "role": "assistant"}],
           "turn": 1, "language": "English", "redacted": True,
           "openai_moderation": [{"categories": {"hate": False}, "category_scores": {"hate": 0.01}, "flagged": False}] * 2}
    src = _write_jsonl(tmp_path / "lm.jsonl", [row])
    ingest(lake, [src])
    got = lake.connect().sql("SELECT * FROM conversations").to_arrow_table().to_pylist()[0]
    rebuilt = {"conversation_id": got["conversation_id"], "model": got["model"],
               "conversation": [{"content": m["content"], "role": m["role"]} for m in got["conversation"]],
               "turn": got["turn"], **json.loads(got["metadata"])}
    assert rebuilt == row


def test_format_detection_and_forcing(lake, tmp_path):
    from curate.ingest.read_logs import sniff

    assert sniff(DEMO_LOGS / "openai_chats.jsonl") == ("openai", "jsonl")
    assert sniff(DEMO_LOGS / "sharegpt_chats.json") == ("sharegpt", "json_array")
    assert sniff(DEMO_LOGS / "sharegpt_code.jsonl.gz") == ("sharegpt", "jsonl")
    assert sniff(DEMO_LOGS / "lmsys_rows.jsonl") == ("lmsys", "jsonl")
    assert sniff(DEMO_LOGS / "lmsys_rows.parquet") == ("lmsys", "parquet")


def test_dummy_conversation_all_kept(lake):
    path = needs_testbed("fastchat", "dummy_conversation.json")
    stats = ingest(lake, [path])
    assert (stats.total, stats.kept, stats.quarantined) == (500, 500, 0)


def _ingest_cmd(lake_root: Path, src: Path) -> list[str]:
    return [sys.executable, "-c",
            "import sys; from curate.core.lake import Lake; from curate.ingest.ingest import ingest, IngestConfig;"
            "ingest(Lake(sys.argv[1]), sys.argv[2:], IngestConfig(batch_rows=500))", str(lake_root), str(src)]


@pytest.mark.parametrize("delay", [0.9, 1.6, 2.4])
def test_sigkill_mid_ingest_then_rerun_equals_clean_run(tmp_path, delay):
    src = tmp_path / "logs"
    src.mkdir()
    for k in range(4):
        _write_jsonl(src / f"part{k}.jsonl", [
            {"messages": [{"role": "user", "content": f"question {k}-{i} " * 5}, {"role": "assistant", "content": "answer " * 20}]}
            if i % 97 else b"{broken" for i in range(15_000)])
    clean = Lake(tmp_path / "clean")
    subprocess.run(_ingest_cmd(clean.root, src), check=True, cwd=REPO)
    killed = Lake(tmp_path / "killed")
    proc = subprocess.Popen(_ingest_cmd(killed.root, src), cwd=REPO)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    subprocess.run(_ingest_cmd(killed.root, src), check=True, cwd=REPO)
    assert _lake_content(killed) == _lake_content(clean)
    assert killed.stats()["balanced"]
    leftovers = [p for p in killed.root.rglob(".tmp-*")]
    assert leftovers == []


@pytest.mark.parametrize("folder", ["conversations", "quarantine", "annotations/lang", "embeddings/m", "_schema"])
def test_rerun_removes_temporaries_a_kill_left_anywhere(lake, folder):
    """A kill can land in any atomic write, the empty-schema files of `init` included."""
    target = lake.root / folder
    target.mkdir(parents=True, exist_ok=True)
    (target / ".tmp-killed.parquet").write_bytes(b"PAR1 half written")
    ingest(lake, [DEMO_LOGS], IngestConfig())
    assert list(lake.root.rglob(".tmp-*")) == []
