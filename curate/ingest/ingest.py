"""Ingest conversation logs into the lake: incremental, idempotent, nothing lost.

Per source file: hash its bytes; skip it when the catalog already holds that version;
otherwise read, normalise and stream rows into a conversations file and rejects into a
quarantine file (both renamed into place atomically), then commit one catalog row.

Changed-file policy (`on_change`): `replace` (default) swaps the file's old rows for the
new version's in one catalog commit (a log that grew is re-read whole); `skip` keeps the
old version and warns; `error` stops with a message. A file whose bytes equal an already
ingested file at another path is recorded as `duplicate_file` and not read again.

Ids: a record's own id (`id`, `conversation_id`) is its conversation_id when it is new to
the lake. An id already present with identical content quarantines as
`duplicate_record`, with different content as `duplicate_id_conflict`. Records without
an id get `h-<content hash>` (suffixed `-2`, `-3`, ... for repeats, so exact duplicates
stay rows for dedup to judge).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from curate.core import schema
from curate.core.errors import ConfigError, LakeError
from curate.core.lake import AtomicParquetWriter, Lake, new_run_id
from curate.ingest.normalize import Limits, Rejected, normalize
from curate.ingest.read_logs import (
    CHUNK_BYTES, DEFAULT_MAX_ARRAY_BYTES, DEFAULT_MAX_DECOMPRESSED, FORMATS, NOT_A_LOG, SNIFF_RECORDS,
    STREAM_ERRORS, RawRecord, iter_line_chunks, open_stream, read_records, sniff,
)
from curate.core.reasons import Reason

log = logging.getLogger(__name__)

LOG_SUFFIXES = (".jsonl", ".json", ".ndjson", ".parquet", ".gz")
COMPRESSIONS = ("zstd", "snappy", "lz4", "gzip", "none")
# Columns worth a Parquet dictionary: few distinct values. Ids, hashes and message content
# are (nearly) unique; dictionary-encoding them is wasted work (up to ~15% of the write).
_DICT_COLUMNS = ["source_file", "source_format", "model", "conversation.list.element.role", "turn", "user_id",
                 "run_id"]


@dataclass(frozen=True, kw_only=True)
class IngestConfig:
    format: str | None = None  # force a format; None detects per file
    on_change: str = "replace"  # replace | skip | error
    max_messages: int = 2000
    max_message_chars: int = 1_000_000
    max_record_bytes: int = 64 << 20
    # A gzip bomb ends as one decompressed_too_large row once the stream passes this size;
    # a JSON array document (held in memory whole) is capped by max_array_bytes.
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED
    max_array_bytes: int = DEFAULT_MAX_ARRAY_BYTES
    batch_rows: int = 20_000
    user_id_salt: str = "chatcurate"
    # OpenAI JSONL goes through the columnar path (pyarrow.json + Arrow compute) with a
    # per-line fallback; results are identical either way (tests/curate/test_ingest_fast.py).
    fast_path: bool = True
    chunk_bytes: int = CHUNK_BYTES
    workers: int = 2  # threads parsing chunks; the C++ parts run without the GIL
    # Parquet codec of the conversations files: zstd (Arrow's level 1) gives the smallest
    # files; snappy costs 30-40% less write CPU for ~31% larger files, and no less in total
    # while the parse bounds the rate (docs/ingest.md, Benchmark).
    compression: str = "zstd"

    def __post_init__(self) -> None:
        if self.format is not None and self.format not in FORMATS:
            raise ConfigError(f"format must be one of {FORMATS}, not {self.format!r}")
        if self.on_change not in ("replace", "skip", "error"):
            raise ConfigError(f"on_change must be replace, skip or error, not {self.on_change!r}")
        for name in ("max_messages", "max_message_chars", "max_record_bytes", "max_decompressed_bytes",
                     "max_array_bytes", "batch_rows", "chunk_bytes", "workers"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(f"compression must be one of {COMPRESSIONS}, not {self.compression!r}")

    @property
    def limits(self) -> Limits:
        return Limits(self.max_messages, self.max_message_chars, self.user_id_salt)


@dataclass
class FileResult:
    path: str
    action: str  # ingested | replaced | unchanged | duplicate_file | skipped_changed | not_a_log_file
    source_format: str = ""
    records_in: int = 0
    rows_kept: int = 0
    rows_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class IngestStats:
    run_id: str
    files: list[FileResult] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(f.records_in for f in self.files)

    @property
    def kept(self) -> int:
        return sum(f.rows_kept for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    def as_dict(self) -> dict:
        reasons: dict[str, int] = {}
        for f in self.files:
            for k, v in f.reasons.items():
                reasons[k] = reasons.get(k, 0) + v
        actions: dict[str, int] = {}
        for f in self.files:
            actions[f.action] = actions.get(f.action, 0) + 1
        return {
            "run_id": self.run_id,
            "total": self.total,
            "kept": self.kept,
            "quarantined": self.quarantined,
            **{f"dropped_{k}": v for k, v in sorted(reasons.items())},
            "files": actions,
        }


def discover(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand folders into the log files they contain (sorted, hidden files skipped).

    A folder walk follows no symlink (a link could point at any file on the machine, or
    loop) and skips anything that is not a regular file (a FIFO would block the read);
    each skip is logged. A path named explicitly is read even when it is a symlink.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = []
            for folder, dirs, names in os.walk(p, followlinks=False):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for name in names:
                    f = Path(folder) / name
                    if name.startswith(".") or not name.lower().endswith(LOG_SUFFIXES):
                        continue
                    if f.is_symlink():
                        log.warning("%s: a symlink inside a folder; not followed (name the file to read it)", f)
                    elif not stat.S_ISREG(f.lstat().st_mode):
                        log.warning("%s: not a regular file; skipped", f)
                    else:
                        found.append(f)
            out.extend(sorted(found))
        elif p.is_file():
            out.append(p)
        elif p.exists():
            raise LakeError(f"{p}: not a regular file or folder")
        else:
            raise LakeError(f"{p}: no such file or folder")
    return out


def path_key(path: Path) -> str:
    """The catalog key of a source file: its resolved path as valid UTF-8.

    Bytes of a non-UTF-8 file name are written as backslash escapes, so the key can be
    stored in DuckDB and Parquet and maps back to the same file on the next run.
    """
    key = str(path.resolve())
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        key = key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return key


def file_hash(path: Path) -> str:
    h = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


class _IdRegistry:
    """conversation_id -> content_hash of everything in the lake plus this run."""

    def __init__(self, lake: Lake, exclude_source: set[str]):
        self.ids: dict[str, str] = {}
        if lake.exists():
            con = lake.connect()
            rows = con.execute(
                "SELECT conversation_id, content_hash, source_file FROM conversations"
            ).fetchall()
            con.close()
            for cid, chash, src in rows:
                if src not in exclude_source:
                    self.ids[cid] = chash

    def assign(self, source_id: str | None, chash: str) -> tuple[str | None, Reason | None, str]:
        if source_id is not None:
            seen = self.ids.get(source_id)
            if seen is None:
                self.ids[source_id] = chash
                return source_id, None, ""
            if seen == chash:
                return None, Reason.DUPLICATE_RECORD, f"id {source_id!r} already in the lake with the same content"
            return None, Reason.DUPLICATE_ID_CONFLICT, f"id {source_id!r} already in the lake with different content"
        base = _hash_id(chash)
        cid, n = base, 1
        while cid in self.ids:
            n += 1
            cid = f"{base}-{n}"
        self.ids[cid] = chash
        return cid, None, ""

    def claim_all(self, cids: list[str], hashes: list[str]) -> bool:
        """Register every id at once when none is taken and none repeats (then `assign` would
        give each row its candidate id whatever the order); else change nothing, return False."""
        ids = self.ids
        if not ids.keys().isdisjoint(cids):
            return False
        before = len(ids)
        ids.update(zip(cids, hashes))
        if len(ids) - before == len(cids):
            return True
        for cid in cids:  # a repeat within cids: undo (every one of them was new)
            ids.pop(cid, None)
        return False

    def forget(self, ids: Iterable[str]) -> None:
        for cid in ids:
            self.ids.pop(cid, None)


def ingest(
    lake: Lake,
    paths: Iterable[str | os.PathLike],
    config: IngestConfig | None = None,
    *,
    run_id: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> IngestStats:
    """Ingest files or folders into `lake`. `progress(n_bytes)` is called as files finish.

    Returns per-file results; records in = rows kept + rows quarantined for every file.
    """
    config = config or IngestConfig()
    files = discover(paths)
    run_id = run_id or new_run_id()
    started = datetime.now(timezone.utc)
    stats = IngestStats(run_id)
    with lake.writer_lock():
        lake.init()
        lake.remove_orphans()
        catalog = {row["path"]: row for row in lake.source_files().to_pylist()}
        by_hash = {row["content_hash"]: row["path"] for row in catalog.values() if row["status"] == "ingested"}
        plan: list[tuple[Path, str, str, int, float]] = []
        # Files are read in path order whatever order they were named in: ids of repeated
        # content (`h-<hash>-2`), which copy of a shared id wins and which of two identical
        # files is the `duplicate_file` all depend on read order.
        for path in sorted(files, key=path_key):
            key = path_key(path)
            st = path.stat()
            prev = catalog.get(key)
            # size+mtime unchanged: trust the stored hash and skip reading the bytes
            if prev and prev["size"] == st.st_size and prev["mtime"] == st.st_mtime:
                stats.files.append(FileResult(key, "unchanged", prev["source_format"] or ""))
                continue
            digest = file_hash(path)
            if prev and prev["content_hash"] == digest:
                stats.files.append(FileResult(key, "unchanged", prev["source_format"] or ""))
                continue
            if prev and prev["status"] == "ingested" and config.on_change != "replace":
                if config.on_change == "error":
                    raise LakeError(f"{key} changed since it was ingested (pass --on-change replace or skip)")
                log.warning("%s changed since it was ingested; keeping the old version (on_change=skip)", key)
                stats.files.append(FileResult(key, "skipped_changed", prev["source_format"] or ""))
                continue
            if digest in by_hash and by_hash[digest] != key:
                _commit_duplicate_file(lake, key, st, digest, by_hash[digest], run_id)
                stats.files.append(FileResult(key, "duplicate_file"))
                continue
            plan.append((path, key, digest, st.st_size, st.st_mtime))
            by_hash[digest] = key

        replacing = {key for _, key, *_ in plan if key in catalog}
        registry = _IdRegistry(lake, exclude_source=replacing)
        for path, key, digest, size, mtime in plan:
            result = _ingest_file(lake, path, key, digest, size, mtime, config, registry, run_id)
            if result.action != NOT_A_LOG:
                result.action = "replaced" if key in catalog else "ingested"
            stats.files.append(result)
            if progress:
                progress(size)
        order = {path_key(p): i for i, p in enumerate(files)}
        stats.files.sort(key=lambda f: order.get(f.path, 0))
        lake.record_run(run_id, "ingest", started, stats.as_dict())
    return stats


def _commit_duplicate_file(lake: Lake, key: str, st: os.stat_result, digest: str, original: str, run_id: str) -> None:
    with lake.catalog() as con:
        con.execute("DELETE FROM source_files WHERE path = ?", [key])
        con.execute(
            "INSERT INTO source_files (path, size, mtime, content_hash, status, duplicate_of, records_in,"
            " rows_kept, rows_quarantined, run_id, ingested_at) VALUES (?, ?, ?, ?, 'duplicate_file', ?, 0, 0, 0, ?, ?)",
            [key, st.st_size, st.st_mtime, digest, original, run_id, datetime.now(timezone.utc)],
        )


def _ingest_file(
    lake: Lake, path: Path, key: str, digest: str, size: int, mtime: float,
    config: IngestConfig, registry: _IdRegistry, run_id: str,
) -> FileResult:
    name = f"{xxhash.xxh64_hexdigest(key.encode())}-{digest[:16]}"
    conv_rel = f"conversations/{name}.parquet"
    quar_rel = f"quarantine/{name}.parquet"
    fmt, container = sniff(path)
    if config.format is not None:
        fmt = config.format
        if container == "parquet" and fmt != "lmsys":
            log.info("%s: parquet read as %s rows", key, fmt)
    result = FileResult(key, "ingested", fmt)
    conv_writer = AtomicParquetWriter(lake.root / conv_rel, schema.CONVERSATIONS, compression=config.compression,
                                      use_dictionary=_DICT_COLUMNS)
    try:
        quar_writer = AtomicParquetWriter(lake.root / quar_rel, schema.QUARANTINE, compression=config.compression)
    except BaseException:
        conv_writer.abort()
        raise
    sink = _Sink(conv_writer, quar_writer, result, config.batch_rows)
    try:
        limits = config.limits
        if fmt == NOT_A_LOG:
            _not_a_log_file(path, key, run_id, sink)
            result.action = NOT_A_LOG
        elif container == "jsonl" and fmt == "openai" and config.fast_path:
            _ingest_chunks(path, config, sink, registry, key, run_id)
        else:
            for rec in read_records(path, container, max_record_bytes=config.max_record_bytes,
                                    max_decompressed_bytes=config.max_decompressed_bytes,
                                    max_array_bytes=config.max_array_bytes):
                sink.add_row(_to_row(rec, fmt, limits, registry, key, run_id))
        sink.flush()
        result.rows_kept = conv_writer.rows
        result.rows_quarantined = quar_writer.rows
        conv_writer.commit()
        quar_writer.commit()
    except BaseException:
        with contextlib.suppress(BaseException):
            sink.close()
        conv_writer.abort()
        quar_writer.abort()
        registry.forget(sink.assigned)
        raise
    _commit_file(lake, key, size, mtime, digest, fmt, result, conv_rel, quar_rel, run_id)
    return result


def _not_a_log_file(path: Path, key: str, run_id: str, sink: "_Sink") -> None:
    """The whole file as one quarantined record: read line by line, a manifest would be hundreds."""
    log.warning("%s: not a log file (no record fits openai, sharegpt or lmsys); recorded once as %s"
                " (pass --format to read it anyway)", key, NOT_A_LOG)
    with open_stream(path) as fh:
        try:
            head = fh.read(4096)
        except STREAM_ERRORS:
            head = b""
    detail = (f"none of the first {SNIFF_RECORDS} parseable records is an openai, sharegpt or lmsys conversation;"
              " the file is counted as this one record (pass --format to read it anyway)")
    sink.add_reject(_reject_row(RawRecord(0, 0, head), NOT_A_LOG, key, run_id, Reason.NOT_A_LOG_FILE, detail))


class _Sink:
    """Buffers kept rows (dicts or Arrow tables, in record order) and rejects; writes in batches."""

    def __init__(self, conv_writer: AtomicParquetWriter, quar_writer: AtomicParquetWriter,
                 result: FileResult, batch_rows: int):
        self.conv_writer, self.quar_writer, self.result, self.batch_rows = conv_writer, quar_writer, result, batch_rows
        # Parquet encoding and compression run on one writer thread (FIFO keeps row order;
        # pyarrow releases the GIL), at most two batches queued so memory stays flat.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ingest-write")
        self._writes: deque = deque()
        self.assigned: list[str] = []
        self.rows: list[dict] = []
        self.tables: list[pa.Table] = []
        self.buffered = 0
        self.rejects: list[dict] = []

    def add_row(self, row: dict) -> None:
        self.result.records_in += 1
        if "reason" in row:
            self.add_reject(row, counted=True)
            return
        self.rows.append(row)
        self.assigned.append(row["conversation_id"])
        self.buffered += 1
        if self.buffered >= self.batch_rows:
            self.flush_rows()

    def add_reject(self, row: dict, counted: bool = False) -> None:
        if not counted:
            self.result.records_in += 1
        self.rejects.append(row)
        self.result.reasons[row["reason"]] = self.result.reasons.get(row["reason"], 0) + 1
        if len(self.rejects) >= 1000:
            self._write(self.quar_writer, pa.Table.from_pylist(self.rejects, schema=schema.QUARANTINE))
            self.rejects = []

    def add_table(self, table: pa.Table, cids: list[str]) -> None:
        """Kept rows built by the columnar path; call `flush_rows` first to keep record order."""
        self.flush_dicts()
        self.result.records_in += table.num_rows
        self.assigned.extend(cids)
        self.tables.append(table)
        self.buffered += table.num_rows
        if self.buffered >= self.batch_rows:
            self.flush_rows()

    def flush_dicts(self) -> None:
        if self.rows:
            self.tables.append(_rows_table(self.rows))
            self.rows = []

    def flush_rows(self) -> None:
        self.flush_dicts()
        if self.tables:
            self._write(self.conv_writer, pa.concat_tables(self.tables) if len(self.tables) > 1 else self.tables[0])
            self.tables = []
        self.buffered = 0

    def _write(self, writer: AtomicParquetWriter, table: pa.Table) -> None:
        self._writes.append(self._pool.submit(writer.write, table))
        while len(self._writes) > 2:
            self._writes.popleft().result()

    def flush(self) -> None:
        """Write everything buffered and wait for the writer thread (raises its errors)."""
        self.flush_rows()
        self._write(self.quar_writer, pa.Table.from_pylist(self.rejects, schema=schema.QUARANTINE))
        self.rejects = []
        self.close()

    def close(self) -> None:
        try:
            while self._writes:
                self._writes.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _ingest_chunks(path: Path, config: IngestConfig, sink: _Sink, registry: _IdRegistry, key: str, run_id: str) -> None:
    """OpenAI JSONL: chunks through the columnar path on `config.workers` threads, merged in order."""
    from curate.ingest.normalize_columnar import normalize_chunk, per_line_chunk

    limits = config.limits
    items = iter_line_chunks(path, config.max_record_bytes, chunk_bytes=config.chunk_bytes,
                             max_decompressed_bytes=config.max_decompressed_bytes)
    seen = {"fast": 0, "records": 0}
    with ThreadPoolExecutor(config.workers, thread_name_prefix="ingest") as pool:
        queue: deque = deque()
        for item in items:
            if isinstance(item, RawRecord):
                queue.append((item, None))
            else:
                # A file where the fast path accepts under 10% of the first 20k records (extra
                # fields on every line, say) stops paying for the attempt.
                paying = seen["records"] < 20_000 or seen["fast"] >= 0.1 * seen["records"]
                queue.append((item, pool.submit(normalize_chunk if paying else per_line_chunk, item, limits)))
            # at most workers + 1 chunks in flight: memory stays flat
            while queue and (queue[0][1] is None or len(queue) > config.workers + 1):
                _drain_one(queue, sink, limits, registry, key, run_id, seen)
        while queue:
            _drain_one(queue, sink, limits, registry, key, run_id, seen)


def _drain_one(queue: deque, sink: _Sink, limits: Limits, registry: _IdRegistry, key: str, run_id: str,
               seen: dict[str, int]) -> None:
    """Merge the next chunk's fast rows and per-line records in line order (ids are order-dependent)."""
    item, future = queue.popleft()
    if future is None:
        sink.add_row(_to_row(item, "openai", limits, registry, key, run_id))
        return
    res = future.result()
    fast = res.fast
    seen["fast"] += fast.num_rows
    seen["records"] += fast.num_rows + len(res.slow)
    slow = [(rec, _parse_row(rec, "openai", limits, key, run_id)) for rec in res.slow]
    slow_ok = [(rec, row) for rec, row in slow if "reason" not in row]
    hashes = fast.column("content_hash")
    candidates = _candidate_ids(fast.column("source_id"), hashes)
    cids = candidates.to_pylist()
    slow_cids = [_candidate_id(row) for _, row in slow_ok]
    if registry.claim_all(cids + slow_cids, hashes.to_pylist() + [row["content_hash"] for _, row in slow_ok]):
        for rec, row in slow:
            if "reason" in row:
                sink.add_reject(row)
        slow_kept = []
        for (rec, row), cid in zip(slow_ok, slow_cids):
            row.pop("source_id")
            slow_kept.append(_kept_row(row, cid, rec, "openai", key, run_id))
        table = _fast_table(fast, candidates, key, run_id)
        if slow_kept:
            table = _merge_by_index(table, _rows_table(slow_kept))
            cids += slow_cids
    else:
        table, cids = _assign_in_order(item, res, slow, sink, registry, key, run_id)
    if table.num_rows:
        sink.add_table(table, cids)


