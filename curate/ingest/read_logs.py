"""Readers: turn a log file into raw records with their source location.

A reader never raises on a bad record: it yields `RawRecord`s whose `obj` is the parsed
JSON value, or whose `error` names why the bytes could not be parsed. Mapping the parsed
value onto the canonical schema is `curate.ingest.normalize`'s job.

Formats: `openai` (OpenAI-messages JSONL), `sharegpt` (JSON array or JSONL with
`conversations: [{from, value}]`), `lmsys` (LMSYS-Chat-1M rows, JSONL or Parquet).
Each may be gzip-compressed; compression is detected from the magic bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from curate.core.errors import CurateError
from curate.core.reasons import Reason

log = logging.getLogger(__name__)

FORMATS = ("openai", "sharegpt", "lmsys")
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
DEFAULT_MAX_DECOMPRESSED = 64 << 30
DEFAULT_MAX_ARRAY_BYTES = 2 << 30
CHUNK_BYTES = 4 << 20  # line chunks handed to the columnar path; small enough to pipeline
_PIECE = 1 << 20  # one read from the (decompressing) stream
# What a corrupt stream raises: gzip's OSError/EOFError, zlib.error for bad deflate data.
STREAM_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(slots=True)
class RawRecord:
    index: int  # line number (1-based) for JSONL, element index (0-based) for arrays and Parquet rows
    offset: int  # byte offset in the (decompressed) stream, -1 when not meaningful
    raw: bytes
    obj: object = None
    error: Reason | None = None
    detail: str = ""


class FormatError(CurateError):
    """The file's format could not be detected or is not supported."""


def open_stream(path: Path) -> io.BufferedIOBase:
    """Open a file for binary reading, decompressing gzip transparently."""
    fh = open(path, "rb")
    head = fh.read(2)
    fh.seek(0)
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=fh, mode="rb")  # type: ignore[return-value]
    return fh


# The format of a file is the one most of its first SNIFF_RECORDS parseable records fit.
SNIFF_RECORDS = 100
# The format a file gets when no record of its head fits any format (a manifest, a
# dataset_info.json): ingest records the file once, as one `not_a_log_file` record.
NOT_A_LOG = "not_a_log_file"


def sniff(path: Path) -> tuple[str, str]:
    """Detect (format, container) for a file; container is 'jsonl', 'json_array', 'json_document' or 'parquet'.

    The format is the one that most of the first `SNIFF_RECORDS` parseable records fit
    (ties go to openai, then sharegpt, then lmsys), so a bad first line costs one quarantined
    record, not the file. When none fits, the format is `NOT_A_LOG`.
    """
    with open(path, "rb") as raw:
        if raw.read(4) == PARQUET_MAGIC:
            return "lmsys", "parquet"
    chunks: list[bytes] = []
    complete = False
    with open_stream(path) as fh:
        try:
            for _ in range(16):
                chunk = fh.read(1 << 16)
                if not chunk:
                    complete = True
                    break
                chunks.append(chunk)
        except STREAM_ERRORS as exc:  # a truncated or corrupt gzip: sniff what decompressed
            log.debug("%s: stopped sniffing at %s", path, exc)
    head = b"".join(chunks)
    stripped = head.lstrip()
    if not stripped:
        return "openai", "jsonl"  # an empty file: any JSONL reader yields nothing
    container = "json_array" if stripped[:1] == b"[" and not _array_lines(stripped) else "jsonl"
    records = _head_records(stripped, container, complete)
    if container == "jsonl" and complete and stripped[:1] == b"{" and not records:
        # A JSON document spread over lines (pretty-printed): one value, not one per line.
        try:
            records = [json.loads(stripped)]
            container = "json_document"
        except (ValueError, RecursionError):
            pass
    votes = Counter(f for f in (detect_format(r) for r in records if isinstance(r, dict)) if f is not None)
    if votes:
        return max(FORMATS, key=lambda f: (votes[f], -FORMATS.index(f))), container
    if not records and b"\n" not in stripped:
        fmt = _detect_from_bytes(stripped)  # one record longer than the sniffed head
        if fmt is not None:
            return fmt, container
    return NOT_A_LOG, container


