"""Published index versions on Qdrant's embedded Rust engine (qdrant-edge): what readers query.

Why this engine, and why the design below (qdrant-edge-py 0.9.0 on a 2-core Linux box; the issue's
own throwaway measurement, then `benchmarks/search_scale.py`): a top-20 query over 100k 512-d points
takes ~10 ms exact, 1-4 ms with HNSW, a camera + time filtered one ~2 ms; reopening a shard 0.5 s.
The numpy reader it replaces loaded every point into Python (34 s for a new version at 50k) and
scored text queries over every payload.

* A version is an EdgeShard folder, written once by the publisher (`write_version`) and never
  changed after: named vectors (`reid`, `clip`: cosine; `attr_logp`, `attr_terms`: see below), the point
  payloads, payload indexes on the filter fields, and HNSW when the version is big enough.
* Only ONE process may load a shard folder (the engine locks its WAL; a second `load` fails, and
  disabling the WAL to dodge that crashes writers). So a reader loads a private copy of the version
  (`EdgeReader`: hard links to the segment files plus a real copy of the small WAL, under
  `published/.readers/`, `storage.reader_copies`); the published folder stays untouched and any number of processes
  (dashboard, API, CLI) read the same version.
* Text search by attributes is a vector search too: a description's weighted sum of
  log-probabilities (the log of the geometric mean the scorer ranks by) is ONE sparse dot product
  over the point's `attr_terms`, alternatives included; `attr_logp` holds the probabilities to read
  back. Both layouts: `storage.attribute_vectors`.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    HasVectorCondition,
    HnswIndexConfig,
    MatchAny,
    PayloadSchemaType,
    Point,
    QuantizationSearchParams,
    Query,
    QueryRequest,
    RangeFloat,
    ScalarQuantizationConfig,
    ScalarType,
    ScrollRequest,
    SearchParams,
    SparseVector,
    UpdateOperation,
)

from storage.attribute_vectors import (
    ATTRIBUTE_PAYLOAD,
    ATTRIBUTE_TERMS,
    ATTRIBUTE_VECTOR,
    AttributeTerms,
    attribute_dim,
    attribute_log_matrix,
    attribute_matrix_from_log,
    probability_lists,
    probability_matrix,
    read_groups,
    term_rows,
    write_groups,
)
from storage.index_errors import EdgeIndexError
from storage.reader_copies import copy_private
from storage.schemas import ATTRIBUTE_VOCABULARY
from tasks.text_query import alternative_groups

log = logging.getLogger("smarttrace.index")

UPSERT_BATCH = 512  # points per engine update: bounded memory when a version of 1M points is written
SCROLL_PAGE = 2048
# Build HNSW graphs only from this many points: below it an exact scan is as fast (Qdrant's own
# full_scan_threshold default is 10,000 KB, ~5k points of 512-d) and a version is written in
# milliseconds instead of seconds (the pipeline publishes after every upload).
HNSW_MIN_POINTS = 20_000
# Engine HNSW parameters. m 32 (Qdrant's default is 16): at 20k points around real PETA OSNet vectors
# (benchmarks/search_scale.py, 40 queries) image recall@20 against exact search was 0.954 with m 32,
# 0.914-0.925 with m 16, for 16% more build time. ef_construct: Qdrant's default. Search-time ef: at
# least 256 (ef 128 gave recall@20 0.895 at 100k real-vector points), or the hits asked for if more.
HNSW_M = 32
HNSW_EF_CONSTRUCT = 100
HNSW_EF_SEARCH = 256
# No per-value payload subgraphs (Qdrant builds one per keyword value when payload_m is unset): they
# took most of a version's build time, and filtered queries stay fast without them, because a selective
# filter is answered by an exact scan over the payload index (20k PETA points: filtered p95 6.6 ms with
# payload_m 0 vs 2.9 ms with the subgraphs; image p95 12.5 vs 17.8 ms).
HNSW_PAYLOAD_M = 0
# Scalar int8 copies of the appearance vectors, in RAM, for versions with a graph: the graph is built
# and walked on them, and the best `QUANTIZED_OVERSAMPLING` x limit candidates are re-scored on the
# float vectors. 100k points around real PETA OSNet vectors, 1024-d (benchmarks/search_scale.py, 40
# queries, same machine and day): image p95 84.8 -> 27.7 ms, filtered 19.4 -> 9.7 ms, recall@20 vs
# exact 0.958 -> 0.976, version build 99.6 -> 65.3 s, reader RSS 854 -> 954 MB. Smaller versions
# (exact scans) keep float vectors only, so their results are exact.
QUANTIZED_OVERSAMPLING = 2.0
QUANTILE = 0.99  # clip the 1% most extreme values when choosing the int8 range (Qdrant's usual setting)
_QUANTIZED_RESCORED = QuantizationSearchParams(rescore=True, oversampling=QUANTIZED_OVERSAMPLING)
_QUANTIZED_EXACT = QuantizationSearchParams(ignore=True)  # an exact query compares the float vectors
# Below this much vector data (KB) in a segment, or a filter this selective, the engine scans exactly:
# Qdrant's default.
FULL_SCAN_THRESHOLD_KB = 10_000

_FIELD_TYPES = {
    "keyword": PayloadSchemaType.Keyword,
    "integer": PayloadSchemaType.Integer,
    "float": PayloadSchemaType.Float,
    "bool": PayloadSchemaType.Bool,
}


def _edge_config(dims: Mapping[str, int], hnsw: bool) -> EdgeConfig:
    graph = HnswIndexConfig(
        m=HNSW_M if hnsw else 0,
        ef_construct=HNSW_EF_CONSTRUCT,
        full_scan_threshold=FULL_SCAN_THRESHOLD_KB,
        payload_m=HNSW_PAYLOAD_M,
    )
    quantized = ScalarQuantizationConfig(type=ScalarType.Int8, quantile=QUANTILE, always_ram=True) if hnsw else None
    vectors = {name: EdgeVectorParams(size=int(size), distance=Distance.Cosine, quantization_config=quantized)
               for name, size in dims.items()}  # fmt: skip
    # The dense attribute vector is read back (the probabilities), and ranked by only in versions written
    # before the sparse `attr_terms` (`storage.attribute_vectors`). No HNSW graph for it: a graph over dot
    # products of log-probabilities (all <= 0, not a metric) gave text recall@20 0.67 at 20k points.
    exact = HnswIndexConfig(m=0, ef_construct=HNSW_EF_CONSTRUCT, full_scan_threshold=FULL_SCAN_THRESHOLD_KB)
    vectors[ATTRIBUTE_VECTOR] = EdgeVectorParams(size=attribute_dim(), distance=Distance.Dot, hnsw_config=exact)
    return EdgeConfig(vectors=vectors, sparse_vectors={ATTRIBUTE_TERMS: EdgeSparseVectorParams()}, hnsw_config=graph)


def _points(
    ids: Sequence[str],
    vectors: Mapping[str, np.ndarray],
    payloads: Sequence[dict[str, Any]],
    start: int,
    stop: int,
    groups: Sequence[tuple[str, ...]],
) -> list[Point]:
    """Engine points of rows [start, stop): a NaN vector row means "this point has no such vector"."""
    blocks = {name: matrix[start:stop] for name, matrix in vectors.items()}
    finite = {name: np.isfinite(block).all(axis=1) for name, block in blocks.items()}
    rows = {name: block.tolist() for name, block in blocks.items()}
    probs, has_logp = probability_matrix(payloads[start:stop])
    logp_rows = attribute_log_matrix(probs).tolist()
    terms = term_rows(probs, groups)
    points = []
    for j in range(stop - start):
        named: dict[str, Any] = {name: rows[name][j] for name in blocks if finite[name][j]}
        payload = payloads[start + j]
        if has_logp[j]:
            named[ATTRIBUTE_VECTOR] = logp_rows[j]
            named[ATTRIBUTE_TERMS] = SparseVector(*terms[j])
            payload = {key: value for key, value in payload.items() if key != ATTRIBUTE_PAYLOAD}  # in the vector
        points.append(Point(ids[start + j], named, payload))
    return points


Batch = tuple[Sequence[str], Mapping[str, np.ndarray], Sequence[dict[str, Any]]]  # ids, vectors, payloads


def write_version(
    folder: Path,
    dims: Mapping[str, int],
    ids: Sequence[str],
    vectors: Mapping[str, np.ndarray],
    payloads: Sequence[dict[str, Any]],
    hnsw: bool = True,
    field_indexes: Mapping[str, str] | None = None,
) -> None:
    """Write the points as a new engine shard at `folder` (which must not exist yet).

    `vectors[name]` is (n, dims[name]); a NaN row marks a point without that vector. Payloads are
    stored as given. `field_indexes` maps a payload field to keyword / integer / float / bool.
    The HNSW graph is built (blocking) when `hnsw` and the version holds >= HNSW_MIN_POINTS points.
    """
    write_version_batches(folder, dims, [(ids, vectors, payloads)], len(ids), hnsw, field_indexes)


def write_version_batches(
    folder: Path,
    dims: Mapping[str, int],
    batches: Iterable[Batch],
    total: int,
    hnsw: bool = True,
    field_indexes: Mapping[str, str] | None = None,
) -> None:
    """`write_version` from batches made on demand: a 1M-point version never sits in memory as
    Python payloads at once (~21 GB for 1M dicts, measured). `total` = the points all batches hold."""
    if folder.exists():
        raise FileExistsError(f"index version folder {folder} exists already: versions are written once")
    build_graph = hnsw and total >= HNSW_MIN_POINTS
    shard = EdgeShard.create(str(folder), _edge_config(dims, build_graph))
    progress = _WriteProgress(total)
    groups = alternative_groups()
    try:
        for field, kind in (field_indexes or {}).items():
            shard.update(UpdateOperation.create_field_index(field, _FIELD_TYPES[kind]))
        written = 0
        for ids, vectors, payloads in batches:
            if len(ids) != len(payloads) or any(len(m) != len(ids) for m in vectors.values()):
                raise ValueError("write_version needs one payload and one row of every vector per id")
            for start in range(0, len(ids), UPSERT_BATCH):
                stop = min(start + UPSERT_BATCH, len(ids))
                shard.update(UpdateOperation.upsert_points(_points(ids, vectors, payloads, start, stop, groups)))
                progress.update(written + stop)
            written += len(ids)
        if written != total:
            raise ValueError(f"write_version_batches: the batches held {written} points, {total} announced")
        if build_graph:
            progress.graph()
            shard.optimize()
            progress.done()
        shard.flush()
        write_groups(folder, groups)
    finally:
        shard.close()


class _WriteProgress:
    """Log lines with counts, rate and ETA while a big version is written (every ~10%), and the graph build."""

    MIN_POINTS = 100_000  # smaller versions are written in seconds: no lines

    def __init__(self, total: int) -> None:
        self.total, self.started, self.next = total, time.monotonic(), total // 10
        self.enabled = total >= self.MIN_POINTS

    def update(self, done: int) -> None:
        if not self.enabled or done < self.next:
            return
        self.next = done + self.total // 10
        rate = done / max(time.monotonic() - self.started, 1e-6)
        log.info("index version: %d/%d points written (%.0f points/s, ETA %.0f s)", done, self.total, rate,
                 (self.total - done) / rate)  # fmt: skip

    def graph(self) -> None:
        self.graph_started = time.monotonic()
        if self.enabled:
            log.info("index version: building the HNSW graph over %d points (blocking; minutes at 1M on 2 cores)",
                     self.total)  # fmt: skip

    def done(self) -> None:
        if self.enabled:
            log.info("index version: graph built in %.0f s", time.monotonic() - self.graph_started)


def make_filter(
    camera_ids: Sequence[str] | None = None,
    low: float | None = None,
    high: float | None = None,
    at_least: Mapping[str, float] | None = None,
    at_most: Mapping[str, float] | None = None,
    without_vector: str | None = None,
) -> Filter | None:
    """The engine filter: cameras, tracklets overlapping [low, high] (epoch s), payload floats at
    least (`at_least`) or at most (`at_most`) a value, points lacking a named vector. A missing field
    fails its condition. (No boolean matches: in qdrant-edge-py 0.9.0 `MatchValue(True/False)` matches
    nothing, measured; "indexed without attributes" is "has no attr_logp vector" instead.)"""
    must: list[Any] = []
    if camera_ids is not None:
        must.append(FieldCondition("camera_id", match=MatchAny([str(c) for c in camera_ids])))
    if high is not None:
        must.append(FieldCondition("start_epoch", range=RangeFloat(lte=float(high))))
    if low is not None:
        must.append(FieldCondition("end_epoch", range=RangeFloat(gte=float(low))))
    for field, value in (at_least or {}).items():
        must.append(FieldCondition(field, range=RangeFloat(gte=float(value))))
    for field, value in (at_most or {}).items():
        must.append(FieldCondition(field, range=RangeFloat(lte=float(value))))
    must_not = [HasVectorCondition(without_vector)] if without_vector else []
    return Filter(must=must, must_not=must_not) if must or must_not else None


WARM_CHUNK = 16 * 2**20  # bytes per read when a reader warms the page cache with its version's files
# Warm only a version that fits in this share of MemAvailable (which counts the page cache): the 9.8 GB
# 1M-point version fits a 24 GB machine beside the benchmark's own 5 GB of reference vectors.
WARM_MEMORY_SHARE = 0.8
def _attribute_rows(points: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(n, 85) probabilities of the points' `attr_logp` vectors (NaN rows where absent), and which have one."""
    logps = [p.vector.get(ATTRIBUTE_VECTOR) if isinstance(p.vector, dict) else None for p in points]
    present = np.array([logp is not None for logp in logps], dtype=bool)
    matrix = np.full((len(points), len(ATTRIBUTE_VOCABULARY)), np.nan, dtype=np.float32)
    if present.any():
        matrix[present] = attribute_matrix_from_log(np.array([v for v in logps if v is not None], np.float32))
    return matrix, present