def _assign_in_order(item, res, slow: list[tuple[RawRecord, dict]], sink: _Sink, registry: _IdRegistry,
                     key: str, run_id: str) -> tuple[pa.Table, list[str]]:
    """A chunk with a taken or repeated id: assign row by row in line order, as the per-line path does."""
    fast = res.fast
    lines = fast.column("source_index").to_pylist()
    sids = fast.column("source_id").to_pylist()
    hashes = fast.column("content_hash").to_pylist()
    keep = np.ones(len(lines), bool)
    cids: list[str] = []
    slow_kept: list[dict] = []
    assign = registry.assign

    def take_slow(rec: RawRecord, row: dict) -> None:
        row = _assign_row(row, rec, "openai", registry, key, run_id)
        if "reason" in row:
            sink.add_reject(row)
        else:
            slow_kept.append(row)

    j = 0
    for i, (line, sid, chash) in enumerate(zip(lines, sids, hashes)):
        while j < len(slow) and slow[j][0].index < line:
            take_slow(*slow[j])
            j += 1
        cid, reason, detail = assign(sid, chash)
        if reason is None:
            cids.append(cid)
            continue
        keep[i] = False
        offset, raw = res.raw_line(item, line)
        sink.add_reject({"source_file": key, "source_format": "openai", "source_index": line, "byte_offset": offset,
                         "reason": str(reason), "detail": detail, "raw": raw, "run_id": run_id})
    for rec, row in slow[j:]:
        take_slow(rec, row)
    if not keep.all():
        fast = fast.filter(pa.array(keep))
    table = _fast_table(fast, pa.array(cids, pa.string()), key, run_id)
    if slow_kept:
        table = _merge_by_index(table, _rows_table(slow_kept))
        cids = cids + [row["conversation_id"] for row in slow_kept]
    return table, cids