def _array_lines(head: bytes) -> bool:
    """A JSONL file whose first line is itself an array: the line is complete ("[...]") and
    more lines follow. A JSON array document starts with "[" alone, or with an element
    followed by a comma, so it never looks like that unless it is one line."""
    lines = [ln.strip() for ln in head.split(b"\n", 2)[:2]]
    return len(lines) == 2 and bool(lines[1]) and lines[0].endswith(b"]")


def _detect_from_bytes(head: bytes) -> str | None:
    """Fallback when no whole record fits in the sniffed head (a huge first line)."""
    for key, fmt in ((b'"messages"', "openai"), (b'"conversations"', "sharegpt"), (b'"conversation"', "lmsys")):
        if key in head[:65536]:
            return fmt
    return None


def _head_records(head: bytes, container: str, complete: bool, limit: int = SNIFF_RECORDS) -> list:
    """The first `limit` parseable values of the head (objects or not); unparseable ones are skipped."""
    out: list = []
    if container == "jsonl":
        lines = head.split(b"\n")
        for line in lines if complete or len(lines) == 1 else lines[:-1]:  # a cut last line is not a record
            if not line.strip():
                continue
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
            if len(out) >= limit:
                break
        return out
    text = head.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    pos = text.find("[") + 1
    while len(out) < limit:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError):
            break
        out.append(obj)
    return out


def detect_format(obj: dict) -> str | None:
    """Guess the format of one parsed record from its keys."""
    if "messages" in obj:
        return "openai"
    for key in ("conversations", "items"):
        turns = obj.get(key)
        if isinstance(turns, list) and (not turns or isinstance(turns[0], dict) and "from" in turns[0]):
            return "sharegpt"
    if "conversation" in obj:
        return "lmsys"
    return None


@dataclass(slots=True)
class LineChunk:
    """Complete lines of a JSONL stream: `data` starts at a line start and ends after a newline
    (or at the end of the stream); `first_line` is the 1-based number of its first line."""

    data: bytes
    first_line: int
    offset: int  # byte offset of data[0] in the decompressed stream

    def lines(self) -> Iterator[tuple[int, int, bytes]]:
        """(line number, byte offset, line without its line end) for every line, blank ones too."""
        number, offset = self.first_line, self.offset
        parts = self.data.split(b"\n")
        if self.data.endswith(b"\n"):
            parts.pop()
        for part in parts:
            yield number, offset, part
            number += 1
            offset += len(part) + 1


def read_records(
    path: Path, container: str, *, max_record_bytes: int = 64 << 20,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED, max_array_bytes: int = DEFAULT_MAX_ARRAY_BYTES,
) -> Iterator[RawRecord]:
    """Yield every record of the file, parsed or with the reason it could not be."""
    if container == "jsonl":
        yield from _read_jsonl(path, max_record_bytes, max_decompressed_bytes)
    elif container == "json_array":
        yield from _read_json_array(path, max_record_bytes, min(max_array_bytes, max_decompressed_bytes))
    elif container == "parquet":
        yield from _read_parquet(path)
    elif container == "json_document":
        yield from _read_json_document(path, max_record_bytes)
    else:
        raise FormatError(f"unknown container {container!r}")


