"""A reader of one published version made of parts (`storage.index_parts`): a base and small deltas.

Each part is an `EdgeReader` (its own private copy, loaded once). A query runs on every part with the
ids that newer parts replaced or deleted filtered out (`HasIdCondition` in `must_not`), and the hits are
merged by score: the same scores the engine gives in one shard (cosine for appearance, the sparse
attribute dot product for text), so the merge is the one-shard order. Why parts: a reader that already
serves a version loads only the parts new to the next one (`loaded`), so an upload is visible after
loading its delta, not the whole index again (`benchmarks/search_scale.py --delta`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_edge import Filter, HasIdCondition, SparseVector

from storage.attribute_vectors import ATTRIBUTE_VECTOR, AttributeTerms
from storage.edge_index import HNSW_EF_SEARCH, Columns, EdgeReader, make_filter, scored_hits, with_attributes
from storage.index_parts import Part, exclusions, version_parts

# The engine releases the GIL while it searches (two threads on one 1M-point shard: 1.8x the queries per
# second of one, measured on 2 cores), so a version's parts are searched at the same time.
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="version-parts")


class _AllWarm:
    """`threading.Event`'s wait/is_set over every part's `warmed` event."""

    def __init__(self, events: Sequence[threading.Event]) -> None:
        self._events = list(events)

    def is_set(self) -> bool:
        return all(e.is_set() for e in self._events)

    def wait(self, timeout: float | None = None) -> bool:
        return all(e.wait(timeout) for e in self._events)


def _without(where: Filter | None, hidden: HasIdCondition | None) -> Filter | None:
    """`where`, and not one of the `hidden` ids."""
    if hidden is None:
        return where
    return Filter(must=[where] if where is not None else None, must_not=[hidden])


class _Scored:
    """A retrieved record with the score its part's query gave it (what `ScoredPoint` offers readers)."""

    __slots__ = ("id", "payload", "score", "vector")

    def __init__(self, record: Any, score: float) -> None:
        self.id, self.payload, self.vector, self.score = record.id, record.payload, record.vector, score


