"""Published versions of the embedded index: immutable engine shards readers load, and the CURRENT pointer.

Layout (see `storage.index`): `<path>/published/<version>/` engine shards, `<path>/published/CURRENT`
naming the one readers use. Everything here is about writing a version so that a reader sees it whole
or not at all (temp folder, fsync, rename, then an atomic pointer swap), having the disk room for it
first, and removing old versions no reader is loading.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from storage.edge_index import Batch, write_version_batches
from storage.index_errors import IndexUnavailableError
from storage.index_parts import DELTA_PREFIX, Part, referenced_folders, write_part_count, write_parts_file
from storage.index_points import ENGINE_FIELDS

SNAPSHOTS_KEPT = 2  # published versions kept besides those being loaded by a reader
CURRENT_FILE = "CURRENT"
SOURCE_STAMP_FILE = ".smarttrace-source.json"


def folder_locked(folder: Path) -> bool:
    """Whether another client (this process included) holds the folder's qdrant lock.

    Probing with the same lock qdrant takes (portalocker, flock on POSIX) costs microseconds,
    whereas letting `QdrantClient(path=...)` find out costs a full load of the folder.
    """
    import portalocker  # qdrant imports it lazily too: it can fail on read-only systems

    lock_file = folder / ".lock"
    try:
        handle = open(lock_file, "r+")  # closed below whatever happens
    except FileNotFoundError:
        return False
    with handle:
        try:
            portalocker.lock(handle, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING)
        except portalocker.exceptions.LockException:
            return True
        portalocker.unlock(handle)
    return False


def source_stamp(folder: Path) -> dict[str, list[int]]:
    """Size and mtime of every storage file: tells whether live/ changed since the last publish."""
    stamp: dict[str, list[int]] = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if name == ".lock" or name.endswith((".tmp", "-journal", "-wal", "-shm")):
                continue
            full = Path(root) / name
            stat = full.stat()
            stamp[full.relative_to(folder).as_posix()] = [stat.st_size, stat.st_mtime_ns]
    return stamp


def read_current(published: Path) -> str | None:
    try:
        version = (published / CURRENT_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    if not version or "/" in version or "\\" in version or version.startswith("."):
        raise IndexUnavailableError(f"{published / CURRENT_FILE} is corrupt ('{version[:40]}'): delete {published}")
    return version


def _fsync_tree(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with open(Path(root) / name, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_name(prefix: str) -> str:
    return f"{prefix}{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


def _prepare(published: Path) -> None:
    published.mkdir(parents=True, exist_ok=True)
    for stale in published.glob(".tmp-*"):  # left by a publisher that died: we hold the only write lock
        shutil.rmtree(stale, ignore_errors=True)


def _write_shard(published: Path, name: str, batches: Iterable[Batch], total: int, dims: Mapping[str, int],
                 stamp: dict[str, list[int]]) -> None:  # fmt: skip
    """An engine shard of the points, in a temp folder renamed to `published/name` once complete and synced."""
    _check_room(published, total, dims)
    tmp = published / f".tmp-{name}"
    try:
        write_version_batches(tmp, dims, batches, total, field_indexes=ENGINE_FIELDS)
        (tmp / SOURCE_STAMP_FILE).write_text(json.dumps(stamp))
        write_part_count(tmp, total)
        _fsync_tree(tmp)
        os.rename(tmp, published / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed write (disk full) must not keep holding the space
        raise


def _point_current(published: Path, version: str) -> None:
    pointer_tmp = published / f".{CURRENT_FILE}.{uuid.uuid4().hex[:8]}.tmp"
    with open(pointer_tmp, "w") as handle:
        handle.write(version + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(pointer_tmp, published / CURRENT_FILE)
    _fsync_dir(published)
    _remove_old_versions(published, keep=version)


def write_published(
    published: Path, batches: Iterable[Batch], total: int, dims: Mapping[str, int], stamp: dict[str, list[int]]
) -> str:
    """Write a full version into a temp folder, rename it into place, then point CURRENT at it.

    Temp folder + rename: a reader sees a version whole or not at all, and CURRENT only ever names
    complete versions.
    """
    _prepare(published)
    version = _new_name("v")
    _write_shard(published, version, batches, total, dims, stamp)
    _point_current(published, version)
    return version


def write_composed(
    published: Path,
    keep: Sequence[Part],
    batches: Iterable[Batch],
    total: int,
    dims: Mapping[str, int],
    touched: Iterable[str],
    stamp: dict[str, list[int]],
) -> str:
    """A version made of the parts `keep` (unchanged, shared with the current version) and one new delta part
    holding `batches` (`total` points; none: no new part). The delta hides every `touched` id in the older
    parts: the ids it holds replace their old copies, the others were deleted. Readers that serve `keep`
    already load only the delta (`storage.version_reader`)."""
    _prepare(published)
    parts = list(keep)
    if total:
        ids: set[str] = set()

        def recorded(source: Iterable[Batch]) -> Iterable[Batch]:
            for batch in source:
                ids.update(str(i) for i in batch[0])
                yield batch

        name = _new_name(DELTA_PREFIX)
        _write_shard(published, name, recorded(batches), total, dims, stamp)
        parts.append(Part(name, total, frozenset(ids), frozenset(set(map(str, touched)) - ids)))
    elif set(touched):
        parts.append(Part("", 0, frozenset(), frozenset(map(str, touched))))  # deletions only: no shard
    version = _new_name("v")
    tmp = published / f".tmp-{version}"
    tmp.mkdir()
    try:
        write_parts_file(tmp, parts)
        (tmp / SOURCE_STAMP_FILE).write_text(json.dumps(stamp))
        _fsync_tree(tmp)
        os.rename(tmp, published / version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _point_current(published, version)
    return version


# Room a new version needs before it is written. The engine writes through memory-mapped, sparse
# preallocated files: on a full disk the page fault kills the process with SIGBUS (measured:
# benchmarks/faults.py diskfull@publish, exit -7) instead of raising ENOSPC, so the space is checked first.
ROOM_FIXED_BYTES = 4 * 1024 * 1024  # an engine shard's own files (1.2 MB allocated for a 16-point version)
ROOM_PAYLOAD_BYTES = 2048  # per point: payload + payload indexes (a 20k-point version: 6.4 KB/point in all)
# Per point: the sparse attribute terms (storage.attribute_vectors), at most 242 (index, value) pairs of
# 8 bytes, stored and in the inverted index. 100k points of 1024-d with them: 12.9 KB/point on disk in all.
ROOM_TERMS_BYTES = 2 * 8 * 242


def room_needed(points: int, dims: Mapping[str, int]) -> int:
    """Bytes to have free before writing a version: an upper bound per point (each vector three times:
    stored, graph and optimiser copies) + payload + attribute terms, plus the shard's fixed files. Measured:
    a 20k-point 512 + 170-d version allocated 127 MB (before the terms); this asks for 235 MB. 100k points of
    1024-d took 1290 MB with the terms; this asks for 1825 MB."""
    return ROOM_FIXED_BYTES + points * (3 * 4 * sum(dims.values()) + ROOM_PAYLOAD_BYTES + ROOM_TERMS_BYTES)


def _check_room(published: Path, points: int, dims: Mapping[str, int]) -> None:
    """Raise ENOSPC (named as disk full by the callers) when the disk cannot take a new version."""
    need, free = room_needed(points, dims), shutil.disk_usage(published).free
    if free < need:
        raise OSError(
            errno.ENOSPC,
            f"No space left on device: a new index version of {points} points needs "
            f"~{need / 2**20:.0f} MB, {free / 2**20:.0f} MB free at {published}",
        )


def _remove_old_versions(published: Path, keep: str) -> None:
    """Delete versions older than the newest few, and parts none of the kept versions reads, unless a
    reader is loading one right now."""
    versions = sorted(p.name for p in published.iterdir() if p.is_dir() and p.name.startswith("v"))
    kept = set(versions[-SNAPSHOTS_KEPT:]) | {keep}
    needed = referenced_folders(published, kept)
    for folder in published.iterdir():
        if not folder.is_dir() or not folder.name.startswith(("v", DELTA_PREFIX)) or folder.name in needed:
            continue
        if folder_locked(folder):
            continue
        shutil.rmtree(folder, ignore_errors=True)
