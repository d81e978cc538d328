"""Readers: turn a log file into raw records with their source location.

A reader never raises on a bad record: it yields `RawRecord`s whose `obj` is the parsed
JSON value, or whose `error` names why the bytes could not be parsed. Mapping the parsed
value onto the canonical schema is `curate.normalize`'s job.

Formats: `openai` (OpenAI-messages JSONL), `sharegpt` (JSON array or JSONL with
`conversations: [{from, value}]`), `lmsys` (LMSYS-Chat-1M rows, JSONL or Parquet).
Each may be gzip-compressed; compression is detected from the magic bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from curate.errors import CurateError
from curate.reasons import Reason

log = logging.getLogger(__name__)

FORMATS = ("openai", "sharegpt", "lmsys")
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"


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


def sniff(path: Path) -> tuple[str, str]:
    """Detect (format, container) for a file; container is 'jsonl', 'json_array' or 'parquet'."""
    with open(path, "rb") as raw:
        if raw.read(4) == PARQUET_MAGIC:
            return "lmsys", "parquet"
    chunks: list[bytes] = []
    with open_stream(path) as fh:
        try:
            for _ in range(16):
                chunk = fh.read(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        except (OSError, EOFError) as exc:  # a truncated gzip: sniff what decompressed
            log.debug("%s: stopped sniffing at %s", path, exc)
    head = b"".join(chunks)
    stripped = head.lstrip()
    if not stripped:
        return "openai", "jsonl"  # an empty file: any JSONL reader yields nothing
    container = "json_array" if stripped[:1] == b"[" else "jsonl"
    sample = _first_object(stripped, container)
    fmt = detect_format(sample) if sample is not None else _detect_from_bytes(stripped)
    if fmt is None:
        log.warning("%s: cannot detect the log format; its records are quarantined as unknown_format "
                    "(pass --format %s)", path, "|".join(FORMATS))
        return "unknown", container
    return fmt, container


def _detect_from_bytes(head: bytes) -> str | None:
    """Fallback when no whole record fits in the sniffed head (a huge first line)."""
    for key, fmt in ((b'"messages"', "openai"), (b'"conversations"', "sharegpt"), (b'"conversation"', "lmsys")):
        if key in head[:65536]:
            return fmt
    return None


def _first_object(head: bytes, container: str) -> dict | None:
    if container == "jsonl":
        for line in head.split(b"\n")[:50]:
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
        return None
    text = head.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    for _ in range(50):
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return None
        if isinstance(obj, dict):
            return obj
    return None


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


def read_records(
    path: Path, container: str, *, max_record_bytes: int = 64 << 20
) -> Iterator[RawRecord]:
    """Yield every record of the file, parsed or with the reason it could not be."""
    if container == "jsonl":
        yield from _read_jsonl(path, max_record_bytes)
    elif container == "json_array":
        yield from _read_json_array(path, max_record_bytes)
    elif container == "parquet":
        yield from _read_parquet(path)
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


def iter_lines(path: Path, max_record_bytes: int) -> Iterator[tuple[int, int, bytes | None, str]]:
    """Yield (line_number, byte_offset, line, error) for non-blank lines.

    `line` is None with an error message for an oversized line or a corrupt stream.
    """
    offset = 0
    number = 0
    with open_stream(path) as fh:
        while True:
            try:
                line = fh.readline(max_record_bytes + 1)
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                # A truncated or corrupt gzip member: what was read is kept, the rest is reported.
                number += 1
                yield number, offset, None, f"compressed stream is corrupt or truncated: {exc}"
                return
            if not line:
                return
            number += 1
            start = offset
            offset += len(line)
            if len(line) > max_record_bytes and not line.endswith(b"\n"):
                # Skip the rest of this oversized line without holding it in memory.
                while True:
                    chunk = fh.readline(1 << 20)
                    offset += len(chunk)
                    if not chunk or chunk.endswith(b"\n"):
                        break
                yield number, start, None, ""
                continue
            if line.strip():
                yield number, start, line.rstrip(b"\r\n"), ""


def _read_jsonl(path: Path, max_record_bytes: int) -> Iterator[RawRecord]:
    for number, offset, line, error in iter_lines(path, max_record_bytes):
        if line is None and error:
            yield RawRecord(number, offset, b"", error=Reason.INVALID_JSON, detail=error)
        elif line is None:
            yield RawRecord(
                number, offset, b"", error=Reason.RECORD_TOO_LARGE,
                detail=f"line longer than max_record_bytes={max_record_bytes}; raw bytes not kept",
            )
        else:
            yield parse_line(number, offset, line)


def _read_json_array(path: Path, max_record_bytes: int) -> Iterator[RawRecord]:
    """Elements of a top-level JSON array, decoded one at a time.

    A syntax error inside the array makes the rest of the file one quarantined record
    (the decoder cannot resynchronise reliably), with its byte offset in the detail.
    """
    with open_stream(path) as fh:
        try:
            data = fh.read()
        except (OSError, EOFError) as exc:
            yield RawRecord(0, 0, b"", error=Reason.INVALID_JSON, detail=f"cannot decompress: {exc}")
            return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # Decode element by element is not possible on broken bytes; keep what is valid.
        text = data.decode("utf-8", errors="surrogateescape")
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
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
        except json.JSONDecodeError as exc:
            rest = text[start:].encode("utf-8", errors="surrogateescape")
            yield RawRecord(index, start, rest[:max_record_bytes], error=Reason.INVALID_JSON,
                            detail=f"{exc.msg} at char {exc.pos}; the rest of the array is this one record")
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


def _has_surrogates(obj: object) -> bool:
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(obj, dict):
        return any(_has_surrogates(k) or _has_surrogates(v) for k, v in obj.items())
    if isinstance(obj, list):
        return any(_has_surrogates(v) for v in obj)
    return False


def _read_parquet(path: Path) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    index = 0
    for batch in pf.iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            raw = orjson.dumps(row, default=str, option=orjson.OPT_NON_STR_KEYS)
            yield RawRecord(index, -1, raw, obj=row)
            index += 1
