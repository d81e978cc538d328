"""The lake: Parquet files under one root, a DuckDB catalog, and views to query them.

Layout (all paths relative to the lake root)::

    catalog.duckdb                    source_files (one row per ingested path) and runs
    conversations/<key>.parquet       canonical rows of one source file version
    quarantine/<key>.parquet          rejected records of that version, with reason and raw bytes
    annotations/<table>/<part>.parquet  tagger and dedup outputs keyed by conversation_id
    embeddings/<model>/<part>.parquet   embedding store keyed by (model, text hash)
    _schema/<table>.parquet           empty files that give empty views their columns
    .lock                             single-writer lock

Atomicity: every Parquet file is written to a temporary name in its final folder and
renamed into place (rename is atomic on POSIX). The catalog is the commit log: the
`conversations` and `quarantine` views read only the files the catalog names, so a crash
between writing a file and committing its catalog row leaves an orphan that nobody sees
and the next writer removes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from curate.core import schema
from curate.core.atomic import atomic_path, commit, temp_path
from curate.core.errors import LakeError

log = logging.getLogger(__name__)

_CATALOG_DDL = """
CREATE TABLE IF NOT EXISTS source_files (
    path VARCHAR PRIMARY KEY,
    size BIGINT,
    mtime DOUBLE,
    content_hash VARCHAR,
    source_format VARCHAR,
    status VARCHAR,              -- ingested | duplicate_file
    duplicate_of VARCHAR,
    records_in BIGINT,
    rows_kept BIGINT,
    rows_quarantined BIGINT,
    conversations_file VARCHAR,
    quarantine_file VARCHAR,
    run_id VARCHAR,
    ingested_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR,
    stage VARCHAR,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    stats JSON
);
"""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_GLOB_CHARS = "*?[]{}"
# Views connect() defines itself; an annotation table may not take these names.
RESERVED_TABLES = frozenset({"conversations", "quarantine", "source_files", "runs", "messages"})
FILE_MODE = 0o640
DIR_MODE = 0o750


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def write_parquet_atomic(table: pa.Table, path: Path, **kwargs) -> Path:
    """Write `table` to `path` so that readers see either nothing or the whole file."""
    with atomic_path(path, mode=FILE_MODE, fsync=True, dir_mode=DIR_MODE) as tmp:
        pq.write_table(table, tmp, compression="zstd", **kwargs)
    return path


class AtomicParquetWriter:
    """Streams record batches to a temporary file; `commit()` renames it into place.

    Used by ingest so that memory stays flat however large the source file is.
    `compression` and `options` (e.g. `use_dictionary`) go to `pyarrow.parquet.ParquetWriter`.
    """

    def __init__(self, path: Path, arrow_schema: pa.Schema, *, compression: str = "zstd", **options):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        self._tmp = temp_path(path)
        try:
            self._writer = pq.ParquetWriter(self._tmp, arrow_schema, compression=compression, **options)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            raise
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table)
            self.rows += table.num_rows

    def commit(self) -> Path:
        self._writer.close()
        commit(self._tmp, self.path, mode=FILE_MODE, fsync=True)
        return self.path

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)


class Lake:
    """A lake root. Cheap to construct; folders and catalog are created on first write.

    >>> lake = Lake("lake")                       # doctest: +SKIP
    >>> lake.connect().sql("SELECT count(*) FROM conversations").fetchone()  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        # DuckDB expands globs in read_parquet paths and mangles '?' in database paths, so a
        # root with these characters would read other lakes' files or lose its catalog.
        bad = sorted(set(str(self.root)) & set(_GLOB_CHARS))
        if bad:
            raise LakeError(f"lake root {str(self.root)!r} contains {''.join(bad)!r}: pick a folder name without {_GLOB_CHARS}")

    # ---- paths -----------------------------------------------------------------
    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.duckdb"

    def conversations_dir(self) -> Path:
        return self.root / "conversations"

    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    def annotation_dir(self, table: str) -> Path:
        _check_name(table)
        return self.root / "annotations" / table

    def exists(self) -> bool:
        return self.catalog_path.exists()

    def init(self) -> "Lake":
        """Create the folders, the catalog and the empty-schema files (idempotent)."""
        created = not self.root.exists()
        for sub in ("conversations", "quarantine", "annotations", "embeddings", "_schema"):
            (self.root / sub).mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        if created:  # never change the mode of a folder the user already had
            os.chmod(self.root, DIR_MODE)
        for name, sch in (("conversations", schema.CONVERSATIONS), ("quarantine", schema.QUARANTINE)):
            target = self.root / "_schema" / f"{name}.parquet"
            if not target.exists():
                write_parquet_atomic(sch.empty_table(), target)
        with self.catalog() as con:
            con.execute(_CATALOG_DDL)
        for name in ("catalog.duckdb", ".lock"):
            if (self.root / name).exists():
                os.chmod(self.root / name, FILE_MODE)
        return self

    # ---- locking and catalog ---------------------------------------------------
    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Exclusive lock for writers of the lake (one ingest or tagger at a time)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        lock_path = self.root / ".lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        with os.fdopen(fd, "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("waiting for the lake lock at %s", self.root / ".lock")
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def catalog(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection to the catalog; keep it open only as long as needed."""
        if read_only and not self.catalog_path.exists():
            raise LakeError(f"no lake at {self.root} (run `curate ingest` first or pass --lake)")
        con = duckdb.connect(str(self.catalog_path), read_only=read_only)
        try:
            yield con
        finally:
            con.close()

    def source_files(self) -> pa.Table:
        if not self.exists():
            return pa.table({})
        with self.catalog(read_only=True) as con:
            return con.sql("SELECT * FROM source_files ORDER BY path").to_arrow_table()

    def committed_files(self, kind: str) -> list[Path]:
        """Parquet files the catalog names for `kind` ('conversations' or 'quarantine')."""
        column = {"conversations": "conversations_file", "quarantine": "quarantine_file"}[kind]
        if not self.exists():
            return []
        with self.catalog(read_only=True) as con:
            rows = con.execute(
                f"SELECT {column} FROM source_files WHERE {column} IS NOT NULL ORDER BY path"
            ).fetchall()
        return [self.root / r[0] for r in rows]

    def record_run(self, run_id: str, stage: str, started_at: datetime, stats: dict) -> None:
        import json

        with self.catalog() as con:
            con.execute(_CATALOG_DDL)
            con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?)",
                [run_id, stage, started_at, datetime.now(timezone.utc), json.dumps(stats, default=str)],
            )

    def remove_orphans(self) -> list[Path]:
        """Delete conversation/quarantine files and temporaries no catalog row names.

        Call only while holding the writer lock.
        """
        committed = set(self.committed_files("conversations")) | set(self.committed_files("quarantine"))
        removed = []
        for folder in (self.conversations_dir(), self.quarantine_dir()):
            if not folder.exists():
                continue
            for path in folder.iterdir():
                if path not in committed:
                    path.unlink()
                    removed.append(path)
        for folder in (self.root / "annotations", self.root / "embeddings", self.root / "_schema"):
            if folder.exists():
                for tmp in folder.rglob(".tmp-*"):
                    tmp.unlink(missing_ok=True)
                    removed.append(tmp)
        if removed:
            log.info("removed %d orphaned files left by an interrupted run", len(removed))
        return removed

    # ---- annotations -------------------------------------------------------------
    def write_annotation(self, table: str, data: pa.Table, part: str | None = None) -> Path:
        """Add one part to annotation table `table` (atomic). Returns the file path."""
        part = part or new_run_id()
        _check_part(part)
        return write_parquet_atomic(data, self.annotation_dir(table) / f"{part}.parquet")

    def annotation_files(self, table: str) -> list[Path]:
        folder = self.annotation_dir(table)
        return sorted(folder.glob("[!.]*.parquet")) if folder.exists() else []

    def read_annotation(self, table: str, columns: list[str] | None = None) -> pa.Table | None:
        files = self.annotation_files(table)
        if not files:
            return None
        return pa.concat_tables(
            [pq.read_table(f, columns=columns) for f in files], promote_options="permissive"
        )

    def annotation_tables(self) -> list[str]:
        folder = self.root / "annotations"
        if not folder.exists():
            return []
        names = []
        for p in sorted(folder.iterdir()):
            if not p.is_dir():
                continue
            if not _NAME.match(p.name) or p.name in RESERVED_TABLES:
                log.warning("ignoring %s: not a valid annotation table name", p)
                continue
            if self.annotation_files(p.name):
                names.append(p.name)
        return names

    # ---- querying ------------------------------------------------------------------
    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with views over the lake.

        Views: `conversations`, `quarantine`, `source_files`, `runs`, one per annotation
        table, and `messages` (one row per message). The catalog is copied in and
        detached at once, so the connection holds no lock on the lake.
        """
        if not self.exists():
            raise LakeError(f"no lake at {self.root} (run `curate ingest` first or pass --lake)")
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        con.execute("ATTACH ? AS cat (READ_ONLY)", [str(self.catalog_path)])
        con.execute("CREATE TABLE source_files AS SELECT * FROM cat.source_files")
        con.execute("CREATE TABLE runs AS SELECT * FROM cat.runs")
        con.execute("DETACH cat")
        for kind in ("conversations", "quarantine"):
            files = [str(p) for p in self.committed_files(kind)] or [
                str(self.root / "_schema" / f"{kind}.parquet")
            ]
            con.execute(f"CREATE VIEW {kind} AS SELECT * FROM read_parquet({sql_str_list(files)})")
        for table in self.annotation_tables():
            files = [str(p) for p in self.annotation_files(table)]
            con.execute(
                f'CREATE VIEW "{table}" AS SELECT * FROM read_parquet({sql_str_list(files)}, union_by_name = true)'
            )
        con.execute(
            """CREATE VIEW messages AS
               SELECT conversation_id, m.idx - 1 AS message_index,
                      conversation[m.idx].role AS role, conversation[m.idx].content AS content
               FROM conversations, range(1, len(conversation) + 1) AS m(idx)"""
        )
        return con

    def stats(self) -> dict:
        """Counts that must add up: records in = rows kept + rows quarantined."""
        if not self.exists():
            return {"source_files": 0, "records_in": 0, "rows_kept": 0, "rows_quarantined": 0}
        con = self.connect()
        files, rec_in, kept_cat, quar_cat = con.execute(
            "SELECT count(*), coalesce(sum(records_in),0), coalesce(sum(rows_kept),0),"
            " coalesce(sum(rows_quarantined),0) FROM source_files WHERE status = 'ingested'"
        ).fetchone()
        kept = con.execute("SELECT count(*) FROM conversations").fetchone()[0]
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        reasons = dict(con.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1 ORDER BY 2 DESC").fetchall())
        formats = dict(con.execute("SELECT source_format, count(*) FROM conversations GROUP BY 1 ORDER BY 1").fetchall())
        dup_files = con.execute("SELECT count(*) FROM source_files WHERE status = 'duplicate_file'").fetchone()[0]
        con.close()
        return {
            "source_files": int(files),
            "duplicate_files_skipped": int(dup_files),
            "records_in": int(rec_in),
            "rows_kept": int(kept),
            "rows_quarantined": int(quarantined),
            "balanced": int(rec_in) == int(kept) + int(quarantined) == int(kept_cat) + int(quar_cat),
            "quarantine_reasons": reasons,
            "formats": formats,
        }


def sql_str_list(items: list[str]) -> str:
    """A SQL list literal of strings, quotes escaped (views cannot take parameters)."""
    return "[" + ", ".join("'" + s.replace("'", "''") + "'" for s in items) + "]"


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise LakeError(f"invalid table name {name!r}: use lowercase letters, digits and underscores")
    if name in RESERVED_TABLES:
        raise LakeError(f"table name {name!r} is reserved for a built-in view: pick another")


def _check_part(part: str) -> None:
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", part) or ".." in part:
        raise LakeError(f"invalid part name {part!r}")
