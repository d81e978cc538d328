"""Shared plumbing for taggers: pick untagged conversations, batch over them, write parts.

A tagger is a function `tag_batch(batch: pa.Table) -> pa.Table` that receives a batch of
conversations (the columns it asked for, always including `conversation_id`) and returns
one annotation row per input row, keyed by `conversation_id`. `run_tagger` does the rest:

- selects conversations whose id is not yet in the annotation table (anti-join), so a
  rerun does no work and an interrupted run resumes where it stopped;
- streams them in batches (memory stays flat), calls `tag_batch`, and writes each result
  as its own part file (`<run_id>-<batch>.parquet`, atomic), so a crash loses at most
  the batch in flight;
- checks that every input row came back exactly once (counts add up: nothing dropped);
- adds a `run_id` column when the tagger did not;
- records the run and its stats in the catalog.

>>> from curate.core.lake import Lake                                   # doctest: +SKIP
>>> def tag(batch):                                                # doctest: +SKIP
...     return pa.table({"conversation_id": batch["conversation_id"],
...                      "n_messages": pa.compute.list_value_length(batch["conversation"])})
>>> run_tagger(Lake("lake"), "length", tag, stage="tag_length")    # doctest: +SKIP
TagStats(table='length', total=..., tagged=..., skipped_already_tagged=..., ...)
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import pyarrow as pa

from curate.core.errors import ConfigError, CurateError, LakeError
from curate.core.execution import BatchFn, Executor
from curate.core.lake import Lake, _check_name, new_run_id

log = logging.getLogger(__name__)

TagBatch = Callable[[pa.Table], pa.Table]

DEFAULT_COLUMNS: tuple[str, ...] = ("conversation_id", "conversation")


@dataclass
class TagStats:
    """What one tagger run did. `total == tagged + skipped_already_tagged`."""

    table: str
    run_id: str
    total: int = 0  # conversations in the lake
    tagged: int = 0  # conversations tagged by this run
    skipped_already_tagged: int = 0  # already in the annotation table before this run
    parts_written: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)  # tagger-specific counts (e.g. redacted=12)

    def as_dict(self) -> dict:
        return asdict(self)


def tagged_ids_sql(lake: Lake, table: str) -> str | None:
    """The view name of annotation table `table` when it has any part, else None."""
    _check_name(table)
    return table if table in lake.annotation_tables() else None


def pending_query(lake: Lake, table: str, columns: Sequence[str] = DEFAULT_COLUMNS) -> str:
    """SQL selecting `columns` of conversations not yet in annotation table `table`."""
    cols = list(dict.fromkeys(["conversation_id", *columns]))
    for c in cols:
        _check_name(c)
    select = ", ".join(f"c.{c}" for c in cols)
    if tagged_ids_sql(lake, table) is None:
        return f"SELECT {select} FROM conversations c ORDER BY c.conversation_id"
    return (
        f"SELECT {select} FROM conversations c ANTI JOIN {table} t USING (conversation_id)"
        " ORDER BY c.conversation_id"
    )


def count_pending(lake: Lake, table: str) -> tuple[int, int]:
    """(conversations in the lake, conversations not yet in `table`)."""
    con = lake.connect()
    try:
        total = con.execute("SELECT count(*) FROM conversations").fetchall()[0][0]
        if tagged_ids_sql(lake, table) is None:
            return int(total), int(total)
        pending = con.execute(
            f"SELECT count(*) FROM conversations c ANTI JOIN {table} t USING (conversation_id)"
        ).fetchall()[0][0]
        return int(total), int(pending)
    finally:
        con.close()


def iter_pending(
    lake: Lake,
    table: str,
    *,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    batch_size: int = 2000,
    limit: int | None = None,
) -> Iterator[pa.Table]:
    """Yield batches (Arrow tables) of conversations not yet in annotation table `table`."""
    if batch_size <= 0:
        raise ConfigError("batch_size must be positive")
    query = pending_query(lake, table, columns)
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    con = lake.connect()
    try:
        reader = con.sql(query).to_arrow_reader(batch_size)
        buffered: list[pa.RecordBatch] = []
        rows = 0
        # DuckDB may hand back smaller batches than asked; regroup so parts have a sane size.
        for rb in reader:
            if rb.num_rows == 0:
                continue
            buffered.append(rb)
            rows += rb.num_rows
            if rows >= batch_size:
                yield pa.Table.from_batches(buffered)
                buffered, rows = [], 0
        if buffered:
            yield pa.Table.from_batches(buffered)
    finally:
        con.close()


def run_tagger(
    lake: Lake,
    table: str,
    tag_batch: TagBatch,
    *,
    stage: str | None = None,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    batch_size: int = 2000,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
    summarize: Callable[[pa.Table], dict] | None = None,
) -> TagStats:
    """Tag every conversation not yet in `table` with `tag_batch`; one part per batch.

    `summarize(result_batch) -> {name: int}` adds tagger-specific counts to the stats
    (summed over batches). `progress(n)` is called with the rows done after each batch.
    `limit` caps how many conversations this run tags (the rest wait for the next run).
    """
    _check_name(table)
    if not lake.exists():
        raise LakeError(f"no lake at {lake.root} (run `curate ingest` first or pass --lake)")
    run_id = new_run_id()
    stats = TagStats(table=table, run_id=run_id)
    started_at = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    with lake.writer_lock():
        stats.total, pending = count_pending(lake, table)
        stats.skipped_already_tagged = stats.total - pending
        for i, batch in enumerate(
            iter_pending(lake, table, columns=columns, batch_size=batch_size, limit=limit)
        ):
            result = tag_batch(batch)
            _check_result(table, batch, result)
            if "run_id" not in result.column_names:
                result = result.append_column("run_id", pa.array([run_id] * result.num_rows, pa.string()))
            lake.write_annotation(table, result, part=f"{run_id}-{i:05d}")
            stats.parts_written += 1
            stats.tagged += batch.num_rows
            if summarize is not None:
                for k, v in summarize(result).items():
                    stats.extra[k] = stats.extra.get(k, 0) + int(v)
            if progress is not None:
                progress(batch.num_rows)
        stats.seconds = round(time.perf_counter() - t0, 3)
        lake.record_run(run_id, stage or f"tag_{table}", started_at, stats.as_dict())
    log.info("tagger %s: %d tagged, %d already tagged", table, stats.tagged, stats.skipped_already_tagged)
    return stats


def _check_result(table: str, batch: pa.Table, result: pa.Table) -> None:
    if "conversation_id" not in result.column_names:
        raise CurateError(f"tagger for {table!r} returned no conversation_id column")
    got = result.column("conversation_id").to_pylist()
    want = batch.column("conversation_id").to_pylist()
    if len(got) != len(want) or set(got) != set(want) or len(set(got)) != len(got):
        raise CurateError(
            f"tagger for {table!r} must return exactly one row per input conversation "
            f"(got {len(got)} rows for {len(want)} conversations)"
        )


def run_tagger_on(executor: Executor, lake, table: str, tag_batch: BatchFn, *, stage: str | None = None,
                  columns: Sequence[str] | None = None, batch_size: int = 2000, limit: int | None = None):
    """`curate.tag.tagging.run_tagger` with `tag_batch` mapped by `executor` (several batches in flight).

    The driver selects pending conversations (anti-join) and writes one part per batch, in
    order, under the writer lock, exactly as `run_tagger` does; only `tag_batch` runs on
    the workers, so it must be picklable (cloudpickle handles closures) and hold no open
    connection. With `LocalExecutor` the parts are the same as `run_tagger`'s.
    """
    columns = tuple(columns or DEFAULT_COLUMNS)
    run_id = new_run_id()
    stats = TagStats(table=table, run_id=run_id)
    started_at = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    with lake.writer_lock():
        stats.total, pending = count_pending(lake, table)
        stats.skipped_already_tagged = stats.total - pending
        inputs: deque = deque()

        def batches() -> Iterator[pa.Table]:
            for batch in iter_pending(lake, table, columns=columns, batch_size=batch_size, limit=limit):
                inputs.append(batch.column("conversation_id"))
                yield batch

        for i, result in enumerate(executor.map_batches(tag_batch, batches())):
            ids = inputs.popleft()
            got = result.column("conversation_id") if "conversation_id" in result.column_names else None
            if got is None or got.to_pylist() != ids.to_pylist() and sorted(got.to_pylist()) != sorted(ids.to_pylist()):
                raise CurateError(f"tagger for {table!r} must return exactly one row per input conversation")
            if "run_id" not in result.column_names:
                result = result.append_column("run_id", pa.array([run_id] * result.num_rows, pa.string()))
            lake.write_annotation(table, result, part=f"{run_id}-{i:05d}")
            stats.parts_written += 1
            stats.tagged += result.num_rows
        stats.seconds = round(time.perf_counter() - t0, 3)
        stats.extra["executor"] = executor.name
        lake.record_run(run_id, stage or f"tag_{table}", started_at, stats.as_dict())
    return stats
