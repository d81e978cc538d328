"""The columnar fast path of ingest: a chunk of OpenAI-messages JSONL lines at a time.

`normalize_chunk` parses a `LineChunk` with pyarrow's C++ JSON reader against an explicit
schema and applies `curate.ingest.normalize`'s rules with vectorised Arrow compute. It only
*accepts* rows it can prove the per-record path would keep unchanged; every other line
(bad JSON, anything to quarantine, anything whose metadata would be non-empty, anything
ambiguous) is handed back to the per-line path (`parse_line` + `normalize`). A good line
sent to the per-line path costs time, never correctness, so every check here errs that way.

A line is a fast-path candidate when:
- it starts with ``{`` and ends with ``}`` (so no JSON value can span two lines: the row
  count of a successful parse equals the line count exactly when each line is one object);
- it is valid UTF-8 (pyarrow.json does not check);
- it has no ``\\u00XX`` escape of an ASCII character (keys cannot hide behind escapes,
  and NUL, which the per-record path strips from content, can only arrive as ``\\u0000``:
  pyarrow rejects a raw NUL byte);
- it parses against {id: string, model: string, messages: [{role: string, content: string}]}
  (pyarrow rejects other types, duplicate keys, bad UTF-8 and lone surrogates);
- it has no other field, at the top or in a message (a field pyarrow infers is checked
  per row, and a null one by looking for its quoted key in the raw line);
- every role is exactly ``system``, ``user`` or ``assistant`` (any alias would be kept in
  metadata as ``_role``), no content holds NUL or exceeds `max_message_chars`, there are
  1..`max_messages` messages, and a user message has a non-whitespace character (Python's
  ``str.isspace`` definition, as a regex class);
- ``id``, when present, is a non-empty string; when null, the raw line has no
  ``"id"`` key (a present null id stays in metadata).

When pyarrow rejects a chunk, the row number in its message (when there is one) names the
line to hand back, and the lines around it are parsed again; otherwise the chunk is
bisected. Lines of parts that still fail at 16 lines or fewer go to the per-line path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import xxhash

from curate.ingest.normalize import Limits
from curate.ingest.read_logs import LineChunk, RawRecord, chunk_records, parse_line

_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
FAST_SCHEMA = pa.schema([("id", pa.string()), ("model", pa.string()), ("messages", pa.list_(_MESSAGE))])
_FAST_FIELDS = {"id", "model", "messages"}
_ROLES = pa.array(["system", "user", "assistant"])
_ROW_HINT = re.compile(r"\bin row (\d+)")
_GROUP_LINES = 256  # lines per read_json call: a failure re-parses at most this many
_MIN_BISECT = 8
_MAX_FAILURES = 256  # parse failures tolerated per chunk before the rest goes per-line


# The characters for which Python's str.isspace() is true (tests check the list is complete).
PY_SPACES = (9, 10, 11, 12, 13, 28, 29, 30, 31, 32, 133, 160, 5760, *range(8192, 8203), 8232, 8233, 8239, 8287, 12288)


def _not_space_regex() -> str:
    """A regex class (RE2) matching any character that Python's str.isspace() rejects."""
    return "[^" + "".join(f"\\x{{{c:x}}}" for c in PY_SPACES) + "]"


_NOT_SPACE = _not_space_regex()
_OUT_SCHEMA = pa.schema(
    [("source_index", pa.int64()), ("source_id", pa.string()), ("model", pa.string()),
     ("conversation", pa.list_(_MESSAGE)), ("turn", pa.int32()), ("content_hash", pa.string())]
)


@dataclass
class ChunkResult:
    """Rows the fast path accepted (line order) and the lines it handed to the per-line path."""

    fast: pa.Table  # _OUT_SCHEMA
    slow: list[RawRecord] = field(default_factory=list)  # parsed by parse_line, line order
    starts: np.ndarray | None = None  # line start offsets within the chunk
    ends: np.ndarray | None = None  # line end offsets (before the newline)

    def raw_line(self, chunk: LineChunk, source_index: int) -> tuple[int, bytes]:
        """(stream offset, raw bytes) of a line of the chunk, as the per-line path stores them."""
        i = source_index - chunk.first_line
        s, e = int(self.starts[i]), int(self.ends[i])
        return chunk.offset + s, chunk.data[s:e].rstrip(b"\r\n")