def with_attributes(points: Sequence[Any]) -> list[dict[str, Any]]:
    """The hits' or records' payloads, each with its attribute list decoded from its `attr_logp` vector."""
    payloads = [dict(p.payload or {}) for p in points]
    matrix, present = _attribute_rows(points)
    rows = np.flatnonzero(present)
    for i, probs in zip(rows, probability_lists(matrix[rows]), strict=True):
        payloads[i][ATTRIBUTE_PAYLOAD] = probs
    return payloads


def scored_hits(points: Sequence[Any], attributes: bool) -> list[tuple[str, float, dict[str, Any]]]:
    """(id, score, payload) of scored points; the payloads with their attribute list when `attributes`."""
    payloads = with_attributes(points) if attributes else [dict(p.payload or {}) for p in points]
    return [(str(p.id), float(p.score), payload) for p, payload in zip(points, payloads, strict=True)]


@dataclass(frozen=True)
class Columns:
    """The points a text query scores (some cameras / a time range, or the engine's best candidates),
    as columns: ids, payloads without the attribute list, and that list as one (n, 85) float32 matrix
    (NaN rows where absent) with which rows have one."""

    ids: list[str]
    payloads: list[dict[str, Any]]
    attribute_probs: np.ndarray
    has_attributes: np.ndarray

    @staticmethod
    def of(points: Sequence[Any]) -> Columns:
        matrix, present = _attribute_rows(points)
        return Columns([str(p.id) for p in points], [dict(p.payload or {}) for p in points], matrix, present)

    @staticmethod
    def concat(parts: Sequence[Columns]) -> Columns:
        width = len(ATTRIBUTE_VOCABULARY)
        return Columns(
            [i for part in parts for i in part.ids],
            [p for part in parts for p in part.payloads],
            np.concatenate([part.attribute_probs for part in parts]) if parts else np.zeros((0, width), np.float32),
            np.concatenate([part.has_attributes for part in parts]) if parts else np.zeros(0, bool),
        )