class VersionReader:
    """Every part of one version, queried as one index; thread-safe like `EdgeReader`."""

    def __init__(self, published: Path, version: str, loaded: Mapping[str, EdgeReader] | None = None) -> None:
        """Load `version`'s parts, taking those already in `loaded` (a previous version's) as they are."""
        self.version = version
        self.folder = published / version
        self.parts: list[Part] = version_parts(published, version)
        loaded = dict(loaded or {})
        self.readers: dict[str, EdgeReader] = {}
        try:
            for part in self.parts:
                if part.folder and part.folder not in self.readers:
                    self.readers[part.folder] = loaded.get(part.folder) or EdgeReader(published / part.folder,
                                                                                      part.folder)  # fmt: skip
        except BaseException:
            self.close(keep=set(loaded))
            raise
        # Each part's hidden ids as one engine condition, built once: converting a few thousand ids per query
        # is a cost every query would pay.
        hidden_ids = exclusions(self.parts)
        hidden = [HasIdCondition(set(h)) if h else None for h in hidden_ids]
        self._shards = [(self.readers[p.folder], h) for p, h in zip(self.parts, hidden, strict=True) if p.folder]
        self._hidden = [h for p, h in zip(self.parts, hidden_ids, strict=True) if p.folder]  # for query results
        self.groups = self._shards[0][0].groups  # the base's layout: deltas are only written on a base with terms
        self._count = sum(r.count(_without(None, h)) for r, h in self._shards)
        self.without_attributes = sum(
            r.count(_without(make_filter(without_vector=ATTRIBUTE_VECTOR), h)) if h is not None
            else r.without_attributes for r, h in self._shards
        )  # fmt: skip
        self.warmed = _AllWarm([r.warmed for r, _ in self._shards])

    @property
    def loaded(self) -> dict[str, EdgeReader]:
        """Part folder -> its loaded reader: what the next version's reader may take over."""
        return dict(self.readers)

    def count(self, where: Filter | None = None) -> int:
        """Points in the version (matching `where`)."""
        if where is None:
            return self._count
        return sum(r.count(_without(where, h)) for r, h in self._shards)

    def _merged(self, vector_name: str, query: np.ndarray | SparseVector | None, limit: int,
                where: Filter | None, exact: bool, attributes: bool,
                terms: AttributeTerms | None = None) -> list[Any]:  # fmt: skip
        """The `limit` best points over every part, best first, as the engine's points (`.id`, `.score`,
        `.payload`, `.vector`). One part hiding nothing: the engine's own answer. Otherwise every part is
        asked at the same time, the ids a newer part replaced are dropped here (asking more while some were),
        and the best `limit` are kept. The base answers with payloads; the deltas with ids and scores only,
        and payloads are fetched for those of their points that made the cut.

        Why this way: at 1M points with a 2,000-point delta, hiding the ids by a `must_not` filter in the
        engine took an image query from p50 5.4 to 8.6 ms, and the delta's 200 payloads from every query
        most of the rest; fetching the base's payloads after the merge cost 2.8 ms more than asking with them.
        """
        if len(self._shards) == 1 and not self._hidden[0]:
            reader, _ = self._shards[0]
            name, vector = reader.attribute_query(terms) if terms is not None else (vector_name, query)
            return reader.query_points(name, vector, limit, where, exact, attributes)
        asked = [_POOL.submit(self._part_hits, index, vector_name, query, limit, where, exact, attributes, terms)
                 for index in range(len(self._shards))]  # fmt: skip
        ranked = [hit for future in asked for hit in future.result()]
        ranked.sort(key=lambda item: -item[0])
        best = ranked[:limit]
        fetched = [_POOL.submit(reader.retrieve_points, ids, attributes)
                   for index, (reader, _) in enumerate(self._shards)
                   if index and (ids := [point.id for _score, i, point in best if i == index])]  # fmt: skip
        records = {str(r.id): r for future in fetched for r in future.result()}
        out = []
        for score, index, point in best:
            if not index:
                out.append(point)
            elif str(point.id) in records:
                out.append(_Scored(records[str(point.id)], score))
        return out

    def _part_hits(
        self, index: int, vector_name: str, query: np.ndarray | SparseVector | None, limit: int,
        where: Filter | None, exact: bool, attributes: bool, terms: AttributeTerms | None,
    ) -> list[tuple[float, int, Any]]:  # fmt: skip
        """(score, part index, point) of part `index`'s best `limit` points that no newer part hides; the base
        (index 0) with payloads, the others without."""
        reader, hidden = self._shards[index][0], self._hidden[index]
        name, vector = reader.attribute_query(terms) if terms is not None else (vector_name, query)
        # Ask for more than `limit` when ids are hidden, up to the graph's search width (a wider answer costs
        # the engine almost nothing there): a second query is then rarely needed.
        ask = max(limit, min(limit + len(hidden), HNSW_EF_SEARCH)) if hidden else limit
        while True:
            hits = reader.query_points(name, vector, ask, where, exact, attributes, payload=not index)
            kept = [p for p in hits if str(p.id) not in hidden] if hidden else hits
            if len(kept) >= limit or len(hits) < ask:
                return [(float(p.score), index, p) for p in kept[:limit]]
            ask += 2 * (len(hits) - len(kept))

    def search(self, vector_name: str, query: np.ndarray, limit: int, where: Filter | None = None,
               exact: bool = False, attributes: bool = False) -> list[tuple[str, float, dict[str, Any]]]:  # fmt: skip
        """(id, score, payload) of the `limit` nearest points over every part, best first (`EdgeReader.search`)."""
        return scored_hits(self._merged(vector_name, query, limit, where, exact, attributes), attributes)

    def search_columns(self, vector_name: str, query: np.ndarray | SparseVector, limit: int,
                       where: Filter | None = None) -> Columns:  # fmt: skip
        """`search` with attributes, as columns, best first."""
        return Columns.of(self._merged(vector_name, query, limit, where, False, True))

    def search_attribute_columns(self, terms: AttributeTerms, limit: int, where: Filter | None = None) -> Columns:
        """The `limit` best points for a description's terms over every part, as columns, best first.

        Each part ranks by its own layout (`EdgeReader.attribute_query`); parts of one version share it
        (a delta is only written on a base with the sparse terms, `storage.index_clients`)."""
        return Columns.of(self._merged("", None, limit, where, False, True, terms))

    def scroll(self, where: Filter | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Every matching point's (id, payload), part by part."""
        records = [p for r, h in self._shards for p in r.scroll_points(_without(where, h))]
        return list(zip((str(r.id) for r in records), with_attributes(records), strict=True))

    def scroll_columns(self, where: Filter | None = None) -> Columns:
        """Every matching point, as columns."""
        return Columns.of([p for r, h in self._shards for p in r.scroll_points(_without(where, h))])

    def close(self, keep: set[str] | frozenset[str] = frozenset()) -> None:
        """Release the parts, except those named in `keep` (the next version serves them)."""
        for folder, reader in self.readers.items():
            if folder not in keep:
                with contextlib.suppress(Exception):
                    reader.close()
