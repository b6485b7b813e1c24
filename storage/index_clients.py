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

from storage.edge_index import Batch
from storage.index_config import SCROLL_PAGE, IndexConfig
from storage.index_errors import IndexLockedError, IndexUnavailableError
from storage.index_versions import SOURCE_STAMP_FILE, folder_locked, read_current, source_stamp, write_published

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


@contextlib.contextmanager
def open_client(config: IndexConfig, read_only: bool = False) -> Iterator[QdrantClient]:
    """A Qdrant client for the index, released on exit.

    Server mode: the process's shared client for `config.url`; connection and auth failures
    become `IndexUnavailableError`.
    Embedded mode, `read_only=False`: a short-lived client on `live/`, waiting up to
    `lock_timeout_s` for other processes; on a clean exit live/ is published if it changed.
    Embedded mode, `read_only=True`: a short-lived client on the CURRENT published snapshot (never
    on live/, so it does not block writers). Do not write through it: snapshots are immutable.
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
    try:
        yield client
        _publish(config, client)  # still holding the lock: the copy is consistent
    except (OSError, sqlite3.OperationalError) as exc:
        if not _disk_full(exc):
            raise
        raise IndexUnavailableError(
            f"cannot write the embedded Qdrant index {config.path}: disk full ({exc}); nothing was published, "
            "readers keep the last published version: free space and run the upload again"
        ) from exc
    finally:
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


def _publish(config: IndexConfig, client: QdrantClient) -> str | None:
    """Write live/'s points as a new engine version and point CURRENT at it. Caller holds live/'s lock.

    Returns the current version (unchanged when live/ did not change).
    """
    live, published = config.live_path, config.published_path
    if not (live / "meta.json").is_file():
        return None
    stamp = source_stamp(live)
    current = read_current(published)
    if current is not None:
        with contextlib.suppress(OSError, ValueError):
            if json.loads((published / current / SOURCE_STAMP_FILE).read_text()) == stamp:
                return current
    ids, vectors, payloads = _version_payloads(client, config)
    dims = {n: m.shape[1] for n, m in vectors.items()}
    version = write_published(published, [(ids, vectors, payloads)], len(ids), dims, stamp)
    logger.info("published index version %s (%d points) from %s", version, len(ids), live)
    return version


def publish_batches(config: IndexConfig, batches: Iterable[Batch], total: int, dims: Mapping[str, int]) -> str:
    """Publish points as a new version straight to the readers (no live/ folder): bulk loads and
    `benchmarks/search_scale.py`, so 1M points never pass through qdrant-client's local mode.

    `batches` yields (ids, {vector name: (n, dim) array, NaN rows for points without it}, payloads as
    `upload_tracklets` writes them), made on demand: 1M payload dicts at once would take ~21 GB.
    `total` = the points in all batches. The caller must be the only publisher of `config.path`.
    """
    return write_published(config.published_path, batches, total, dict(dims), stamp={})


def _version_payloads(client: QdrantClient, config: IndexConfig) -> tuple[list[str], dict[str, np.ndarray], list[dict]]:
    """Every point of the live collection: ids, (n, dim) vectors (NaN rows where absent), payloads."""
    dims = config.vector_dims()
    if client.collection_exists(config.collection):
        params = client.get_collection(config.collection).config.params.vectors
        if isinstance(params, dict):
            dims = {name: p.size for name, p in params.items()}
    ids: list[str] = []
    payloads: list[dict[str, Any]] = []
    rows: dict[str, list[np.ndarray]] = {name: [] for name in dims}
    offset: Any = None
    while client.collection_exists(config.collection):
        records, offset = client.scroll(
            config.collection, limit=SCROLL_PAGE, offset=offset, with_payload=True, with_vectors=True
        )
        for record in records:
            named = record.vector if isinstance(record.vector, dict) else {}
            for name, dim in dims.items():
                vec = named.get(name)
                rows[name].append(np.asarray(vec, np.float32) if vec is not None else np.full(dim, np.nan, np.float32))
            ids.append(str(record.id))
            payloads.append(record.payload or {})
        if offset is None:
            break
    vectors = {
        name: np.stack(block) if block else np.zeros((0, dims[name]), np.float32) for name, block in rows.items()
    }
    return ids, vectors, payloads
