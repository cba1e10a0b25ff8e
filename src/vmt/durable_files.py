"""Files that survive a crash: the one atomic-write helper.

A file is written under a temporary name in its own folder (``NAME.PID.partial``), flushed and
fsynced, renamed over ``NAME`` (``os.replace``: atomic on POSIX), and the folder is fsynced so
the rename itself is on disk. A crash at any point leaves either the old complete file or the
new complete file under ``NAME``, never half of one; a failed write removes its temporary file.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def temporary_name(path: Path) -> Path:
    """The temporary file a write of ``path`` goes to (same folder, so the rename is atomic)."""
    return path.with_name(f"{path.name}.{os.getpid()}.partial")


def fsync_path(path: Path) -> None:
    """fsync a file or a folder by name (a folder's fsync makes renames in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary path for the caller (or a library such as ``torch.save``) to write;
    on a clean exit it is fsynced and renamed to ``path``, then the folder is fsynced. On an
    error the temporary file is removed and ``path`` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        fsync_path(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        fsync_path(path.parent)
    except OSError as exc:  # file systems without folder fsync (gcsfuse mounts): rename only
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES):
            raise


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """An open binary file whose content replaces ``path`` atomically on a clean exit."""
    with atomic_path(path) as tmp, tmp.open("wb") as out:
        yield out
        out.flush()


def write_atomic(path: Path, data: bytes) -> None:
    """``path`` replaced by ``data``, atomically and durably."""
    with atomic_writer(path) as out:
        out.write(data)


def copy_atomic(src: Path, dest: Path) -> None:
    """``dest`` replaced by a copy of ``src``, atomically and durably."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