def parse_line(index: int, offset: int, line: bytes) -> RawRecord:
    """Parse one JSONL line into a RawRecord (never raises)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as uexc:
            return RawRecord(index, offset, line, error=Reason.INVALID_UTF8, detail=str(uexc)[:300])
        return RawRecord(index, offset, line, error=Reason.INVALID_JSON, detail=str(exc)[:300])
    return RawRecord(index, offset, line, obj=obj)


def chunk_records(chunk: LineChunk) -> Iterator[RawRecord]:
    """The per-line path: parse every non-blank line of a chunk."""
    for number, offset, line in chunk.lines():
        if line.strip():
            yield parse_line(number, offset, line.rstrip(b"\r\n"))


def iter_line_chunks(
    path: Path, max_record_bytes: int, *, chunk_bytes: int = CHUNK_BYTES,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED,
) -> Iterator[LineChunk | RawRecord]:
    """Split a (possibly gzip) JSONL stream into chunks of whole lines, in order.

    Memory stays bounded: a line longer than `max_record_bytes` is skipped without being
    held and yields a `record_too_large` record; a corrupt or truncated compressed stream
    ends with one `invalid_json` record; a stream that decompresses to more than
    `max_decompressed_bytes` (a gzip bomb) ends with one `decompressed_too_large` record.
    Line numbers and offsets are those of the decompressed stream.
    """
    number = 0  # lines completed so far
    offset = 0  # stream offset of the first pending byte
    parts: list[bytes] = []  # pending pieces, joined only when a chunk is cut (no quadratic copying)
    size = 0  # bytes in parts
    complete = 0  # bytes of parts up to and including their last newline
    total = 0
    skipping = False  # inside an oversized line, discarding until its newline
    skip_start = 0
    with open_stream(path) as fh:
        read = fh.read1 if hasattr(fh, "read1") else fh.read
        while True:
            try:
                piece = read(_PIECE)
            except STREAM_ERRORS as exc:
                error = (Reason.INVALID_JSON, f"compressed stream is corrupt or truncated: {exc}")
            else:
                total += len(piece)
                error = None
                if total > max_decompressed_bytes:
                    error = (Reason.DECOMPRESSED_TOO_LARGE,
                             f"stream decompresses to more than max_decompressed_bytes={max_decompressed_bytes};"
                             " this record and the rest of the file are not read")
            if error is not None:
                # What was read before the error is kept; the rest becomes one record.
                if complete:
                    head = b"".join(parts)[:complete]
                    yield from _split_oversized(head, number, offset, max_record_bytes)
                    number += count_newlines(head)
                    offset += complete
                yield RawRecord(number + 1, skip_start if skipping else offset, b"", error=error[0], detail=error[1])
                return
            if not piece:
                if skipping:
                    yield _too_large(number + 1, skip_start, max_record_bytes)
                elif size:
                    yield from _split_oversized(b"".join(parts), number, offset, max_record_bytes)
                return
            if skipping:
                nl = piece.find(b"\n")
                if nl < 0:
                    offset += len(piece)
                    continue
                number += 1
                yield _too_large(number, skip_start, max_record_bytes)
                skipping = False
                offset += nl + 1
                piece = piece[nl + 1:]
                if not piece:
                    continue
            last_nl = piece.rfind(b"\n")
            parts.append(piece)
            if last_nl >= 0:
                complete = size + last_nl + 1
            size += len(piece)
            if size - complete > max_record_bytes:
                # The unfinished line is too long: emit what is complete, skip the rest of it.
                if complete:
                    head = b"".join(parts)[:complete]
                    yield from _split_oversized(head, number, offset, max_record_bytes)
                    number += count_newlines(head)
                    offset += complete
                skipping, skip_start = True, offset
                offset += size - complete
                parts, size, complete = [], 0, 0
                continue
            if complete >= chunk_bytes:
                # `complete` falls in this piece (else an earlier piece had reached chunk_bytes):
                # the chunk is one copy, joined through a view of the piece's head.
                cut = complete - (size - len(piece))
                parts[-1] = memoryview(piece)[:cut]
                head, rest = b"".join(parts), piece[cut:]
                yield from _split_oversized(head, number, offset, max_record_bytes)
                number += count_newlines(head)
                offset += complete
                parts, size, complete = ([rest], len(rest), 0) if rest else ([], 0, 0)


def count_newlines(data: bytes) -> int:
    """`data.count(b"\\n")` in a quarter of the time (bytes.count scans a byte at a time)."""
    import numpy as np

    return int(np.count_nonzero(np.frombuffer(data, np.uint8) == 10))


def _too_large(number: int, offset: int, limit: int) -> RawRecord:
    return RawRecord(number, offset, b"", error=Reason.RECORD_TOO_LARGE,
                     detail=f"line longer than max_record_bytes={limit}; raw bytes not kept")


def _split_oversized(data: bytes, number: int, offset: int, limit: int) -> Iterator[LineChunk | RawRecord]:
    """Yield `data` (complete lines) as chunks, with any line longer than `limit` as a record."""
    if len(data) <= limit + 1:
        yield LineChunk(data, number + 1, offset)
        return
    start = 0
    chunk_start = 0
    line = number
    chunk_first = number + 1
    while start < len(data):
        nl = data.find(b"\n", start)
        end = nl if nl >= 0 else len(data)
        line += 1
        if end - start > limit:
            if chunk_start < start:
                yield LineChunk(data[chunk_start:start], chunk_first, offset + chunk_start)
            yield _too_large(line, offset + start, limit)
            chunk_start = end + 1
            chunk_first = line + 1
        start = end + 1
    if chunk_start < len(data):
        yield LineChunk(data[chunk_start:], chunk_first, offset + chunk_start)


def iter_lines(path: Path, max_record_bytes: int) -> Iterator[tuple[int, int, bytes | None, str]]:
    """Yield (line_number, byte_offset, line, error) for non-blank lines.

    `line` is None with an error message for a corrupt stream, or with "" for an oversized line.
    """
    for item in iter_line_chunks(path, max_record_bytes):
        if isinstance(item, RawRecord):
            yield item.index, item.offset, None, "" if item.error == Reason.RECORD_TOO_LARGE else item.detail
            continue
        for number, offset, line in item.lines():
            if line.strip():
                yield number, offset, line.rstrip(b"\r\n"), ""


def _read_jsonl(path: Path, max_record_bytes: int, max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED) -> Iterator[RawRecord]:
    for item in iter_line_chunks(path, max_record_bytes, max_decompressed_bytes=max_decompressed_bytes):
        if isinstance(item, RawRecord):
            yield item
        else:
            yield from chunk_records(item)


def _read_json_array(
    path: Path, max_record_bytes: int, max_array_bytes: int = DEFAULT_MAX_ARRAY_BYTES
) -> Iterator[RawRecord]:
    """Elements of a top-level JSON array, decoded one at a time.

    The whole document is held in memory, so it is read only up to `max_array_bytes`
    (decompressed); a larger one is quarantined as one `decompressed_too_large` record.
    A syntax error inside the array makes the rest of the file one quarantined record
    (the decoder cannot resynchronise reliably), with its byte offset in the detail.
    """
    data = _read_whole(path, max_array_bytes, Reason.DECOMPRESSED_TOO_LARGE,
                       f"JSON array document larger than max_array_bytes={max_array_bytes}"
                       " (it must fit in memory; convert it to JSONL)")
    if isinstance(data, RawRecord):
        yield data
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # Decode element by element is not possible on broken bytes; keep what is valid.
        text = data.decode("utf-8", errors="surrogateescape")
    del data
    decoder = json.JSONDecoder()
    pos = text.find("[") + 1
    if pos == 0:
        yield RawRecord(0, 0, text[:max_record_bytes].encode("utf-8", errors="surrogateescape"),
                        error=Reason.INVALID_JSON, detail="not a JSON array")
        return
    index = 0
    end = len(text)
    while True:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            yield RawRecord(index, pos, b"", error=Reason.INVALID_JSON, detail="array is not closed (truncated file)")
            return
        if text[pos] == "]":
            return
        start = pos
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError) as exc:
            what = (f"{exc.msg} at char {exc.pos}" if isinstance(exc, json.JSONDecodeError)
                    else "nesting too deep to parse")
            rest = text[start:].encode("utf-8", errors="surrogateescape")
            yield RawRecord(index, start, rest[:max_record_bytes], error=Reason.INVALID_JSON,
                            detail=f"{what}; the rest of the array is this one record")
            return
        raw = text[start:pos].encode("utf-8", errors="surrogateescape")
        if _has_surrogates(obj):
            yield RawRecord(index, start, raw, error=Reason.INVALID_UTF8, detail="element contains invalid UTF-8 bytes")
        elif len(raw) > max_record_bytes:
            yield RawRecord(index, start, b"", error=Reason.RECORD_TOO_LARGE,
                            detail=f"element larger than max_record_bytes={max_record_bytes}")
        else:
            yield RawRecord(index, start, raw, obj=obj)
        index += 1
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos < end and text[pos] == ",":
            pos += 1


def _read_json_document(path: Path, max_record_bytes: int) -> Iterator[RawRecord]:
    """A file holding one JSON object spread over several lines (pretty-printed): one record."""
    data = _read_whole(path, max_record_bytes, Reason.RECORD_TOO_LARGE,
                       f"JSON document larger than max_record_bytes={max_record_bytes}")
    yield data if isinstance(data, RawRecord) else parse_line(0, 0, data.strip())


def _read_whole(path: Path, limit: int, reason: Reason, detail: str) -> bytes | RawRecord:
    """The file's (decompressed) bytes when they fit in `limit`, else the one record saying why not."""
    with open_stream(path) as fh:
        try:
            data = fh.read(limit + 1)
        except STREAM_ERRORS as exc:
            return RawRecord(0, 0, b"", error=Reason.INVALID_JSON, detail=f"cannot decompress: {exc}")
    if len(data) > limit:
        return RawRecord(0, 0, b"", error=reason, detail=detail)
    return data


