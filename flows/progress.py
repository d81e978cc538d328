"""What a person running the pipeline sees on stderr: a line per stage, bars for long steps.

The command line (`curate pipeline`, which `make run` runs) turns it on with `enable()`;
`--quiet` leaves it off, and so do tests and library calls, which get nothing. Libraries
never print: they take a `progress` callback, and this module hands them one that
advances a bar. The bars themselves are the CLI's (`enable(bars=...)`, rich in
`curate.cli.progress`): flows draw nothing of their own.

    [ingest] started
    [ingest] done in 3.1 s: 95 records in, 66 kept
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator

_enabled = False
# A context manager factory giving an object with add_task / advance / update (rich's
# Progress does), or None for no bars: stage lines only.
_bars_factory: Callable[[], contextlib.AbstractContextManager] | None = None


def enable(on: bool = True, *, bars: Callable[[], contextlib.AbstractContextManager] | None = None) -> None:
    """Print stage lines (and bars, from `bars()`) from now on (off: print nothing)."""
    global _enabled, _bars_factory
    _enabled = on
    _bars_factory = bars if on else None
    if on:
        _quiet_model_loading()


def enabled() -> bool:
    return _enabled


def say(line: str) -> None:
    if _enabled:
        print(line, file=sys.stderr, flush=True)


def stage_started(name: str) -> None:
    say(f"[{name}] started")


def stage_finished(name: str, stats: dict | None, seconds: float) -> None:
    say(f"[{name}] done in {seconds:.1f} s{': ' + rows_in_out(stats) if rows_in_out(stats) else ''}")


def rows_in_out(stats: dict | None) -> str:
    """'95 records in, 66 kept' from a stage's stats (the stage contract: total, kept, tagged...)."""
    if not isinstance(stats, dict):
        return ""
    if stats.get("skipped"):
        return "nothing new (marker)"
    if "failed" in stats:
        return f"FAILED: {str(stats['failed'])[:120]}"
    if stats.get("skipped_missing_stage"):
        return f"skipped ({stats['skipped_missing_stage']} not installed)"
    total = stats.get("total")
    out = next(((k, stats[k]) for k in ("tagged", "kept") if isinstance(stats.get(k), int)), None)
    if total is None and out is None:
        tagged = {k: v.get("tagged") for k, v in stats.items() if isinstance(v, dict) and "tagged" in v}
        return ", ".join(f"{k} {v}" for k, v in tagged.items()) + (" tagged" if tagged else "")
    parts = [f"{total} rows in"] if total is not None else []
    if out is not None:
        parts.append(f"{out[1]} {out[0]}")
    return ", ".join(parts)


@contextlib.contextmanager
def _bars() -> Iterator:
    """The CLI's bars for the block, or None when it gave none."""
    if _bars_factory is None:
        yield None
        return
    with _bars_factory() as prog:
        yield prog


@contextlib.contextmanager
def bar(description: str, total: int | None) -> Iterator[Callable[[int], None] | None]:
    """A callback `advance(n)` for a library's `progress=` argument; None when off or without bars."""
    if not _enabled:
        yield None
        return
    with _bars() as prog:
        if prog is None:
            yield None
            return
        task = prog.add_task(description, total=total)
        yield lambda n: prog.advance(task, n)


def _quiet_model_loading() -> None:
    """transformers draws a 'Loading weights' bar per model load: noise between our lines.

    It reads the variable when it is imported; when it already is, it is told directly."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        with contextlib.suppress(Exception):
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()


_COUNT = re.compile(r"^(?P<what>.+): (?P<done>\d+)/(?P<total>\d+)$")


@contextlib.contextmanager
def steps(stage: str) -> Iterator[Callable[[str], None] | None]:
    """A callback for a library's `progress(message)`: each message is a line under the stage,
    except 'what: done/total' messages, which advance a bar (the embedding of a big side)."""
    if not _enabled:
        yield None
        return
    with _bars() as prog:
        bars: dict[str, int] = {}

        def on_message(message: str) -> None:
            m = _COUNT.match(message)
            if m is None:
                say(f"  {stage}: {message}")
                return
            if prog is None:
                return
            what, done, total = m["what"], int(m["done"]), int(m["total"])
            if what not in bars:
                bars[what] = prog.add_task(f"{stage}: {what}", total=total)
            prog.update(bars[what], completed=done, total=total)

        yield on_message
