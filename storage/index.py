"""The Qdrant index of tracklets: one point per tracklet, searchable by appearance and attributes.

Two deployments, one API:

* **Server** (`IndexConfig.url` set): a normal Qdrant client, shared per process. Payload indexes
  and HNSW make filtered search fast there; many processes can read and write at once.
* **Embedded** (default, `IndexConfig.path`): qdrant-client's local mode, no server to run. Its
  limits decide the design below.

Why the embedded mode is built the way it is (qdrant-client 1.20, measured on a 2-core Linux box,
ext4, reid + clip 512-d vectors per point, query = top 20 by `reid`, p50 / p95):

* Only ONE process can open a storage folder: `QdrantLocal._load` takes an exclusive, non-blocking
  `portalocker` lock on `<folder>/.lock` and raises `RuntimeError("Storage folder ... is already
  accessed by another instance of Qdrant client ...")` when it is held. It takes that lock only
  AFTER unpickling every point of every collection, so a failed open costs a full load.
* Opening is a full load: 124-181 ms / 148-295 ms at 1k points, 1.44-1.57 s / 1.73-2.27 s at 10k.
  A short-lived client per query (open + filtered query + close) therefore costs 220 / 320 ms at
  1k and 1.84 s / 1.98 s at 10k: far over a dashboard's 100 ms budget, so "hold the lock for one
  query" was measured and rejected.
* Even a long-lived client is slow once filtered: search is numpy brute force (6 / 13 ms at 1k,
  20-33 / 24-57 ms at 10k), but any payload filter runs `check_filter` in Python per point:
  43 / 54 ms at 1k, 200-238 / 247-320 ms at 10k for a camera or time filter. Payload indexes
  have no effect locally.
* Writes fsync per point: every upserted point is its own SQLite transaction under
  `synchronous=FULL`: 4.9 s per 256 points at 10k (10k points took 85 s). With `synchronous=OFF`
  on the collection's connection: 0.44 s per 256 points.

So the embedded index is a *live* folder that writers own and *published* immutable versions on
Qdrant's embedded Rust engine (qdrant-edge, `storage.edge_index`) that readers query:

    <path>/live/                      qdrant local storage; writers only, short-lived clients
    <path>/published/<version>/       an engine shard of live/'s points, written by the writer under its lock
    <path>/published/CURRENT          the version readers should use (atomic `os.replace`)

* A writer (`open_client(config)`, `upload_tracklets`, `delete_camera_points`) opens live/ with a
  short-lived client, waiting with backoff while another process holds it (`IndexLockedError`
  after `lock_timeout_s`). On a clean exit, if live/ changed, it writes live/'s points into a
  temporary engine shard (vectors, payloads, payload indexes; HNSW when big), fsyncs it, renames it
  into place and points CURRENT at it, then removes old versions. A writer that fails publishes
  nothing: readers keep the last complete index, never a half-written one. Once the published base
  holds `delta_min_points`, an upload (`upload_tracklets`, `delete_camera_points`: they record the ids
  they change) publishes only those ids as a small delta part on top of the current parts
  (`storage.index_parts`); deltas are merged, and a full version written, by its rules.
* A reader (`search_vectors`, `scroll_all`, `payload_columns`, `count_points`) loads the CURRENT
  version once per version per process, from a private copy (the engine allows one process per
  shard folder), and answers through the engine: HNSW / exact vector search with payload-indexed
  camera and time filters, and text search as a dot product on the attribute log-probabilities
  (see `storage.edge_index`). Each query re-reads CURRENT (microseconds) so a new upload shows up
  on the next query; a version that fails to load is never served (the previous one is). A reader of
  a version made of parts (`storage.version_reader`) keeps the parts it already loaded and loads only the
  new ones, so an upload's delta is visible in about the time its own shard takes to load. Readers
  never touch live/, so a running dashboard never blocks the pipeline and the reverse.
* Upload of 10k tracklets: 9.4 s through local mode (85 s with qdrant's default fsync). Figures for
  the engine at 10k-1M points: `benchmarks/search_scale.py`.

Costs of this choice: each reader process holds a private copy of the version on disk (deleted
when the next version is loaded) and two versions are kept.

This module holds the collection schema, upload and reading. The config and the records readers get are
`storage.index_config`; the clients (server, embedded live/ folder) and publishing live/ are
`storage.index_clients`; what a point holds (input checks, payloads) is `storage.index_points`; writing and
pruning published versions is `storage.index_versions`; the errors are `storage.index_errors`. The public
names of all of them are re-exported here.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from storage.attribute_vectors import ATTRIBUTE_VECTOR, AttributeTerms, probability_matrix
from storage.edge_index import Columns as PayloadColumns  # the points a text query scores, as columns
from storage.edge_index import EdgeIndexError, make_filter
from storage.index_clients import (
    append_batches,
    is_local,
    open_client,
    publish_batches,
    relax_local_fsync,
    track_changes,
)
from storage.index_config import (
    CLIP_VECTOR,
    REID_VECTOR,
    SCROLL_PAGE,
    TEXT_CANDIDATES,
    UPSERT_BATCH,
    IndexConfig,
    SearchHit,
    TimeBound,
    point_id,
)
from storage.index_errors import IndexLockedError, IndexSchemaError, IndexUnavailableError
from storage.index_filters import filter_bounds, query_filter, time_bounds
from storage.index_parts import PartsError
from storage.index_points import (
    ATTRIBUTE_PAYLOAD,
    PAYLOAD_INDEXES,
    check_tracklets,
    identity_lookup,
    tracklet_payload,
)
from storage.index_versions import (
    ROOM_FIXED_BYTES,
    read_current,
    room_needed,
)
from storage.schemas import ATTRIBUTE_VOCABULARY
from storage.version_reader import VersionReader

__all__ = [  # the index's API; the names re-exported from its helper modules are part of it
    "CLIP_VECTOR",
    "REID_VECTOR",
    "TEXT_CANDIDATES",
    "IndexConfig",
    "IndexLockedError",
    "IndexSchemaError",
    "IndexUnavailableError",
    "PAYLOAD_INDEXES",
    "PayloadColumns",
    "ROOM_FIXED_BYTES",
    "SearchHit",
    "TimeBound",
    "append_batches",
    "clear_reader_cache",
    "count_points",
    "current_version",
    "delete_camera_points",
    "ensure_collection",
    "open_client",
    "payload_columns",
    "point_id",
    "publish_batches",
    "room_needed",
    "scroll_all",
    "search_vectors",
    "upload_tracklets",
    "wait_until_warm",
]

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Collection schema


def ensure_collection(client: QdrantClient, config: IndexConfig) -> None:
    """Create the collection with its named vectors and payload indexes, or check an existing one.

    An existing collection whose vectors differ (another model's size, another distance) is an
    error, not silently recreated: its points could not be searched with this config's vectors.
    """
    name = config.collection
    wanted = config.vector_dims()
    if not client.collection_exists(name):
        client.create_collection(
            name,
            vectors_config={
                vector: qm.VectorParams(size=size, distance=qm.Distance.COSINE) for vector, size in wanted.items()
            },
        )
        existing_indexes: dict[str, Any] = {}
    else:
        info = client.get_collection(name)
        vectors = info.config.params.vectors
        if not isinstance(vectors, dict):
            raise IndexSchemaError(
                f"collection '{name}' has a single unnamed vector; SmartTrace needs named vectors "
                f"{', '.join(wanted)}: delete the collection (or the index folder) and upload again"
            )
        for vector, size in wanted.items():
            params = vectors.get(vector)
            if params is None:
                raise IndexSchemaError(
                    f"collection '{name}' has no '{vector}' vector (it has {', '.join(vectors) or 'none'}); the "
                    f"config expects '{vector}' of size {size}: delete the collection and upload again"
                )
            if params.size != size:
                raise IndexSchemaError(
                    f"collection '{name}' stores '{vector}' vectors of size {params.size}, the config expects "
                    f"{size}: the embedding model changed; delete the collection and upload again"
                )
            if params.distance != qm.Distance.COSINE:
                raise IndexSchemaError(
                    f"collection '{name}' compares '{vector}' vectors by {params.distance}, SmartTrace needs Cosine"
                )
        existing_indexes = dict(info.payload_schema or {})
    with warnings.catch_warnings():
        # Local mode warns that payload indexes do nothing there; they are for the server.
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        for field, schema in PAYLOAD_INDEXES.items():
            if field not in existing_indexes:
                client.create_payload_index(name, field_name=field, field_schema=schema, wait=True)


# --------------------------------------------------------------------------------------------
# Upload


def upload_tracklets(
    config: IndexConfig,
    tracklets: pa.Table | pd.DataFrame,
    identities: pa.Table | pd.DataFrame | None = None,
    location_by_camera: Mapping[str, str] | None = None,
    prune_orphans: bool = False,
) -> int:
    """Upsert one point per tracklet; returns the number of points written.

    Vectors: `reid` when the tracklet has one, `clip` when the collection has it and the tracklet
    has one. A tracklet without a reid embedding (all its crops too small) is still uploaded with
    no vectors: attribute search (colours, time, camera) still finds it. Payload: ids, global and
    camera-local person ids from `identities` (-1 when absent), location, frames, times (seconds,
    ISO 8601 and epoch seconds), video and thumbnail paths, colours.

    `prune_orphans=True` treats the table as the complete set of each camera it contains and
    deletes that camera's other points in the same session, so readers never see old and new
    tracklets mixed. A camera left with no tracklets needs `delete_camera_points(config, cam, [])`.
    """
    table = check_tracklets(tracklets, config.reid_dim, config.clip_dim)
    ids = identity_lookup(identities)
    locations = dict(location_by_camera or {})
    use_clip = config.clip_dim is not None and "clip_embedding" in table.column_names
    has_clip_column = "clip_embedding" in table.column_names
    if config.clip_dim is None and has_clip_column and table.column("clip_embedding").null_count < table.num_rows:
        logger.info("clip embeddings not indexed: index.clip_dim is not set")
    written = 0
    with open_client(config, tracked=True) as client:
        ensure_collection(client, config)
        if is_local(client):
            relax_local_fsync(client)
        for start in range(0, table.num_rows, UPSERT_BATCH):
            points = []
            for row in table.slice(start, UPSERT_BATCH).to_pylist():
                vector: dict[str, list[float]] = {}
                if row["reid_embedding"] is not None:
                    vector[REID_VECTOR] = row["reid_embedding"]
                clip = row.get("clip_embedding") if use_clip else None
                if clip is not None:
                    vector[CLIP_VECTOR] = clip
                identity = ids.get((row["camera_id"], int(row["tracklet_id"])))
                points.append(
                    qm.PointStruct(
                        id=point_id(row["camera_id"], row["tracklet_id"]),
                        vector=vector,
                        payload=tracklet_payload(row, identity, locations.get(row["camera_id"]), clip is not None),
                    )
                )
            client.upsert(config.collection, points=points, wait=True)
            track_changes(client, (str(p.id) for p in points))
            written += len(points)
        if prune_orphans and table.num_rows:
            keep: dict[str, set[str]] = {}
            for camera, tracklet in zip(
                table.column("camera_id").to_pylist(), table.column("tracklet_id").to_pylist(), strict=True
            ):
                keep.setdefault(camera, set()).add(point_id(camera, tracklet))
            for camera, keep_ids in keep.items():
                _delete_orphans(client, config, camera, keep_ids)
    return written


def _camera_filter(camera_ids: Iterable[str]) -> qm.Filter:
    return qm.Filter(must=[qm.FieldCondition(key="camera_id", match=qm.MatchAny(any=list(camera_ids)))])


def _delete_orphans(client: QdrantClient, config: IndexConfig, camera_id: str, keep: set[str]) -> int:
    stored: list[str] = []
    offset: Any = None
    while True:
        records, offset = client.scroll(
            config.collection,
            scroll_filter=_camera_filter([camera_id]),
            limit=10_000,  # local mode evaluates the filter over all points per page: few pages
            offset=offset,
            with_payload=False,
            with_vectors=False,
        )
        stored.extend(str(r.id) for r in records)
        if offset is None:
            break
    orphans = [p for p in stored if p not in keep]
    for start in range(0, len(orphans), UPSERT_BATCH):
        client.delete(config.collection, points_selector=qm.PointIdsList(points=orphans[start : start + UPSERT_BATCH]))
        track_changes(client, orphans[start : start + UPSERT_BATCH])
    if orphans:
        logger.info("deleted %d orphan points of camera %s", len(orphans), camera_id)
    return len(orphans)


def delete_camera_points(config: IndexConfig, camera_id: str, keep_ids: Iterable[int]) -> int:
    """Delete the camera's points whose tracklet id is not in `keep_ids`; returns how many.

    Re-running a camera can produce fewer or renumbered tracklets; their old points would
    otherwise stay searchable forever. `keep_ids` are tracklet ids (the new artifact's).
    """
    keep = {point_id(camera_id, tracklet) for tracklet in keep_ids}
    with open_client(config, tracked=True) as client:
        if not client.collection_exists(config.collection):
            return 0
        if is_local(client):
            relax_local_fsync(client)
        return _delete_orphans(client, config, camera_id, keep)


# --------------------------------------------------------------------------------------------
# Reading


_readers: dict[tuple[Path, str], VersionReader] = {}
_readers_lock = threading.Lock()


def current_version(config: IndexConfig) -> str | None:
    """The published version readers answer from (embedded mode); None before the first publish."""
    return read_current(config.published_path)


def _load_reader(config: IndexConfig, previous: VersionReader | None = None) -> VersionReader:
    """Load the CURRENT version into the engine, taking over the parts `previous` already serves; publish
    live/ first if it was never published."""
    published = config.published_path
    deadline = time.monotonic() + config.lock_timeout_s
    while True:
        version = read_current(published)
        if version is None or not (published / version).is_dir():
            if not (config.live_path / "meta.json").is_file():
                if version is None:
                    raise IndexUnavailableError(
                        f"no SmartTrace index at {config.path}: nothing was uploaded there yet (run the pipeline's "
                        "index stage, or check storage.run_dir / index.path)"
                    )
                raise IndexUnavailableError(
                    f"the published index {published / version} is missing and there is no {config.live_path} "
                    "to publish it from: upload the tracklets again"
                )
            if version is not None and read_current(published) != version:
                continue  # replaced between the two reads
            with open_client(config):  # publishes live/ on exit (again, if the version was deleted by hand)
                pass
            continue
        try:
            return VersionReader(published, version, previous.loaded if previous is not None else None)
        except (FileNotFoundError, shutil.Error, EdgeIndexError, PartsError) as exc:
            if read_current(published) != version:
                continue  # removed after a newer publish while we copied it: take the newer one
            if time.monotonic() > deadline:
                raise IndexUnavailableError(
                    f"cannot load the published index version {published / version}: {exc}"
                ) from exc
            time.sleep(0.05)


def _reader(config: IndexConfig) -> VersionReader:
    """The engine on the CURRENT version, loaded once per version per process.

    Each call re-reads CURRENT (microseconds), so a new upload is served by the next query. A new
    version that fails to load (a torn copy) is never served: readers keep the previous one.
    """
    key = (config.path.resolve(), config.collection)
    cached = _readers.get(key)
    if cached is not None and read_current(config.published_path) == cached.version:
        return cached
    with _readers_lock:  # one loader per process; others wait for it instead of loading too
        cached = _readers.get(key)
        if cached is not None and read_current(config.published_path) == cached.version:
            return cached
        try:
            reader = _load_reader(config, cached)
        except IndexUnavailableError:
            if cached is None:
                raise
            logger.warning("index %s: the new version cannot be loaded, serving %s", config.path, cached.version)
            return cached
        _readers[key] = reader
    if cached is not None:
        cached.close(keep=set(reader.readers))  # waits for a query running on a part it closes
    return reader


def _attribute_matrix(payloads: Sequence[dict[str, Any]], pop: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(n, len(ATTRIBUTE_VOCABULARY)) probabilities from the payloads (NaN where absent), and which
    points have them. `pop` removes the lists from the payloads (the matrix holds them from then on)."""
    matrix, present = probability_matrix(payloads)
    if pop:
        for payload in payloads:
            payload.pop(ATTRIBUTE_PAYLOAD, None)
    return matrix.astype(np.float32), present


def clear_reader_cache() -> None:
    """Close every loaded version (tests; a dashboard's 'reload' button)."""
    with _readers_lock:
        for reader in _readers.values():
            reader.close()
        _readers.clear()


def _check_query_vector(config: IndexConfig, vector_name: str, vector: Sequence[float] | np.ndarray) -> np.ndarray:
    dims = config.vector_dims()
    if vector_name not in dims:
        raise IndexSchemaError(
            f"cannot search by '{vector_name}': the index config has vectors {', '.join(dims)}"
            + (" (set index.clip_dim to index CLIP embeddings)" if vector_name == CLIP_VECTOR else "")
        )
    query = np.asarray(vector, dtype=np.float32).reshape(-1)
    if query.size != dims[vector_name]:
        raise IndexSchemaError(
            f"query '{vector_name}' vector has {query.size} values, collection '{config.collection}' "
            f"stores {dims[vector_name]}"
        )
    if not np.isfinite(query).all():
        raise IndexSchemaError(f"query '{vector_name}' vector holds NaN or infinite values")
    return query


def search_vectors(
    config: IndexConfig,
    vector_name: str,
    vector: Sequence[float] | np.ndarray,
    limit: int = 20,
    camera_ids: Sequence[str] | None = None,
    time_range: tuple[TimeBound, TimeBound] | None = None,
) -> list[SearchHit]:
    """The `limit` tracklets most similar (cosine) to `vector`, best first.

    `camera_ids`: only these cameras (None: all). `time_range`: (start, end) as datetimes (naive
    = UTC) or epoch seconds, either end None for open; keeps tracklets overlapping it.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    query = _check_query_vector(config, vector_name, vector)
    low, high = time_bounds(time_range)
    if camera_ids is not None and not list(camera_ids):
        return []
    if config.url:
        with open_client(config, read_only=True) as client:
            _require_collection(client, config)
            response = client.query_points(
                config.collection,
                query=query.tolist(),
                using=vector_name,
                limit=limit,
                query_filter=query_filter(camera_ids, low, high),
                with_payload=True,
            )
        return [SearchHit(str(p.id), float(p.score), p.payload or {}) for p in response.points]
    reader = _reader(config)
    where = make_filter(camera_ids, low, high)
    try:
        hits = reader.search(vector_name, query, limit, where)
    except Exception as exc:  # the engine names an unknown vector or a size mismatch in its message
        raise IndexSchemaError(f"cannot search '{vector_name}' in the index version {reader.folder}: {exc}") from exc
    return [SearchHit(pid, score, payload) for pid, score, payload in hits]


def _require_collection(client: QdrantClient, config: IndexConfig) -> None:
    if not client.collection_exists(config.collection):
        raise IndexUnavailableError(
            f"the Qdrant server at {config.url} has no collection '{config.collection}': run the index stage"
        )


def scroll_all(
    config: IndexConfig,
    camera_ids: Sequence[str] | None = None,
    time_range: tuple[TimeBound, TimeBound] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Every point's (id, payload), optionally only some cameras / a time range: for attribute scoring."""
    low, high = time_bounds(time_range)
    if camera_ids is not None and not list(camera_ids):
        return []
    if config.url:
        out: list[tuple[str, dict[str, Any]]] = []
        with open_client(config, read_only=True) as client:
            _require_collection(client, config)
            offset: Any = None
            while True:
                records, offset = client.scroll(
                    config.collection,
                    scroll_filter=query_filter(camera_ids, low, high),
                    limit=SCROLL_PAGE,
                    offset=offset,
                    with_payload=True,
                    with_vectors=False,
                )
                out.extend((str(r.id), r.payload or {}) for r in records)
                if offset is None:
                    return out
    return _reader(config).scroll(make_filter(camera_ids, low, high))


def payload_columns(
    config: IndexConfig,
    camera_ids: Sequence[str] | None = None,
    time_range: tuple[TimeBound, TimeBound] | None = None,
    attribute_query: AttributeTerms | None = None,
    candidates: int | None = None,
    attribute_filters: Mapping[str, bool] | None = None,
) -> PayloadColumns:
    """Ids, payloads and the attribute probability matrix of the points in the filters.

    Embedded mode with `attribute_query` (`storage.attribute_vectors.attribute_terms`): only the
    engine's `candidates` best points by that query, plus every point indexed without attributes
    (the colour rules score those). `attribute_filters` are applied by the engine there; elsewhere
    the caller applies them (`search.text.filter_mask`).
    """
    low, high = time_bounds(time_range)
    if camera_ids is not None and not list(camera_ids):
        return PayloadColumns([], [], np.zeros((0, len(ATTRIBUTE_VOCABULARY)), np.float32), np.zeros(0, bool))
    if config.url:
        rows = scroll_all(config, camera_ids, time_range)
        payloads = [payload for _pid, payload in rows]
        matrix, present = _attribute_matrix(payloads, pop=True)
        return PayloadColumns([pid for pid, _payload in rows], payloads, matrix, present)
    reader = _reader(config)
    at_least, at_most = filter_bounds(attribute_filters)
    if attribute_query is None:
        return reader.scroll_columns(make_filter(camera_ids, low, high, at_least=at_least, at_most=at_most))
    where = make_filter(camera_ids, low, high, at_least=at_least, at_most=at_most)
    found = reader.search_attribute_columns(attribute_query, candidates or TEXT_CANDIDATES, where)
    if attribute_filters or not reader.without_attributes:  # a filter needs attributes: those points fail it
        return found
    return PayloadColumns.concat(
        [found, reader.scroll_columns(make_filter(camera_ids, low, high, without_vector=ATTRIBUTE_VECTOR))]
    )


def wait_until_warm(config: IndexConfig, timeout: float | None = None) -> bool:
    """Block until this process's reader of the CURRENT version has read its files into the page cache
    (`EdgeReader._warm`); True when it has. Embedded mode only (a server warms itself): True at once."""
    if config.url:
        return True
    return _reader(config).warmed.wait(timeout)


def count_points(config: IndexConfig) -> int:
    """Number of tracklets in the index (the published version in embedded mode)."""
    if config.url:
        with open_client(config, read_only=True) as client:
            _require_collection(client, config)
            return client.count(config.collection, exact=True).count
    return _reader(config).count()
