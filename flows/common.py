"""What every flow shares: completion markers, stage artifacts, retries.

Completion markers (datatrove's `completions/`, one file per finished unit of work):
a stage's marker is keyed by a fingerprint of everything its result depends on (its
inputs' state in the lake, its parameters, a version). A rerun whose fingerprint has a
marker skips the stage without touching the data; anything new (a log file, a changed
parameter, a new annotation part upstream) changes the fingerprint and the stage runs,
and the stage itself then does only the pending work (taggers anti-join on their
annotation table). Markers live in the lake (`_flows/markers/<stage>/<key>.json`), so
a fresh lake never inherits them, and they are written atomically after the stage
finished: a stage killed mid-way has no marker and runs again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.exceptions import MissingContextError

from curate.core.atomic import write_text_atomic
from curate.core.errors import CurateError, LLMError

# Bump when what a marker means changes; old markers then simply stop matching.
MARKER_VERSION = 1


def logger() -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow or task, a plain logger outside (unit tests)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("flows")


# ---- retries -------------------------------------------------------------------------
def retry_transient(task, task_run, state) -> bool:
    """Retry a failed task unless its error is one a retry cannot fix.

    Bad configuration, a missing dependency or a missing lake fail the same way every
    time; lock waits, served-model hiccups and I/O errors are worth another try.
    """
    try:
        state.result()
    except LLMError:
        return True
    except CurateError:
        return False
    except (ImportError, TypeError, ValueError, KeyError, AttributeError, AssertionError):
        return False  # programming or data errors: the same input fails the same way
    except Exception as exc:  # noqa: BLE001
        import duckdb

        # SQL that does not bind or parse, or bad data, fails the same way every time;
        # I/O and lock trouble (OperationalError) is worth another try.
        return not isinstance(exc, (duckdb.ProgrammingError, duckdb.DataError, duckdb.ResourceInUseException))
    return False


# ---- fingerprints and markers ---------------------------------------------------------
def fingerprint(*parts: Any) -> str:
    """A stable hex key of JSON-able parts."""
    blob = json.dumps([MARKER_VERSION, *parts], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def inputs_state(paths: Iterable[str | os.PathLike]) -> list[list]:
    """(path, size, mtime_ns) of every log file under `paths`: what ingest would read."""
    from curate.ingest.ingest import discover

    out = []
    for p in discover(paths):
        st = p.stat()
        out.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
    return out


def lake_state(lake_root: str | os.PathLike, tables: Sequence[str] = ()) -> dict:
    """What the lake holds, cheaply: the catalog's file versions and the annotation parts.

    `tables` names the annotation tables a stage reads; their part files (names and
    sizes) join the fingerprint, so a new part upstream makes the stage run again.
    """
    from curate.core.lake import Lake

    lake = Lake(lake_root)
    files: list = []
    if lake.exists():
        with lake.catalog(read_only=True) as con:
            files = [list(r) for r in con.execute(
                "SELECT path, content_hash, status FROM source_files ORDER BY path").fetchall()]
    annotations = {}
    for table in tables:
        if lake.exists():
            annotations[table] = [[p.name, p.stat().st_size] for p in lake.annotation_files(table)]
    return {"files": files, "annotations": annotations}


def marker_path(lake_root: str | os.PathLike, stage: str, key: str) -> Path:
    return Path(lake_root) / "_flows" / "markers" / stage / f"{key}.json"


def read_marker(lake_root: str | os.PathLike, stage: str, key: str) -> dict | None:
    path = marker_path(lake_root, stage, key)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # a damaged marker is no marker
        return None


def write_marker(lake_root: str | os.PathLike, stage: str, key: str, stats: dict) -> Path:
    """Record that `stage` finished for fingerprint `key` (atomic: whole file or none)."""
    path = marker_path(lake_root, stage, key)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    text = json.dumps({"stage": stage, "key": key, "stats": stats}, default=str, sort_keys=True)
    return write_text_atomic(path, text, mode=0o640, fsync=True)


def run_once(
    lake_root: str | os.PathLike,
    stage: str,
    key: str,
    work: Callable[[], dict],
    *,
    valid: Callable[[dict], bool] | None = None,
) -> dict:
    """Run `work()` unless a marker for (`stage`, `key`) says it already finished.

    Returns the stats of the run that did the work, with `skipped: True` added when the
    marker answered. `valid(marker_stats)` can reject a marker whose output is gone.
    """
    # A run killed while writing a marker leaves a temporary that was never renamed:
    # it means nothing, so the next run removes it.
    folder = marker_path(lake_root, stage, key).parent
    if folder.exists():
        for tmp in folder.glob(".tmp-*"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    done = read_marker(lake_root, stage, key)
    if done is not None and (valid is None or valid(done["stats"])):
        logger().info("%s: already done for this input (marker %s), skipping", stage, key[:12])
        return {**done["stats"], "skipped": True}
    stats = work()
    write_marker(lake_root, stage, key, stats)
    return {**stats, "skipped": False}


# ---- artifacts ------------------------------------------------------------------------
def artifact_key(stage: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return "stats-" + "".join(c if c.isalnum() else "-" for c in stage.lower()).strip("-")


def flatten_stats(stats: dict, prefix: str = "") -> list[dict]:
    """Nested stats as metric/value rows (lists and long text are summarised, not dumped)."""
    rows: list[dict] = []
    for k, v in stats.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            rows.extend(flatten_stats(v, name + "."))
        elif isinstance(v, (list, tuple)):
            rows.append({"metric": name, "value": f"{len(v)} items"})
        else:
            rows.append({"metric": name, "value": v if isinstance(v, (int, float, bool)) or v is None else str(v)[:200]})
    return rows


def publish_stats(stage: str, stats: dict, description: str | None = None) -> None:
    """Publish a stage's counts as a Prefect table artifact (counts only: never row text)."""
    try:
        create_table_artifact(
            key=artifact_key(stage),
            table=flatten_stats(stats),
            description=description or f"{stage}: per-run statistics",
        )
    except MissingContextError:  # called outside a flow run (unit tests)
        pass