def _candidate_ids(source_ids: pa.ChunkedArray, hashes: pa.ChunkedArray) -> pa.ChunkedArray:
    """The id `_IdRegistry.assign` gives each row when it collides with nothing: the source id,
    else h-<first 24 hex digits of the content hash>."""
    return pc.coalesce(source_ids, pc.binary_join_element_wise("h-", pc.utf8_slice_codeunits(hashes, 0, 24), ""))


def _candidate_id(fields: dict) -> str:
    sid = fields["source_id"]
    return sid if sid is not None else _hash_id(fields["content_hash"])


def _hash_id(chash: str) -> str:
    """The id of a record without a source id (`_candidate_ids` computes it for a column)."""
    return "h-" + chash[:24]


def _merge_by_index(fast: pa.Table, slow: pa.Table) -> pa.Table:
    """Rows of both tables (each sorted by source_index) in source_index order.

    The few per-line rows go between zero-copy slices of the fast table, so the chunk's
    content is not copied (a `take` of the whole table was the main thread's largest cost).
    """
    if not fast.num_rows:
        return slow
    pos = np.searchsorted(fast.column("source_index").to_numpy(), slow.column("source_index").to_numpy())
    pieces: list[pa.Table] = []
    prev = 0  # fast rows emitted
    k = 0  # slow rows emitted
    while k < len(pos):
        p = int(pos[k])
        run = k
        while run < len(pos) and pos[run] == p:
            run += 1
        if p > prev:
            pieces.append(fast.slice(prev, p - prev))
            prev = p
        pieces.append(slow.slice(k, run - k))
        k = run
    if prev < fast.num_rows:
        pieces.append(fast.slice(prev))
    if len(pieces) > 64:  # a chunk mostly on the per-line path: one copy beats many tiny pieces
        return pa.concat_tables(pieces).combine_chunks()
    return pa.concat_tables(pieces)


