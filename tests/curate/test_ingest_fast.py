"""The columnar fast path gives exactly the lake the per-line path gives."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

from curate.ingest.ingest import IngestConfig, _IdRegistry, ingest
from curate.core.lake import Lake

U = {"role": "user", "content": "hello there"}
A = {"role": "assistant", "content": "hi!"}

# Lines that exercise every rule the fast path must get right (or hand back).
MIXED: list[bytes | dict] = [
    {"id": "a1", "messages": [U, A]},
    {"messages": [U, A]},  # no id: h-<hash>
    {"messages": [U, A]},  # same content: h-<hash>-2
    {"id": "a1", "messages": [U, A]},  # duplicate_record
    {"id": "a1", "messages": [U]},  # duplicate_id_conflict
    {"id": None, "messages": [U]},  # null id stays in metadata
    {"id": "", "messages": [U]},  # empty id stays in metadata
    {"id": 7, "messages": [U]},  # int id -> "7"
    {"id": 7.5, "messages": [U]},  # invalid_field
    {"model": "gpt-4o", "messages": [{"role": "system", "content": "be nice"}, U, A]},
    {"model": None, "messages": [U]},
    {"model": 3, "messages": [U]},  # invalid_field
    {"messages": [{"role": "User", "content": "alias"}]},  # _role metadata
    {"messages": [{"role": "human", "content": "alias"}, {"role": "gpt", "content": "x"}]},
    {"messages": [{"role": "tool", "content": "x"}, U]},  # unknown_role
    {"messages": [{"role": "user", "content": None}, A]},  # null content -> "" -> no_user_content
    {"messages": [{"role": "user"}, U]},  # missing content -> ""
    {"messages": [{"content": "x"}, U]},  # missing_role
    {"messages": [{"role": "user", "content": "a\u0000b"}]},  # NUL removed
    {"messages": [{"role": "user", "content": "\u3000\u00a0 \x1c"}]},  # unicode whitespace only
    {"messages": [{"role": "user", "content": "\u3000x"}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "part"}]}]},  # parts joined
    {"messages": [{"role": "user", "content": 5}]},  # non_string_content
    {"messages": [{"role": "user", "content": "x", "name": "bob"}]},  # message field in metadata
    {"messages": [U], "tstamp": 1700000000},  # tstamp column
    {"messages": [U], "user": "alice"},  # hashed user_id
    {"messages": [U], "extra": {"k": [1, 2]}},  # metadata
    {"messages": [U], "turn": 1},
    {"messages": []},  # no_user_content
    {"messages": "hi"},  # messages_not_list
    {"messages": [None]},  # message_not_object
    {"messages": [U] * 2001},  # too_many_messages
    {"messages": [{"role": "user", "content": "x" * 1_000_001}]},  # message_too_large
    {"conversation_id": "c9", "messages": [U]},  # the other id field
    {"text": "no messages"},  # missing_messages
    [1, 2],  # not_an_object
    b'{"messages": [{"role": "user", "content": "trunc',  # invalid_json
    b'{"messages": [{"role": "user", "content": "caf\xe9"}]}',  # invalid_utf8
    b'{"messages": [{"role": "user", "content": "\\ud800"}]}',  # lone surrogate
    b'{"\\u0069d": "esc", "messages": [{"role": "user", "content": "escaped key"}]}',
    b'{"messages": [{"role": "user", "content": "a"}], "messages": [{"role": "user", "content": "b"}]}',
    b'{"messages": [{"role": "user", "content": "one"}]} {"messages": [{"role": "user", "content": "two"}]}',
    b'{"messages": [{"role": "user",\n "content": "split over lines"}]}',
    b"   ",
    b"",
    b'  {"messages": [{"role": "user", "content": "leading space"}]}',
    b'{"messages": [{"role": "user", "content": "crlf"}]}\r',
    b'{"messages": [{"role": "user", "content": "emoji \\ud83d\\ude00 caf\\u00e9"}]}',
    b'{"messages": [{"role": "user", "content": "raw \xf0\x9f\x98\x80 caf\xc3\xa9"}]}',
    b'{"messages": [{"role": "user", "content": "not \\"id\\" key"}]}',
    b'{"messages": [{"role": "user", "content": "x"}], "model": NaN}',
]


def _write(path: Path, lines: list, repeat: int = 1, gz: bool = False) -> Path:
    body = b""
    for k in range(repeat):
        for item in lines:
            if isinstance(item, bytes):
                body += item + b"\n"
            elif isinstance(item, dict) and k and "id" in item and isinstance(item["id"], str) and item["id"]:
                body += json.dumps({**item, "id": f"{item['id']}-{k}"}).encode() + b"\n"
            else:
                body += json.dumps(item, ensure_ascii=bool(k % 2)).encode() + b"\n"
    path.write_bytes(gzip.compress(body) if gz else body)
    return path


def _content(lake: Lake) -> tuple[list, list]:
    con = lake.connect()
    rows = con.execute("SELECT * EXCLUDE (run_id) FROM conversations ORDER BY source_file, source_index").fetchall()
    rejects = con.execute("SELECT * EXCLUDE (run_id) FROM quarantine ORDER BY source_file, source_index").fetchall()
    order = con.execute("SELECT source_file, source_index FROM conversations").fetchall()  # file order
    con.close()
    return rows, rejects, order


@pytest.mark.parametrize("chunk_bytes,workers,gz", [(4 << 20, 2, False), (300, 1, False), (2048, 2, True)])
def test_fast_path_equals_per_line_path_on_mixed_file(tmp_path, chunk_bytes, workers, gz):
    src = _write(tmp_path / ("mixed.jsonl" + (".gz" if gz else "")), MIXED, repeat=3, gz=gz)
    fast = Lake(tmp_path / "fast")
    slow = Lake(tmp_path / "slow")
    s_fast = ingest(fast, [src], IngestConfig(format="openai", chunk_bytes=chunk_bytes, workers=workers))
    s_slow = ingest(slow, [src], IngestConfig(format="openai", fast_path=False))
    assert s_fast.files[0].reasons == s_slow.files[0].reasons
    assert (s_fast.total, s_fast.kept, s_fast.quarantined) == (s_slow.total, s_slow.kept, s_slow.quarantined)
    assert _content(fast) == _content(slow)
    assert s_fast.kept > 60 and s_fast.quarantined > 40


def test_fast_path_takes_most_clean_lines(tmp_path):
    """The fast path must actually be used: a clean file is accepted without per-line parsing."""
    from curate.ingest.normalize import Limits
    from curate.ingest.normalize_columnar import normalize_chunk
    from curate.ingest.read_logs import LineChunk

    body = b"".join(json.dumps({"id": f"i{i}", "messages": [U, A]}).encode() + b"\n" for i in range(1000))
    res = normalize_chunk(LineChunk(body, 1, 0), Limits())
    assert res.fast.num_rows == 1000 and res.slow == []


def test_ids_across_chunks_and_reruns(tmp_path):
    """Duplicate ids split across chunk boundaries and across files resolve as on the per-line path."""
    lines = [{"id": f"x{i % 50}", "messages": [{"role": "user", "content": f"m{i % 70}"}]} for i in range(400)]
    a = _write(tmp_path / "a.jsonl", lines)
    b = _write(tmp_path / "b.jsonl", lines[::-1])
    fast, slow = Lake(tmp_path / "fast"), Lake(tmp_path / "slow")
    ingest(fast, [a, b], IngestConfig(chunk_bytes=500))
    ingest(slow, [a, b], IngestConfig(fast_path=False))
    assert _content(fast) == _content(slow)


def test_python_whitespace_table_is_complete():
    from curate.ingest.normalize_columnar import PY_SPACES

    assert set(PY_SPACES) == {c for c in range(sys.maxunicode + 1) if chr(c).isspace()}


def test_file_with_extra_fields_everywhere_falls_back_and_matches(tmp_path):
    """Every line carries a field the fast path does not map: it gives up early, same lake."""
    lines = [{"id": f"e{i}", "created": 1700000000 + i, "messages": [U, A]} for i in range(25_000)]
    src = _write(tmp_path / "extra.jsonl", lines)
    fast, slow = Lake(tmp_path / "fast"), Lake(tmp_path / "slow")
    ingest(fast, [src])
    ingest(slow, [src], IngestConfig(fast_path=False))
    assert _content(fast) == _content(slow)


def test_claim_all_registers_a_clean_chunk_and_changes_nothing_otherwise(tmp_path):
    reg = _IdRegistry(Lake(tmp_path / "lake"), set())
    assert reg.claim_all(["a", "h-" + "1" * 24], ["ha", "1" * 64])
    assert reg.ids == {"a": "ha", "h-" + "1" * 24: "1" * 64}
    before = dict(reg.ids)
    assert not reg.claim_all(["c", "a"], ["hc", "ha2"])  # "a" is taken
    assert not reg.claim_all(["d", "d"], ["hd", "hd2"])  # a repeat inside the chunk
    assert reg.ids == before
    # Where claim_all refuses, assign decides row by row: the repeated hash id gets a suffix.
    assert reg.assign(None, "1" * 64) == ("h-" + "1" * 24 + "-2", None, "")
    # And where it accepts, the ids are the ones assign gives in order.
    other = _IdRegistry(Lake(tmp_path / "lake2"), set())
    assert [other.assign(s, h)[0] for s, h in [("x", "hx"), (None, "2" * 64)]] == ["x", "h-" + "2" * 24]
    assert reg.claim_all(["x", "h-" + "2" * 24], ["hx", "2" * 64]) and all(reg.ids[k] == v for k, v in other.ids.items())