def line_bounds(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, before the newline) of every line of `data`."""
    arr = np.frombuffer(data, np.uint8)
    nl = np.flatnonzero(arr == 10)
    ends = nl if data.endswith(b"\n") else np.append(nl, len(data))
    starts = np.empty(len(ends), np.int64)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    return starts, ends.astype(np.int64)


def _candidates(data: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    arr = np.frombuffer(data, np.uint8)
    ok = ends - starts >= 2
    idx = np.flatnonzero(ok)
    good = (arr[starts[idx]] == ord("{")) & (arr[ends[idx] - 1] == ord("}"))
    ok[idx[~good]] = False
    # \u00XX escapes of ASCII characters (XX < 0x80): a key could hide behind one.
    pos = data.find(b"\\u00")
    if pos >= 0:
        hits = []
        while pos >= 0:
            if data[pos + 4:pos + 5] in (b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7"):
                hits.append(pos)
            pos = data.find(b"\\u00", pos + 4)
        if hits:
            ok[np.searchsorted(starts, np.asarray(hits), side="right") - 1] = False
    return ok


def _buffer(data: bytes, starts: np.ndarray, ends: np.ndarray, idx: np.ndarray) -> pa.Buffer:
    """The lines `idx` (sorted), newline-terminated, zero-copy when they are contiguous."""
    mv = memoryview(data)
    first, last = int(idx[0]), int(idx[-1])
    if last - first + 1 == len(idx):
        end = int(ends[last])
        if end < len(data):
            return pa.py_buffer(mv[int(starts[first]):end + 1])
        return pa.py_buffer(bytes(mv[int(starts[first]):end]) + b"\n")
    breaks = np.flatnonzero(np.diff(idx) != 1)
    run_first = np.concatenate(([0], breaks + 1))
    run_last = np.concatenate((breaks, [len(idx) - 1]))
    pieces = []
    for a, b in zip(idx[run_first].tolist(), idx[run_last].tolist()):
        pieces.append(mv[int(starts[a]):int(ends[b])])
        pieces.append(b"\n")
    return pa.py_buffer(b"".join(pieces))


def _read(buf: pa.Buffer) -> pa.Table:
    table = pj.read_json(
        pa.BufferReader(buf),
        read_options=pj.ReadOptions(use_threads=False, block_size=max(buf.size + 1, 1 << 16)),
        parse_options=pj.ParseOptions(explicit_schema=FAST_SCHEMA, unexpected_field_behavior="error"),
    )
    # pyarrow.json does not validate UTF-8: a full validation of the string columns does.
    for column in table.columns:
        for piece in column.chunks:
            piece.validate(full=True)
    return table


def _parse_group(data: bytes, starts: np.ndarray, ends: np.ndarray, idx: np.ndarray,
                 out: list[tuple[np.ndarray, pa.Table]], rejected: list[int], budget: list[int]) -> None:
    """Parse lines `idx`; append (lines, table) when each line gave exactly one row.

    On failure the line pyarrow names (row hint) goes to the per-line path and the lines
    around it are parsed again; without a hint the group is bisected.
    """
    if len(idx) == 0:
        return
    try:
        table = _read(_buffer(data, starts, ends, idx))
    except Exception as exc:  # ArrowInvalid; UnicodeDecodeError while formatting a message on bad bytes
        message = str(exc) if not isinstance(exc, UnicodeDecodeError) else ""
    else:
        if table.num_rows == len(idx):
            out.append((idx, table))
            return
        message = ""  # some line held several values: find it by bisecting
    budget[0] -= 1
    if budget[0] <= 0 or len(idx) <= _MIN_BISECT:
        rejected.extend(idx.tolist())
        return
    hint = _ROW_HINT.search(message)
    row = int(hint.group(1)) if hint else -1
    if 0 <= row < len(idx):
        rejected.append(int(idx[row]))
        _parse_group(data, starts, ends, idx[:row], out, rejected, budget)
        _parse_group(data, starts, ends, idx[row + 1:], out, rejected, budget)
    else:
        mid = len(idx) // 2
        _parse_group(data, starts, ends, idx[:mid], out, rejected, budget)
        _parse_group(data, starts, ends, idx[mid:], out, rejected, budget)


def _lines_array(data: bytes, starts: np.ndarray, n_total: int) -> pa.Array:
    """All lines of the chunk as one zero-copy large_binary array (newlines included)."""
    offsets = np.append(starts, len(data)).astype(np.int64)
    return pa.LargeBinaryArray.from_buffers(pa.large_binary(), n_total, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _np(arr) -> np.ndarray:
    return arr.to_numpy(zero_copy_only=False)


def _accept(table: pa.Table, lines: pa.Array, limits: Limits) -> np.ndarray:
    """Boolean mask of rows the per-record path would keep exactly as the fast path builds them."""
    n = table.num_rows
    msgs = table.column("messages")
    lengths = _np(pc.fill_null(pc.list_value_length(msgs), 0))
    ok = _np(msgs.is_valid()) & (lengths >= 1) & (lengths <= limits.max_messages)
    parents = np.repeat(np.arange(n), lengths)
    flat = pc.list_flatten(msgs)
    role = pc.struct_field(flat, "role")
    content = pc.fill_null(pc.struct_field(flat, "content"), "")
    bad = ~_np(flat.is_valid())
    bad |= ~_np(pc.fill_null(pc.is_in(role, _ROLES), False))
    # No NUL check: pyarrow rejects raw NUL bytes and _candidates screens out \u0000 escapes.
    nbytes = _np(pc.binary_length(content))
    if len(nbytes) and nbytes.max() > limits.max_message_chars:  # chars <= bytes: count chars only then
        bad |= _np(pc.greater(pc.utf8_length(content), limits.max_message_chars))
    if bad.any():
        ok[parents[bad]] = False
    user_idx = np.flatnonzero(_np(pc.fill_null(pc.equal(role, "user"), False)))
    has_text = _np(pc.match_substring_regex(content.take(pa.array(user_idx)), _NOT_SPACE))
    with_text = np.zeros(n, bool)
    with_text[parents[user_idx[has_text]]] = True
    ok &= with_text
    # id: a non-empty string without NUL; a null id must be a missing one.
    ids = table.column("id")
    id_null = ~_np(ids.is_valid())
    ok &= ~_np(pc.fill_null(pc.equal(ids, ""), False))
    check = np.flatnonzero(ok & id_null)
    if len(check):
        has_key = _np(pc.match_substring(lines.take(pa.array(check)), '"id"'))
        ok[check[has_key]] = False
    return ok


def _content_hashes(conversation: pa.ListArray) -> list[str]:
    """`normalize.content_hash` for every conversation, over Arrow buffers."""
    flat = pc.list_flatten(conversation)
    per_msg = pc.binary_join_element_wise(
        pc.struct_field(flat, "role"), pa.scalar("\x1f"), pc.struct_field(flat, "content"), pa.scalar("\x1e"), ""
    )
    offsets = conversation.offsets
    base = offsets[0].as_py()
    lists = pa.ListArray.from_arrays(pc.subtract(offsets, base), per_msg)
    joined = pc.binary_join(lists, "").cast(pa.large_string())
    _, off_buf, data_buf = joined.buffers()
    offs = np.frombuffer(off_buf, np.int64)[joined.offset: joined.offset + len(joined) + 1].tolist()
    mv = memoryview(data_buf) if data_buf is not None else memoryview(b"")
    digest = xxhash.xxh3_128_hexdigest
    return [digest(mv[a:b]) for a, b in zip(offs[:-1], offs[1:])]


def normalize_chunk(chunk: LineChunk, limits: Limits) -> ChunkResult:
    """Split a chunk into fast-path rows and per-line records (see the module docstring)."""
    data = chunk.data
    starts, ends = line_bounds(data)
    n_lines = len(starts)
    cand_idx = np.flatnonzero(_candidates(data, starts, ends))
    parsed: list[tuple[np.ndarray, pa.Table]] = []
    rejected: list[int] = []
    budget = [_MAX_FAILURES]
    for g in range(0, len(cand_idx), _GROUP_LINES):
        _parse_group(data, starts, ends, cand_idx[g:g + _GROUP_LINES], parsed, rejected, budget)
    is_fast = np.zeros(n_lines, bool)
    fast = _OUT_SCHEMA.empty_table()
    if parsed:
        parsed.sort(key=lambda pair: int(pair[0][0]))  # bisection appends out of order
        idx = np.concatenate([pair[0] for pair in parsed])
        table = pa.concat_tables([pair[1] for pair in parsed])
        mask = _accept(table, _lines_array(data, starts, n_lines).take(pa.array(idx)), limits)
        if mask.any():
            is_fast[idx[mask]] = True
            fast = _build(table.filter(pa.array(mask)), chunk.first_line + idx[mask], limits)
    slow = []
    for i in np.flatnonzero(~is_fast).tolist():
        s, e = int(starts[i]), int(ends[i])
        line = data[s:e]
        if line.strip():
            slow.append(parse_line(chunk.first_line + i, chunk.offset + s, line.rstrip(b"\r\n")))
    return ChunkResult(fast, slow, starts, ends)


def per_line_chunk(chunk: LineChunk, limits: Limits) -> ChunkResult:
    """The same result shape with every line on the per-line path (used when the fast path
    is not paying off for a file, e.g. one whose every line carries extra fields)."""
    starts, ends = line_bounds(chunk.data)
    return ChunkResult(_OUT_SCHEMA.empty_table(), list(chunk_records(chunk)), starts, ends)


def _build(table: pa.Table, src_index: np.ndarray, limits: Limits) -> pa.Table:
    msgs = table.column("messages").combine_chunks()
    flat = pc.list_flatten(msgs)
    role = pc.struct_field(flat, "role")
    content = pc.fill_null(pc.struct_field(flat, "content"), "")
    offsets = msgs.offsets
    offsets = pc.subtract(offsets, offsets[0].as_py())
    conversation = pa.ListArray.from_arrays(offsets, pa.StructArray.from_arrays([role, content], fields=list(_MESSAGE)))
    parents = pc.list_parent_indices(conversation).to_numpy(zero_copy_only=False)
    is_user = pc.equal(role, "user").to_numpy(zero_copy_only=False)
    turn = np.bincount(parents[is_user], minlength=len(table)).astype(np.int32)
    return pa.table(
        [pa.array(src_index, pa.int64()), table.column("id").combine_chunks(), table.column("model").combine_chunks(),
         conversation, pa.array(turn, pa.int32()), pa.array(_content_hashes(conversation), pa.string())],
        schema=_OUT_SCHEMA,
    )