def _fast_table(fast: pa.Table, cids: pa.Array | pa.ChunkedArray, key: str, run_id: str) -> pa.Table:
    n = fast.num_rows
    return pa.table(
        {
            "conversation_id": cids,
            "source_file": pa.repeat(pa.scalar(key, pa.string()), n),
            "source_format": pa.repeat(pa.scalar("openai", pa.string()), n),
            "source_index": fast.column("source_index"),
            "model": fast.column("model"),
            "conversation": fast.column("conversation"),
            "turn": fast.column("turn"),
            "tstamp": pa.nulls(n, pa.timestamp("us", tz="UTC")),
            "user_id": pa.nulls(n, pa.string()),
            "content_hash": fast.column("content_hash"),
            "metadata": pa.nulls(n, pa.string()),
            "run_id": pa.repeat(pa.scalar(run_id, pa.string()), n),
        },
        schema=schema.CONVERSATIONS,
    )


def _to_row(rec: RawRecord, fmt: str, limits: Limits, registry: _IdRegistry, key: str, run_id: str) -> dict:
    """The lake row of one record: kept (with its conversation_id) or quarantined (with a reason)."""
    return _assign_row(_parse_row(rec, fmt, limits, key, run_id), rec, fmt, registry, key, run_id)


def _parse_row(rec: RawRecord, fmt: str, limits: Limits, key: str, run_id: str) -> dict:
    """The record's canonical fields (`normalize`'s dict, source_id included) or its quarantine row."""
    if rec.error is None:
        try:
            return normalize(rec.obj, fmt, limits)
        except Rejected as rej:
            return _reject_row(rec, fmt, key, run_id, rej.reason, rej.detail)
    return _reject_row(rec, fmt, key, run_id, rec.error, rec.detail)


