"""Property-based tests of ingest: generated good and broken records through every reader.

Laws checked for every generated file (OpenAI JSONL, ShareGPT array and JSONL, LMSYS JSONL
and Parquet; each plain and gzip-compressed):
- no exception escapes `ingest`;
- records in = rows kept + rows quarantined, and records in is the number of records
  written (non-blank lines, array elements, Parquet rows);
- the columnar fast path and the per-line path give identical lakes.

The default run (10 examples each) keeps to well under a minute on an idle machine;
`-m slow` runs the same laws with 200 examples each.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.ingest.ingest import IngestConfig, ingest
from curate.core.lake import Lake
from curate.ingest.read_logs import _array_lines

FAST = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- generated values ------------------------------------------------------------
SPACES = " \t\u00a0\u2003\u3000\x1c"
text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=SPACES, max_size=4),
    st.sampled_from(["hello", "Hi!", "a\x00b", "😀 emoji", "naïve café", "你好", "line\nbreak", "\\u0000", "\"id\""]),
)
role = st.one_of(
    st.sampled_from(["user", "assistant", "system", "User", " user ", "human", "gpt", "bot", "tool", "narrator", ""]),
    st.none(), st.integers(), st.lists(st.integers(), max_size=2),
)
content = st.one_of(
    text, text, text, st.none(), st.integers(), st.floats(allow_nan=False),
    st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image"]), "text": text}), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False), text)
ident = st.one_of(st.none(), st.just(""), st.text(max_size=12), st.integers(), st.booleans(), st.sampled_from(["dup", "dup2"]))
extra_fields = st.dictionaries(
    st.sampled_from(["name", "tstamp", "created", "user", "user_id", "turn", "language", "weird key", "id"]),
    scalar, max_size=2,
)


def message(role_key: str, content_key: str):
    return st.builds(
        lambda r, c, extra, drop: {**({} if drop == "role" else {role_key: r}),
                                   **({} if drop == "content" else {content_key: c}), **extra},
        st.one_of(st.sampled_from(["user", "assistant", "user"]), role),
        content,
        st.dictionaries(st.sampled_from(["name", "weight"]), scalar, max_size=1),
        st.sampled_from(["", "", "", "", "role", "content"]),
    )


def record(fmt: str):
    role_key, content_key, list_key, id_key = {
        "openai": ("role", "content", "messages", "id"),
        "sharegpt": ("from", "value", "conversations", "id"),
        "lmsys": ("role", "content", "conversation", "conversation_id"),
    }[fmt]
    msgs = st.one_of(st.lists(message(role_key, content_key), max_size=5), st.lists(message(role_key, content_key), max_size=5),
                     scalar, st.lists(scalar, max_size=2))
    return st.builds(
        lambda m, i, model, extra, drop: {
            **({} if drop else {list_key: m}), **({} if i is None else {id_key: i}),
            **({} if model is None else {"model": model}), **extra},
        msgs, ident, st.one_of(st.none(), st.sampled_from(["gpt-4o", "vicuna-13b"]), st.integers()),
        extra_fields, st.sampled_from([False] * 9 + [True]),
    )


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def broken(good: bytes) -> st.SearchStrategy[bytes]:
    """Bytes that are not a valid record, never containing a newline."""
    return st.one_of(
        st.integers(1, max(1, len(good) - 1)).map(lambda k: good[:k]),  # truncated
        st.integers(0, max(0, len(good) - 1)).map(lambda k: good[:k] + b"\xff\xfe" + good[k:]),  # invalid UTF-8
        st.sampled_from([b"[1, 2]", b"42", b'"text"', b"null", b"{", b"}", b'{"messages": NaN}', b"\x00\x01\x02",
                         b'{"a": 1} {"b": 2}', b'{"messages": [{"role": "user", "content": "\\ud800"}]}']),
        st.integers(100, 3000).map(nested),  # deep nesting: orjson stops at 1024 levels
        st.integers(300, 900).map(lambda d: b'{"messages": [{"role": "user", "content": "x"}], "deep": '
                                  + nested(d) + b"}"),  # parses, too deep for metadata JSON
        st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    )


def dumps(obj: object, ascii_: bool) -> bytes:
    return json.dumps(obj, ensure_ascii=ascii_).encode("utf-8", errors="surrogatepass")


@st.composite
def jsonl_file(draw, fmt: str) -> tuple[bytes, int]:
    """(file bytes, number of records) for a JSONL file with good and broken lines."""
    lines: list[bytes] = []
    for _ in range(draw(st.integers(0, 12))):
        rec = draw(record(fmt))
        raw = dumps(rec, draw(st.booleans()))
        kind = draw(st.sampled_from(["good", "good", "good", "broken", "blank"]))
        if kind == "broken":
            raw = draw(broken(raw))
        elif kind == "blank":
            raw = draw(st.sampled_from([b"", b"   ", b"\t"]))
        lines.append(raw)
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = eol.join(lines) + draw(st.sampled_from([eol, b""]))
    head = data.lstrip()
    if head[:1] == b"[" and not _array_lines(head):
        return data, None  # sniffed as a JSON array document (documented rule): count unknown
    return data, sum(1 for line in data.split(b"\n") if line.strip())


@st.composite
def array_file(draw) -> tuple[bytes, int | None]:
    """(file bytes, number of records, or None when a syntax break merges the rest into one)."""
    elements = draw(st.lists(st.one_of(record("sharegpt"), scalar), max_size=10))
    data = dumps(elements, draw(st.booleans()))
    if draw(st.integers(0, 4)) == 0 and len(data) > 2:
        cut = draw(st.integers(1, len(data) - 1))
        return data[:cut], None
    return data, len(elements)


PARQUET_SCHEMA = pa.schema([
    ("conversation_id", pa.string()), ("model", pa.string()),
    ("conversation", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
    ("turn", pa.int64()), ("language", pa.string()),
])


@st.composite
def parquet_rows(draw) -> list[dict]:
    s_text = st.one_of(st.none(), st.text(max_size=20))
    msg = st.fixed_dictionaries({"role": st.one_of(st.none(), st.sampled_from(["user", "assistant", "tool", "Human"])),
                                 "content": s_text})
    row = st.fixed_dictionaries({
        "conversation_id": st.one_of(st.none(), st.sampled_from(["a", "b", "a"]), st.text(max_size=8)),
        "model": s_text, "conversation": st.one_of(st.none(), st.lists(msg, max_size=4)),
        "turn": st.one_of(st.none(), st.integers(0, 5)), "language": s_text,
    })
    return draw(st.lists(row, max_size=10))


# ---- the laws --------------------------------------------------------------------
@st.composite
def log_folder(draw) -> list[tuple[str, bytes, int | None]]:
    """One file per reader, each plain or gzip: (name, bytes, expected records or None)."""
    files = []
    for fmt in ("openai", "sharegpt", "lmsys"):
        data, n = draw(jsonl_file(fmt))
        files.append((f"{fmt}.jsonl", data, n))
    data, n = draw(array_file())
    files.append(("sharegpt.json", data, n))
    named = []
    for name, data, n in files:
        gz = draw(st.booleans())
        named.append((name + (".gz" if gz else ""), gzip.compress(data) if gz else data, n))
    rows = draw(parquet_rows())
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=PARQUET_SCHEMA), sink,
                   compression=draw(st.sampled_from(["none", "gzip", "zstd"])))
    named.append(("lmsys.parquet", sink.getvalue().to_pybytes(), len(rows)))
    return named


FORMAT_OF = {"openai": "openai", "sharegpt": "sharegpt", "lmsys": "lmsys"}


def _check_folder(files: list[tuple[str, bytes, int | None]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        expected = {}
        for name, data, n in files:
            # each format in its own folder so that --format can be forced per reader
            fmt = name.split(".")[0]
            folder = Path(tmp) / fmt
            folder.mkdir(exist_ok=True)
            (folder / name).write_bytes(data)
            expected[str((folder / name).resolve())] = n
        lake = Lake(Path(tmp) / "lake")
        total = 0
        for fmt in FORMAT_OF:
            config = IngestConfig(format=fmt)
            stats = ingest(lake, [Path(tmp) / fmt], config)
            for f in stats.files:
                assert f.records_in == f.rows_kept + f.rows_quarantined, f
                assert sum(f.reasons.values()) == f.rows_quarantined, f
                n = expected[f.path]
                if n is not None:
                    assert f.records_in == n, f
                elif f.action in ("ingested", "replaced"):
                    assert f.records_in >= 1, f  # a syntax break makes the rest of an array one record
                total += f.records_in
        s = lake.stats()
        assert s["balanced"] and s["records_in"] == total


def _content(lake: Lake) -> tuple[list, list]:
    con = lake.connect()
    rows = con.execute("SELECT * EXCLUDE (run_id) FROM conversations ORDER BY source_file, source_index").fetchall()
    rejects = con.execute("SELECT * EXCLUDE (run_id) FROM quarantine ORDER BY source_file, source_index, reason").fetchall()
    con.close()
    return rows, rejects


def _check_fast_equals_slow(data: bytes, expected: int, gz: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("openai.jsonl" + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(data) if gz else data)
        lakes = []
        for fast in (True, False):
            lake = Lake(Path(tmp) / f"lake-{fast}")
            stats = ingest(lake, [path], IngestConfig(format="openai", fast_path=fast, chunk_bytes=256))
            (f,) = stats.files
            assert f.records_in == f.rows_kept + f.rows_quarantined
            assert expected is None or f.records_in == expected
            lakes.append(lake)
        assert _content(lakes[0]) == _content(lakes[1])


@FAST
@given(files=log_folder())
def test_every_reader_conserves_records(files):
    _check_folder(files)


@FAST
@given(file=jsonl_file("openai"), gz=st.booleans())
def test_openai_fast_path_equals_per_line_path(file, gz):
    _check_fast_equals_slow(*file, gz)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@SLOW
@given(files=log_folder())
def test_every_reader_conserves_records_many(files):
    _check_folder(files)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@SLOW
@given(file=jsonl_file("openai"), gz=st.booleans())
def test_openai_fast_path_equals_per_line_path_many(file, gz):
    _check_fast_equals_slow(*file, gz)