def _has_surrogates(obj: object) -> bool:
    """Whether any string (key or value) holds lone surrogates; iterative, so depth is no issue."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _batch_rows(batch) -> list:
    """A record batch's rows as dicts; a row whose strings are not valid UTF-8 (Parquet
    writers need not check) as its UnicodeDecodeError instead (found by atheris)."""
    try:
        return batch.to_pylist()
    except UnicodeDecodeError:
        rows: list = []
        for i in range(batch.num_rows):
            try:
                rows.append(batch.slice(i, 1).to_pylist()[0])
            except UnicodeDecodeError as exc:
                rows.append(exc)
        return rows


def _read_parquet(path: Path) -> Iterator[RawRecord]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # A corrupt footer or data page (truncated upload, bit rot): the rows read so far are
    # kept and the rest of the file becomes one quarantined record (found by atheris).
    # ValueError: a footer whose column names are not UTF-8 raises UnicodeDecodeError.
    errors = (OSError, pa.ArrowException, ValueError)
    index = 0
    try:
        pf = pq.ParquetFile(path)
        # row group by row group, so that a damaged one loses no rows of the groups before it
        batches = (b for g in range(pf.num_row_groups) for b in pf.iter_batches(batch_size=10_000, row_groups=[g]))
    except errors as exc:
        yield RawRecord(0, -1, b"", error=Reason.CORRUPT_PARQUET, detail=f"cannot read the Parquet footer: {exc}"[:300])
        return
    while True:
        try:
            batch = next(batches, None)
            rows = [] if batch is None else _batch_rows(batch)
        except errors as exc:
            yield RawRecord(index, -1, b"", error=Reason.CORRUPT_PARQUET,
                            detail=f"corrupt Parquet data after row {index}; the rest of the file is this one"
                                   f" record: {exc}"[:300])
            return
        if batch is None:
            return
        for row in rows:
            if isinstance(row, UnicodeDecodeError):
                yield RawRecord(index, -1, b"", error=Reason.INVALID_UTF8,
                                detail=f"a string column holds invalid UTF-8: {row}"[:300])
                index += 1
                continue
            try:
                raw = orjson.dumps(row, default=str, option=orjson.OPT_NON_STR_KEYS)
            except orjson.JSONEncodeError as exc:  # nested deeper than orjson writes
                yield RawRecord(index, -1, b"", error=Reason.NESTING_TOO_DEEP, detail=str(exc)[:300])
            else:
                yield RawRecord(index, -1, raw, obj=row)
            index += 1