class EdgeReader:
    """One published version, loaded from a private copy; thread-safe queries; `close()` frees it."""

    def __init__(self, folder: Path, version: str) -> None:
        self.version = version
        self.folder = folder
        self._private = copy_private(folder, version)
        try:
            self._shard = EdgeShard.load(str(self._private / "shard"))
        except Exception as exc:
            shutil.rmtree(self._private, ignore_errors=True)
            raise EdgeIndexError(f"cannot load index version {folder}: {exc}") from exc
        self._lock = threading.Lock()  # the engine's Python object is used from the API's worker threads
        self._count = self._shard.count(CountRequest(exact=True))
        self.groups = read_groups(folder)  # None: a version written before `attr_terms`
        # Points indexed without attributes (the colour rules score them). Counted once: a version never
        # changes, and the filter behind it visits every point (15 ms a text query at 1M, measured).
        self.without_attributes = self.count(make_filter(without_vector=ATTRIBUTE_VECTOR))
        self.warmed = threading.Event()  # set once `_warm` has read the version's files (or given up)
        self._closing = threading.Event()
        threading.Thread(target=self._warm, name=f"warm-{version}", daemon=True).start()

    def _warm(self) -> None:
        """Read the version's files once, in the background, so queries find them in the page cache.

        Why: the engine maps the float vectors it re-scores on and the payloads it returns; a query whose
        pages are not in memory waits on the disk. 1M points of 1024-d (benchmarks/search_scale.py, a
        version evicted by the benchmark's own memory use): image queries p50 30 ms before, 7.8 ms once
        the files had been read (16.7 s for 9 GB). Skipped when the version is bigger than
        WARM_MEMORY_SHARE of the memory available: reading it would only evict what others need.
        """
        try:
            files = [f for f in self._private.rglob("*") if f.is_file()]
            if sum(f.stat().st_size for f in files) > WARM_MEMORY_SHARE * _available_memory():
                return
            buffer = bytearray(WARM_CHUNK)
            for path in files:
                with open(path, "rb", buffering=0) as handle:
                    while not self._closing.is_set() and handle.readinto(buffer):
                        pass
        except OSError:  # the copy was deleted under us (close) or a file vanished: nothing to warm
            pass
        finally:
            self.warmed.set()

    def count(self, where: Filter | None = None) -> int:
        """Points in the version (matching `where`)."""
        if where is None:
            return self._count
        with self._lock:
            return int(self._shard.count(CountRequest(exact=True, filter=where)))

    def query_points(self, vector_name: str, query: np.ndarray | SparseVector, limit: int, where: Filter | None,
                     exact: bool, attributes: bool, payload: bool = True) -> list[Any]:  # fmt: skip
        """The engine's scored points, best first (payloads as stored unless not `payload`; `attr_logp` when
        `attributes`)."""
        if not isinstance(query, SparseVector):
            query = np.asarray(query, dtype=np.float32).tolist()
        request = QueryRequest(
            limit=int(limit),
            query=Query.Nearest(query, using=vector_name),
            filter=where,
            with_payload=payload,
            with_vector=[ATTRIBUTE_VECTOR] if attributes and payload else False,
            params=SearchParams(
                hnsw_ef=max(HNSW_EF_SEARCH, int(limit)),
                exact=exact,
                quantization=_QUANTIZED_EXACT if exact else _QUANTIZED_RESCORED,
            ),  # fmt: skip
        )
        with self._lock:
            return self._shard.query(request)

    def retrieve_points(self, ids: Sequence[Any], attributes: bool) -> list[Any]:
        """The records of these ids (payload; `attr_logp` when `attributes`), in no particular order."""
        with self._lock:
            return self._shard.retrieve(list(ids), with_payload=True,
                                        with_vector=[ATTRIBUTE_VECTOR] if attributes else False)  # fmt: skip

    def search(
        self,
        vector_name: str,
        query: np.ndarray,
        limit: int,
        where: Filter | None = None,
        exact: bool = False,
        attributes: bool = False,
    ) -> list[tuple[str, float, dict[str, Any]]]:
        """(id, score, payload) of the `limit` nearest points by `vector_name`, best first.

        The payloads carry the 85-value attribute list (decoded from the `attr_logp` vector) only
        when `attributes`: converting it to Python was a third of an image query's time (22 vs 14.5 ms
        per 500 hits as a payload list, measured).
        """
        return scored_hits(self.query_points(vector_name, query, limit, where, exact, attributes), attributes)

    def search_columns(self, vector_name: str, query: np.ndarray | SparseVector, limit: int,
                       where: Filter | None = None) -> Columns:  # fmt: skip
        """`search` with attributes, as columns: the text query's candidates, best first."""
        return Columns.of(self.query_points(vector_name, query, limit, where, False, True))

    def attribute_query(self, terms: AttributeTerms) -> tuple[str, np.ndarray | SparseVector]:
        """The vector and query that rank this version by a description's terms: the sparse `attr_terms`
        (exact: the scorer's order for points whose attributes are all known); a version written before
        them is ranked by the dense vector, alternatives spread."""
        if self.groups is None:
            return ATTRIBUTE_VECTOR, terms.dense()
        return ATTRIBUTE_TERMS, SparseVector(*terms.sparse(self.groups))

    def search_attribute_columns(self, terms: AttributeTerms, limit: int, where: Filter | None = None) -> Columns:
        """The `limit` best points for a description's terms, as columns, best first."""
        return self.search_columns(*self.attribute_query(terms), limit, where)

    def scroll_points(self, where: Filter | None) -> list[Any]:
        """Every matching point as the engine's records (payload + `attr_logp`)."""
        out: list[Any] = []
        offset: Any = None
        while True:
            request = ScrollRequest(
                offset=offset, limit=SCROLL_PAGE, filter=where, with_payload=True, with_vector=[ATTRIBUTE_VECTOR]
            )
            with self._lock:
                records, offset = self._shard.scroll(request)
            out.extend(records)
            if offset is None or not records:
                return out

    def scroll(self, where: Filter | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Every matching point's (id, payload)."""
        records = self.scroll_points(where)
        return list(zip((str(r.id) for r in records), with_attributes(records), strict=True))

    def scroll_columns(self, where: Filter | None = None) -> Columns:
        """Every matching point, as columns (attribute scoring over a camera / time window)."""
        return Columns.of(self.scroll_points(where))

    def close(self) -> None:
        """Release the engine and delete the private copy."""
        self._closing.set()
        with self._lock, contextlib.suppress(Exception):
            self._shard.close()
        shutil.rmtree(self._private, ignore_errors=True)


def _available_memory() -> int:
    """Bytes the kernel says are available (MemAvailable); 0 where it does not say (no warming then)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def folder_size_mb(folder: Path) -> float:
    """Disk size of a version folder, MB."""
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return total / 1e6
