"""Hostile input against ingest: broken encodings, deep nesting, huge fields, gzip bombs,
odd file names and symlinks. Every case ends with records in = kept + quarantined, no
exception, and (where memory is the attack) a bounded peak RSS measured in a subprocess.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from curate.ingest.ingest import IngestConfig, discover, ingest
from curate.core.lake import Lake
from tests.conftest import REPO

GOOD = {"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]}
GOOD_LINE = json.dumps(GOOD).encode()


def _balanced(stats) -> None:
    for f in stats.files:
        assert f.records_in == f.rows_kept + f.rows_quarantined, f
        assert sum(f.reasons.values()) == f.rows_quarantined, f


def _reasons(lake: Lake) -> list[tuple[int, str]]:
    con = lake.connect()
    rows = con.execute("SELECT source_index, reason FROM quarantine ORDER BY source_index").fetchall()
    con.close()
    return rows


def _peak_rss_mib(code: str, *args: str) -> tuple[float, str]:
    """Run `code` in a fresh interpreter; return its peak RSS (MiB) and stdout."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec, so a child of a big
    # pytest process would report the parent's peak (this broke the test in a full run).
    wrapper = code + (
        "\nprint('MAXRSS', next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')))"
    )
    proc = subprocess.run([sys.executable, "-c", wrapper, *args], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("MAXRSS"))
    return int(line.split()[1]) / 1024, proc.stdout


# ---- encodings ---------------------------------------------------------------------
ENCODING_CASES = {
    "latin1": (b'{"messages": [{"role": "user", "content": "caf\xe9"}]}', "invalid_utf8"),
    "overlong": (b'{"messages": [{"role": "user", "content": "\xc0\xaf"}]}', "invalid_utf8"),
    "surrogate_bytes": (b'{"messages": [{"role": "user", "content": "\xed\xa0\x80"}]}', "invalid_utf8"),
    "lone_surrogate_escape": (b'{"messages": [{"role": "user", "content": "\\ud800"}]}', "invalid_json"),
    "reversed_surrogates": (b'{"messages": [{"role": "user", "content": "\\udc00\\ud800"}]}', "invalid_json"),
    "truncated_multibyte": (b'{"messages": [{"role": "user", "content": "\xe4\xbd"}]}', "invalid_utf8"),
    "nul_escape": (b'{"messages": [{"role": "user", "content": "a\\u0000b"}]}', None),  # kept, NUL stripped
    "raw_nul_byte": (b'{"messages": [{"role": "user", "content": "a\x00b"}]}', "invalid_json"),
    "escaped_key": (b'{"\\u0069d": null, "messages": [{"role": "user", "content": "x"}]}', None),
}


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "per_line"])
@pytest.mark.parametrize("case", list(ENCODING_CASES))
def test_broken_encodings_in_jsonl(lake, tmp_path, case, fast):
    line, reason = ENCODING_CASES[case]
    src = tmp_path / "enc.jsonl"
    src.write_bytes(GOOD_LINE + b"\n" + line + b"\n" + GOOD_LINE + b"\n")
    stats = ingest(lake, [src], IngestConfig(format="openai", fast_path=fast))
    _balanced(stats)
    assert stats.total == 3
    if reason is None:
        assert stats.kept == 3
    else:
        assert _reasons(lake) == [(2, reason)]


@pytest.mark.parametrize("bom,encoding", [(b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"", "utf-16-le")])
def test_whole_file_in_another_encoding(lake, tmp_path, bom, encoding):
    """A UTF-16 or BOM-prefixed file: every line is accounted for, none crashes the run."""
    text = "\n".join(json.dumps(GOOD) for _ in range(5)) + "\n"
    src = tmp_path / "other.jsonl"
    src.write_bytes(bom + text.encode(encoding))
    stats = ingest(lake, [src], IngestConfig(format="openai"))
    _balanced(stats)
    assert stats.total >= 1
    assert lake.stats()["balanced"]


