"""Clients of the tracklet index: a Qdrant server, or the embedded live/ folder, and publishing live/.

An embedded writer opens live/ with a short-lived qdrant-client local-mode client (waiting with backoff
while another process holds its lock) and, on a clean exit, publishes live/'s points as a new engine
version for the readers (`storage.index_versions`). See `storage.index` for why it is built this way.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from storage.attribute_vectors import read_groups
from storage.edge_index import Batch
from storage.index_config import SCROLL_PAGE, IndexConfig
from storage.index_errors import IndexLockedError, IndexUnavailableError
from storage.index_parts import DeltaPolicy, Part, PartsError, plan_publish, version_parts
from storage.index_versions import (
    SOURCE_STAMP_FILE,
    folder_locked,
    read_current,
    source_stamp,
    write_composed,
    write_published,
)

logger = logging.getLogger("storage.index")

_LOCK_ERROR_TEXT = "already accessed by another instance"
_MAX_BACKOFF_S = 0.25


def _open_local(folder: Path, timeout_s: float, must_exist: bool, deadline: float | None = None) -> QdrantClient:
    """Open an embedded client on `folder`, retrying with backoff while another process holds it.

    Gives up at `deadline` (monotonic clock; default now + `timeout_s`), naming `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s if deadline is None else deadline
    delay = 0.02
    while True:
        if must_exist and not (folder / "meta.json").is_file():
            # QdrantLocal would create an empty storage here; a vanished snapshot is retried by the caller.
            raise FileNotFoundError(f"{folder} holds no qdrant storage")
        if not folder_locked(folder):
            try:
                return QdrantClient(path=str(folder))
            except RuntimeError as exc:
                if _LOCK_ERROR_TEXT not in str(exc):
                    raise
                # Lost the race between the probe and qdrant's own lock: wait like any other holder.
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise IndexLockedError(
                f"the embedded Qdrant index folder {folder} is held by another process (a pipeline upload, "
                f"a dashboard loading it, or another qdrant client) for more than {timeout_s:g} s: wait for it "
                "to finish, raise index.lock_timeout_s, or run a Qdrant server and set index.url"
            )
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, _MAX_BACKOFF_S)


_remote_clients: dict[tuple[str, str | None], QdrantClient] = {}
_remote_lock = threading.Lock()


def _remote_client(config: IndexConfig) -> QdrantClient:
    """One client per server and key per process: construction costs ~0.1 s and it is thread-safe."""
    assert config.url is not None
    api_key = config.api_key.get_secret_value() if config.api_key else None
    key = (config.url, api_key)
    with _remote_lock:
        client = _remote_clients.get(key)
        if client is None:
            client = QdrantClient(url=config.url, api_key=api_key)
            _remote_clients[key] = client
        return client


# Writer sessions whose every change is recorded (`track_changes`), by id(client): only those may be
# published as a delta part; any other session's changes are unknown, so it publishes a full version.
_journals: dict[int, set[str]] = {}


def track_changes(client: QdrantClient, point_ids: Iterable[str]) -> None:
    """Record ids a tracked writer session upserted or deleted (no-op for other clients)."""
    journal = _journals.get(id(client))
    if journal is not None:
        journal.update(str(i) for i in point_ids)


@contextlib.contextmanager
def open_client(config: IndexConfig, read_only: bool = False, tracked: bool = False) -> Iterator[QdrantClient]:
    """A Qdrant client for the index, released on exit.

    Server mode: the process's shared client for `config.url`; connection and auth failures
    become `IndexUnavailableError`.
    Embedded mode, `read_only=False`: a short-lived client on `live/`, waiting up to
    `lock_timeout_s` for other processes; on a clean exit live/ is published if it changed.
    Embedded mode, `read_only=True`: a short-lived client on the CURRENT published snapshot (never
    on live/, so it does not block writers). Do not write through it: snapshots are immutable.
    `tracked=True`: the caller reports every id it writes or deletes through `track_changes`, so the
    session may be published as a small delta part (`storage.index_parts`) instead of a full version.
    """
    if config.url:
        client = _remote_client(config)
        try:
            yield client
        except ResponseHandlingException as exc:
            raise IndexUnavailableError(f"cannot reach the Qdrant server at {config.url}: {exc}") from exc
        except UnexpectedResponse as exc:
            if exc.status_code in (401, 403):
                raise IndexUnavailableError(
                    f"the Qdrant server at {config.url} refused the request ({exc.status_code}): check index.api_key"
                ) from exc
            raise
        return
    if read_only:
        raise ValueError(
            "embedded published versions are qdrant-edge shards: read them with search_vectors / scroll_all / "
            "payload_columns / count_points, not a qdrant client"
        )
    client = _open_local(config.live_path, config.lock_timeout_s, must_exist=False)
    opened_stamp = source_stamp(config.live_path) if tracked else None
    if tracked:
        _journals[id(client)] = set()
    try:
        yield client
        journal = _journals.pop(id(client), None)
        _publish(config, client, journal, opened_stamp)  # still holding the lock: the copy is consistent
    except (OSError, sqlite3.OperationalError) as exc:
        if not _disk_full(exc):
            raise
        raise IndexUnavailableError(
            f"cannot write the embedded Qdrant index {config.path}: disk full ({exc}); nothing was published, "
            "readers keep the last published version: free space and run the upload again"
        ) from exc
    finally:
        _journals.pop(id(client), None)
        client.close()


def _disk_full(exc: BaseException) -> bool:
    """ENOSPC from a file write, SQLite's "database or disk is full", or a copytree that met either."""
    text = str(exc)
    return getattr(exc, "errno", None) == errno.ENOSPC or "disk is full" in text or "No space left" in text


def relax_local_fsync(client: QdrantClient) -> None:
    """Turn off SQLite's per-commit fsync on the embedded collections of a writer's client.

    Local mode commits every point on its own (see module docstring: 85 s for 10k points at
    synchronous=FULL). OFF keeps the file safe if the process dies; only an OS crash can lose
    recent writes, and the published snapshot (fsynced) and the Parquet artifacts it is built
    from survive that. Private attributes of qdrant-client: skipped when they move.
    """
    collections = getattr(getattr(client, "_client", None), "collections", None)
    if not isinstance(collections, dict):
        return
    for collection in collections.values():
        connection = getattr(getattr(collection, "storage", None), "storage", None)
        if isinstance(connection, sqlite3.Connection):
            connection.execute("PRAGMA synchronous=OFF")


def is_local(client: QdrantClient) -> bool:
    return client.init_options.get("path") is not None or client.init_options.get("location") == ":memory:"


# --------------------------------------------------------------------------------------------
# Publishing snapshots (embedded mode)


def _stored_stamp(published: Path, version: str | None) -> dict | None:
    """The live/ stamp a version was published from (None when unknown)."""
    if version is None:
        return None
    with contextlib.suppress(OSError, ValueError):
        return json.loads((published / version / SOURCE_STAMP_FILE).read_text())
    return None


def _extendable_parts(published: Path, version: str, need_count: bool = True) -> list[Part] | None:
    """The version's parts when a delta may be added to them: every part on disk, the base written with the
    sparse attribute terms (a delta's text scores must compare with the base's) and, for `plan_publish`'s
    size rules (`need_count`), its point count recorded."""
    try:
        parts = version_parts(published, version)
    except PartsError:
        return None
    if (need_count and parts[0].count < 0) or read_groups(published / parts[0].folder) is None:
        return None
    if not all((published / p.folder).is_dir() for p in parts if p.folder):
        return None
    return parts


def delta_policy(config: IndexConfig) -> DeltaPolicy:
    return DeltaPolicy(config.delta_min_points, config.max_delta_parts, config.max_delta_share)


def _publish(config: IndexConfig, client: QdrantClient, journal: set[str] | None = None,
             opened_stamp: dict | None = None) -> str | None:  # fmt: skip
    """Publish live/'s changes for the readers and point CURRENT at them. Caller holds live/'s lock.

    A tracked session (`journal`) that started from the current version's live/ state adds one delta part
    of the ids it changed (or merges the deltas) when `plan_publish` allows; anything else writes a full
    version of live/'s points. Returns the current version (unchanged when live/ did not change).
    """
    live, published = config.live_path, config.published_path
    if not (live / "meta.json").is_file():
        return None
    stamp = source_stamp(live)
    current = read_current(published)
    stored = _stored_stamp(published, current)
    if stored == stamp:
        return current
    parts = None
    if journal is not None and current is not None and stored is not None and stored == opened_stamp:
        parts = _extendable_parts(published, current)
    plan = plan_publish(parts, journal or set(), delta_policy(config))
    if plan.kind == "full":
        ids, vectors, payloads = _version_payloads(client, config)
        dims = {n: m.shape[1] for n, m in vectors.items()}
        version = write_published(published, [(ids, vectors, payloads)], len(ids), dims, stamp)
        logger.info("published index version %s (%d points) from %s: %s", version, len(ids), live, plan.reason)
        return version
    ids, vectors, payloads = _version_payloads(client, config, sorted(plan.touched))
    dims = {n: m.shape[1] for n, m in vectors.items()}
    version = write_composed(published, plan.keep, [(ids, vectors, payloads)] if ids else [], len(ids), dims,
                             plan.touched, stamp)  # fmt: skip
    logger.info("published index version %s: %s of %d points, %d removed (%s)", version, plan.kind, len(ids),
                len(plan.touched) - len(ids), plan.reason)  # fmt: skip
    return version


def publish_batches(config: IndexConfig, batches: Iterable[Batch], total: int, dims: Mapping[str, int]) -> str:
    """Publish points as a new version straight to the readers (no live/ folder): bulk loads and
    `benchmarks/search_scale.py`, so 1M points never pass through qdrant-client's local mode.

    `batches` yields (ids, {vector name: (n, dim) array, NaN rows for points without it}, payloads as
    `upload_tracklets` writes them), made on demand: 1M payload dicts at once would take ~21 GB.
    `total` = the points in all batches. The caller must be the only publisher of `config.path`.
    """
    return write_published(config.published_path, batches, total, dict(dims), stamp={})


def append_batches(config: IndexConfig, batches: Iterable[Batch], total: int, dims: Mapping[str, int],
                   removed: Iterable[str] = ()) -> str:  # fmt: skip
    """Publish points as one delta part on top of the CURRENT version (no live/ folder), hiding their old
    copies and the `removed` ids: bulk appends and `benchmarks/search_scale.py --delta`. The caller must be
    the only publisher of `config.path`; the version must be extendable (see `_extendable_parts`)."""
    published = config.published_path
    current = read_current(published)
    parts = _extendable_parts(published, current, need_count=False) if current is not None else None
    if parts is None:
        raise IndexUnavailableError(f"{published}: no current version with known parts to append to")
    return write_composed(published, parts, batches, total, dict(dims), set(map(str, removed)), stamp={})


def _version_payloads(
    client: QdrantClient, config: IndexConfig, only: list[str] | None = None
) -> tuple[list[str], dict[str, np.ndarray], list[dict]]:
    """Every point of the live collection (or those of the `only` ids that exist): ids, (n, dim) vectors
    (NaN rows where absent), payloads."""
    dims = config.vector_dims()
    exists = client.collection_exists(config.collection)  # once: the caller holds live/'s lock
    if exists:
        params = client.get_collection(config.collection).config.params.vectors
        if isinstance(params, dict):
            dims = {name: p.size for name, p in params.items()}
    ids: list[str] = []
    payloads: list[dict[str, Any]] = []
    rows: dict[str, list[np.ndarray]] = {name: [] for name in dims}

    def add(records: list[Any]) -> None:
        for record in records:
            named = record.vector if isinstance(record.vector, dict) else {}
            for name, dim in dims.items():
                vec = named.get(name)
                rows[name].append(np.asarray(vec, np.float32) if vec is not None else np.full(dim, np.nan, np.float32))
            ids.append(str(record.id))
            payloads.append(record.payload or {})

    if exists and only is not None:
        for start in range(0, len(only), SCROLL_PAGE):
            add(client.retrieve(config.collection, only[start : start + SCROLL_PAGE], with_payload=True,
                                with_vectors=True))  # fmt: skip
    elif exists:
        offset: Any = None
        while True:
            records, offset = client.scroll(
                config.collection, limit=SCROLL_PAGE, offset=offset, with_payload=True, with_vectors=True
            )
            add(records)
            if offset is None:
                break
    vectors = {
        name: np.stack(block) if block else np.zeros((0, dims[name]), np.float32) for name, block in rows.items()
    }
    return ids, vectors, payloads
