"""The progress bars of the command line (rich, on stderr), handed to `flows.progress`.

Drawn only when stderr is a terminal, and cleared when done, so logs and tests see the
stage lines alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextlib.contextmanager
def rich_bars() -> Iterator[Progress]:
    """A rich Progress on stderr for one block of work (`flows.progress.enable(bars=rich_bars)`)."""
    console = Console(stderr=True)
    with Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as prog:
        yield prog