def test_corrupt_deflate_stream_is_quarantined(lake, tmp_path):
    """Bad deflate data raises zlib.error (not OSError) inside gzip: it must end as a row."""
    data = bytearray(gzip.compress(b"\n".join([GOOD_LINE] * 5000) + b"\n"))
    data[len(data) // 2: len(data) // 2 + 64] = b"\x00" * 64
    src = tmp_path / "corrupt.jsonl.gz"
    src.write_bytes(bytes(data))
    stats = ingest(lake, [src])
    _balanced(stats)
    assert stats.files[0].reasons.get("invalid_json", 0) >= 1


# ---- deep nesting ------------------------------------------------------------------
def test_100k_nested_arrays_in_jsonl_is_quarantined(lake, tmp_path):
    deep = b"[" * 100_000 + b"]" * 100_000
    src = tmp_path / "deep.jsonl"
    src.write_bytes(GOOD_LINE + b"\n" + deep + b"\n" + b'{"messages": ' + deep + b"}\n" + GOOD_LINE + b"\n")
    stats = ingest(lake, [src], IngestConfig(format="openai"))
    _balanced(stats)
    assert (stats.total, stats.kept) == (4, 2)
    assert _reasons(lake) == [(2, "invalid_json"), (3, "invalid_json")]


def test_100k_nested_arrays_in_json_array_is_quarantined(lake, tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    src = tmp_path / "deep.json"
    good = {"conversations": [{"from": "human", "value": "hi"}]}
    src.write_text("[" + json.dumps(good) + ", " + deep + ", " + json.dumps(good) + "]")
    stats = ingest(lake, [src], IngestConfig(format="sharegpt"))
    _balanced(stats)
    assert stats.kept == 1 and stats.quarantined == 1  # the rest of the array is one record


@pytest.mark.parametrize("depth", [300, 900])
def test_nesting_that_parses_but_cannot_be_stored(lake, tmp_path, depth):
    """orjson reads 1024 levels but writes 255: such a field must not crash the metadata JSON."""
    deep = b"[" * depth + b"]" * depth
    src = tmp_path / "deep.jsonl"
    src.write_bytes(GOOD_LINE + b"\n" + b'{"messages": [{"role": "user", "content": "x"}], "extra": ' + deep + b"}\n")
    stats = ingest(lake, [src], IngestConfig(format="openai"))
    _balanced(stats)
    assert _reasons(lake) == [(2, "nesting_too_deep")]


def test_big_integer_in_json_array_is_quarantined(lake, tmp_path):
    """Python's json keeps 2**70 as an int, which orjson cannot write into metadata."""
    src = tmp_path / "big.json"
    src.write_text('[{"conversations": [{"from": "human", "value": "hi"}], "n": ' + str(2**70) + "}]")
    stats = ingest(lake, [src], IngestConfig(format="sharegpt"))
    _balanced(stats)
    assert _reasons(lake) == [(0, "invalid_field")]


# ---- huge fields -------------------------------------------------------------------
def test_huge_line_is_skipped_with_bounded_memory(tmp_path):
    """A 120 MB line (limit 8 MB) is quarantined without being held in memory."""
    src = tmp_path / "huge.jsonl"
    with open(src, "wb") as fh:
        fh.write(GOOD_LINE + b"\n")
        fh.write(b'{"messages": [{"role": "user", "content": "')
        block = b"x" * (1 << 20)
        for _ in range(120):
            fh.write(block)
        fh.write(b'"}]}\n' + GOOD_LINE + b"\n")
    code = ("import sys; from curate.core.lake import Lake; from curate.ingest.ingest import ingest, IngestConfig;"
            "s = ingest(Lake(sys.argv[1]), [sys.argv[2]], IngestConfig(max_record_bytes=8 << 20));"
            "print('STATS', s.total, s.kept, s.quarantined, s.as_dict())")
    peak, out = _peak_rss_mib(code, str(tmp_path / "lake"), str(src))
    assert "STATS 3 2 1" in out and "dropped_record_too_large" in out
    assert peak < 700, f"peak RSS {peak:.0f} MiB for a 120 MB line"


def test_message_over_the_char_limit_is_quarantined(lake, tmp_path):
    src = tmp_path / "big.jsonl"
    src.write_bytes(GOOD_LINE + b"\n" + json.dumps({"messages": [{"role": "user", "content": "y" * 2_000_000}]}).encode() + b"\n")
    stats = ingest(lake, [src])
    _balanced(stats)
    assert _reasons(lake) == [(2, "message_too_large")]


# ---- gzip bombs --------------------------------------------------------------------
def _zeros_member(n_bytes: int) -> bytes:
    """One gzip member of n_bytes zero bytes (about 1 KB compressed per MB)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\x00" * (1 << 20)
    parts = [comp.compress(block) for _ in range(n_bytes >> 20)]
    parts.append(comp.flush())
    return b"".join(parts)


def _bomb(path: Path, head: bytes, gib: int, member_mib: int = 1024) -> Path:
    """`head` then `gib` GiB of zeros as concatenated gzip members (a valid multi-member gzip)."""
    member = _zeros_member(member_mib << 20)
    with open(path, "wb") as fh:
        fh.write(gzip.compress(head))
        for _ in range((gib << 10) // member_mib):
            fh.write(member)
    return path


def test_gzip_bomb_stops_at_the_decompressed_limit(tmp_path):
    src = _bomb(tmp_path / "bomb.jsonl.gz", b"\n".join([GOOD_LINE] * 3) + b"\n", gib=10, member_mib=64)
    assert src.stat().st_size < 20 << 20
    code = ("import sys; from curate.core.lake import Lake; from curate.ingest.ingest import ingest, IngestConfig;"
            "s = ingest(Lake(sys.argv[1]), [sys.argv[2]], IngestConfig(max_decompressed_bytes=128 << 20));"
            "print('STATS', s.total, s.kept, s.quarantined, s.as_dict())")
    peak, out = _peak_rss_mib(code, str(tmp_path / "lake"), str(src))
    assert "STATS 4 3 1" in out and "dropped_decompressed_too_large" in out, out
    assert peak < 700


def test_gzip_bomb_as_json_array_is_capped(lake, tmp_path):
    src = _bomb(tmp_path / "bomb.json.gz", b'[{"conversations": [{"from": "human", "value": "hi"}]}, "', gib=1, member_mib=64)
    stats = ingest(lake, [src], IngestConfig(max_array_bytes=64 << 20))
    _balanced(stats)
    assert stats.files[0].reasons == {"decompressed_too_large": 1}


@pytest.mark.slow
def test_10gib_gzip_bomb_with_default_limits(tmp_path):
    """10 GiB of zeros, default config: read to the end with flat memory, one record quarantined."""
    src = _bomb(tmp_path / "bomb.jsonl.gz", GOOD_LINE + b"\n", gib=10)
    code = ("import sys; from curate.core.lake import Lake; from curate.ingest.ingest import ingest;"
            "s = ingest(Lake(sys.argv[1]), [sys.argv[2]]);"
            "print('STATS', s.total, s.kept, s.quarantined, s.as_dict())")
    peak, out = _peak_rss_mib(code, str(tmp_path / "lake"), str(src))
    assert "STATS 2 1 1" in out and "dropped_record_too_large" in out, out
    assert peak < 700


# ---- file names, listings, symlinks -------------------------------------------------
ODD_NAMES = ["it's.jsonl", "a\nb.jsonl", "'; DROP TABLE source_files; --.jsonl", "-rf.jsonl", " space .jsonl",
             "ünïcödé.jsonl", '"quoted".jsonl', "back\\slash.jsonl", "%s%n.jsonl", "x" * 200 + ".jsonl"]


def test_odd_file_names_ingest_and_query(lake, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for i, name in enumerate(ODD_NAMES):
        (logs / name).write_bytes(json.dumps({"id": f"c{i}", **GOOD}).encode() + b"\n")
    stats = ingest(lake, [logs])
    _balanced(stats)
    assert stats.kept == len(ODD_NAMES)
    con = lake.connect()
    paths = {r[0] for r in con.execute("SELECT path FROM source_files").fetchall()}
    assert {Path(p).name for p in paths} == set(ODD_NAMES)
    assert con.execute("SELECT count(*) FROM conversations").fetchone()[0] == len(ODD_NAMES)
    # the lake's own files are named by hashes, never by source names
    assert all(p.name.count(".") == 1 for p in (lake.root / "conversations").iterdir())


def test_non_utf8_file_name(lake, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    name = os.fsdecode(b"bad\xff\xfename.jsonl")
    (logs / name).write_bytes(GOOD_LINE + b"\n")
    stats = ingest(lake, [logs])
    _balanced(stats)
    assert stats.kept == 1
    assert lake.stats()["balanced"]
    again = ingest(lake, [logs])  # the catalog key round-trips: unchanged, not re-read
    assert [f.action for f in again.files] == ["unchanged"]


def test_folder_walk_does_not_follow_symlinks(lake, tmp_path):
    outside = tmp_path / "secret.jsonl"
    outside.write_bytes(json.dumps({"messages": [{"role": "user", "content": "TOP SECRET"}]}).encode() + b"\n")
    logs = tmp_path / "logs"
    (logs / "sub").mkdir(parents=True)
    (logs / "real.jsonl").write_bytes(GOOD_LINE + b"\n")
    (logs / "link.jsonl").symlink_to(outside)
    (logs / "sub" / "loop").symlink_to(logs, target_is_directory=True)
    (logs / "dangling.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    os.mkfifo(logs / "fifo.jsonl")  # reading it would block forever
    files = discover([logs])
    assert files == [logs / "real.jsonl"]
    stats = ingest(lake, [logs])
    assert stats.kept == 1
    con = lake.connect()
    assert con.execute("SELECT count(*) FROM conversations WHERE conversation[1].content = 'TOP SECRET'").fetchone()[0] == 0


def test_explicit_symlink_argument_is_followed(lake, tmp_path):
    """A path the user names is read even when it is a symlink (their choice)."""
    target = tmp_path / "real.jsonl"
    target.write_bytes(GOOD_LINE + b"\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    assert ingest(lake, [link]).kept == 1


def test_special_file_argument_is_a_clear_error(lake, tmp_path):
    from curate.core.errors import LakeError

    os.mkfifo(tmp_path / "fifo.jsonl")
    with pytest.raises(LakeError, match="not a regular file"):
        ingest(lake, [tmp_path / "fifo.jsonl"])


@pytest.mark.parametrize("damage", ["data_page", "footer", "column_name", "magic_only"])
def test_corrupt_parquet_is_quarantined_not_raised(lake, tmp_path, damage):
    """Found by atheris: a corrupt Parquet data page raised OSError out of ingest and
    stopped it for every file. Rows before the damage are kept, the rest is one record."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"conversation_id": f"c{i}", "conversation": [{"role": "user", "content": f"question {i} " * 20}]}
            for i in range(50)]
    good = tmp_path / "good.parquet"
    pq.write_table(pa.Table.from_pylist(rows), good, compression="snappy", row_group_size=25)
    data = bytearray(good.read_bytes())
    if damage == "data_page":  # scribble over the second row group's first column, keep the footer
        col = pq.ParquetFile(good).metadata.row_group(1).column(0)
        start, end = col.data_page_offset, col.data_page_offset + col.total_compressed_size
        data[start:end] = b"\xa5" * (end - start)
    elif damage == "footer":  # a footer length past the start of the file
        data[-8:-4] = (len(data) + 100).to_bytes(4, "little")
    elif damage == "column_name":  # found by atheris in CI: a footer naming a column in invalid UTF-8
        data = bytearray(bytes(data).replace(b"conversation_id", b"\x8eonversation_id"))
    else:
        data = bytearray(b"PAR1 not really parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(bytes(data))
    other = tmp_path / "other.jsonl"
    other.write_bytes(GOOD_LINE + b"\n")
    stats = ingest(lake, [bad, other])
    _balanced(stats)
    by_name = {Path(f.path).name: f for f in stats.files}
    assert by_name["other.jsonl"].rows_kept == 1  # the other file is not lost with it
    f = by_name["bad.parquet"]
    assert f.reasons == {"corrupt_parquet": 1}, f
    assert f.rows_kept == (25 if damage == "data_page" else 0), f
    assert lake.stats()["balanced"]


def test_invalid_utf8_in_a_parquet_string_column_is_quarantined_per_row(lake, tmp_path):
    """Found by atheris: Parquet does not validate UTF-8, and a bad string made
    `to_pylist` raise UnicodeDecodeError out of ingest. Only the bad row is quarantined."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = pa.array([b"c0", b"c1-\xff\xfe", b"c2"], pa.binary())
    ids = pa.Array.from_buffers(pa.string(), len(ids), ids.buffers())  # no validation
    conv = pa.array([[{"role": "user", "content": f"question {i}"}] for i in range(3)])
    path = tmp_path / "bad_utf8.parquet"
    pq.write_table(pa.table({"conversation_id": ids, "conversation": conv}), path)
    stats = ingest(lake, [path])
    _balanced(stats)
    (f,) = stats.files
    assert (f.records_in, f.rows_kept, f.reasons) == (3, 2, {"invalid_utf8": 1}), f
    assert _reasons(lake) == [(1, "invalid_utf8")]