def _assign_row(fields: dict, rec: RawRecord, fmt: str, registry: _IdRegistry, key: str, run_id: str) -> dict:
    if "reason" in fields:
        return fields
    cid, reason, detail = registry.assign(fields.pop("source_id"), fields["content_hash"])
    if reason is not None:
        return _reject_row(rec, fmt, key, run_id, reason, detail)
    return _kept_row(fields, cid, rec, fmt, key, run_id)


def _kept_row(fields: dict, cid: str, rec: RawRecord, fmt: str, key: str, run_id: str) -> dict:
    fields["conversation"] = [{"role": r, "content": c} for r, c in fields["conversation"]]
    return {"conversation_id": cid, "source_file": key, "source_format": fmt, "source_index": rec.index,
            "run_id": run_id, **fields}


def _reject_row(rec: RawRecord, fmt: str, key: str, run_id: str, reason: Reason, detail: str) -> dict:
    return {
        "source_file": key, "source_format": fmt, "source_index": rec.index, "byte_offset": rec.offset,
        "reason": str(reason), "detail": detail, "raw": rec.raw, "run_id": run_id,
    }


def _rows_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema.CONVERSATIONS)


def _commit_file(
    lake: Lake, key: str, size: int, mtime: float, digest: str, fmt: str,
    result: FileResult, conv_rel: str, quar_rel: str, run_id: str,
) -> None:
    """One catalog transaction makes the new version visible and retires the old one."""
    with lake.catalog() as con:
        con.execute("BEGIN")
        old = con.execute(
            "SELECT conversations_file, quarantine_file FROM source_files WHERE path = ?", [key]
        ).fetchone()
        con.execute("DELETE FROM source_files WHERE path = ?", [key])
        con.execute(
            "INSERT INTO source_files VALUES (?, ?, ?, ?, ?, 'ingested', NULL, ?, ?, ?, ?, ?, ?, ?)",
            [key, size, mtime, digest, fmt, result.records_in, result.rows_kept, result.rows_quarantined,
             conv_rel, quar_rel, run_id, datetime.now(timezone.utc)],
        )
        con.execute("COMMIT")
    if old:
        for rel in old:
            if rel and rel not in (conv_rel, quar_rel):
                try:
                    (lake.root / rel).unlink()
                except FileNotFoundError:
                    pass
