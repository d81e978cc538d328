"""Atomic file writes: readers see the old file or the new one, never half of one.

The one way the project writes a file in place (lake parts, markers, reports, caches,
model manifests): write a temporary beside the target, then `os.replace` it over the
target. A crash or an error leaves the old file and no temporary.

>>> with atomic_path(Path(tmp) / "index.npy") as part:   # doctest: +SKIP
...     np.save(part, array)                              # the name keeps its suffix
>>> write_text_atomic(Path(tmp) / "CURRENT", "v2", fsync=True)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


def commit(tmp: str | os.PathLike, final: str | os.PathLike, *, mode: int | None = None, fsync: bool = False) -> Path:
    """Rename the finished temporary `tmp` onto `final` (chmod'ed to `mode` first when given;
    with `fsync`, its bytes and then the folder entry reach the disk)."""
    tmp, final = Path(tmp), Path(final)
    if mode is not None:
        os.chmod(tmp, mode)
    if fsync:
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    os.replace(tmp, final)
    if fsync:
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return final


def temp_path(final: str | os.PathLike) -> Path:
    """A fresh name beside `final` that keeps its suffix (numpy and faiss look at it)."""
    final = Path(final)
    return final.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{final.name}")


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, *, mode: int | None = None, fsync: bool = False,
                dir_mode: int | None = None) -> Iterator[Path]:
    """A temporary path (not created) beside `final`; write it in the block. When the block
    ends without error it replaces `final`; otherwise it is removed."""
    final = Path(final)
    if dir_mode is None:
        final.parent.mkdir(parents=True, exist_ok=True)
    else:
        final.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    tmp = temp_path(final)
    try:
        yield tmp
        commit(tmp, final, mode=mode, fsync=fsync)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(final: str | os.PathLike, text: str, *, mode: int | None = None, fsync: bool = False,
                      encoding: str = "utf-8") -> Path:
    """Write `text` to `final` atomically; returns `final`."""
    with atomic_path(final, mode=mode, fsync=fsync) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(final)
