"""Private copies of published versions, one per reader process: the engine admits one process per shard folder.

Segment files are hard links (a version is never written after it is published: free and instant at 1M
points); the small write-ahead log is copied for real, holes kept, because the engine opens, locks and maps
it. Copies left by readers that died are removed; the disk room the engine may write into a copy is checked
first, since a write into a mapped file on a full disk is a SIGBUS that kills the reader, not an error.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from storage.index_errors import EdgeIndexError

READERS_DIR = ".readers"  # beside the versions: private copies must be on the same file system to hard-link


def _link_or_copy(source: str, target: str) -> None:
    """Hard-link a file of an immutable version (free, instant at 1M points); copy across file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_copies(readers: Path) -> None:
    """Delete private copies left by reader processes that died without closing (SIGKILL, a crash)."""
    for folder in readers.glob("*-*"):
        owner = folder.name.split("-", 1)[0]
        if owner.isdigit() and int(owner) != os.getpid() and not _pid_alive(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)


def _next_data(fd: int, offset: int, size: int) -> int:
    """Start of the next data region at or after `offset`; `size` when only a hole is left (ENXIO)."""
    try:
        return os.lseek(fd, offset, os.SEEK_DATA)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return size
        raise


def copy_sparse(source: str, target: str) -> None:
    """Copy a file's data regions only, keeping its holes (`shutil.copy2` fills them with real zeros).

    The engine preallocates each WAL segment as a 32 MB sparse file holding a few KB: a plain copy
    wrote 64 MB per reader per version. Falls back to `shutil.copy2` where SEEK_DATA is unsupported.
    """
    size = os.path.getsize(source)
    with open(source, "rb") as src:
        try:
            offset = _next_data(src.fileno(), 0, size)
        except OSError:  # the file system has no SEEK_DATA
            offset = None
        if offset is not None:
            with open(target, "wb") as dst:
                while offset < size:
                    end = os.lseek(src.fileno(), offset, os.SEEK_HOLE)
                    src.seek(offset)
                    dst.seek(offset)
                    dst.write(src.read(end - offset))
                    offset = _next_data(src.fileno(), end, size)
                dst.truncate(size)
            shutil.copystat(source, target)
            return
    shutil.copy2(source, target)


def reader_room_needed(source: Path) -> int:
    """Bytes a reader's private copy may write: the WAL's full (apparent) size. The engine maps the WAL
    segments and writes into them on load; on a full disk such a write is a SIGBUS that kills the whole
    process (the dashboard, the API), not an error, so the room is checked before the copy."""
    wal = source / "wal"
    return sum(f.stat().st_size for f in wal.rglob("*") if f.is_file()) if wal.is_dir() else 0


def _check_reader_room(source: Path, readers: Path) -> None:
    need, free = reader_room_needed(source), shutil.disk_usage(readers).free
    if free < need:
        raise EdgeIndexError(
            f"disk full: loading index version {source} needs ~{need / 2**20:.0f} MB free for the reader's "
            f"copy of its write-ahead log, {free / 2**20:.0f} MB free at {readers}"
        )


def copy_private(source: Path, version: str) -> Path:
    """A private copy of a version for this process to load (the engine allows one process per folder).

    Segment files are hard links: a version is never written after it is published, and a reader only
    reads (tests/test_index.py checks the published files are unchanged after a reader session). The
    WAL is copied for real (its holes kept): the engine opens and locks it. Raises EdgeIndexError when
    the disk has no room for what the engine may write into that copy.
    """
    readers = source.parent / READERS_DIR
    readers.mkdir(exist_ok=True)
    _remove_stale_copies(readers)
    _check_reader_room(source, readers)
    target = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{version}-", dir=readers))
    try:
        shutil.copytree(source, target / "shard", copy_function=_link_or_copy, ignore=shutil.ignore_patterns("wal"))
        if (source / "wal").is_dir():
            shutil.copytree(source / "wal", target / "shard" / "wal", copy_function=copy_sparse)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target
