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
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_edge import Filter, HasIdCondition, SparseVector

from storage.attribute_vectors import ATTRIBUTE_VECTOR, AttributeTerms
from storage.edge_index import Columns, EdgeReader, make_filter, with_attributes
from storage.index_parts import Part, exclusions, version_parts


class _AllWarm:
    """`threading.Event`'s wait/is_set over every part's `warmed` event."""

    def __init__(self, events: Sequence[threading.Event]) -> None:
        self._events = list(events)

    def is_set(self) -> bool:
        return all(e.is_set() for e in self._events)

    def wait(self, timeout: float | None = None) -> bool:
        return all(e.wait(timeout) for e in self._events)


def _without(where: Filter | None, hidden: frozenset[str]) -> Filter | None:
    """`where`, and not one of the `hidden` ids."""
    if not hidden:
        return where
    return Filter(must=[where] if where is not None else None, must_not=[HasIdCondition(set(hidden))])


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
        hidden = exclusions(self.parts)
        self._shards = [(self.readers[p.folder], h) for p, h in zip(self.parts, hidden, strict=True) if p.folder]
        groups = {r.groups is None for r, _ in self._shards}
        self.groups = self._shards[0][0].groups if len(groups) == 1 else None
        self._count = sum(r.count(_without(None, h)) if h else r.count() for r, h in self._shards)
        self.without_attributes = sum(
            r.count(_without(make_filter(without_vector=ATTRIBUTE_VECTOR), h)) if h else r.without_attributes
            for r, h in self._shards
        )
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

    def _merged(self, vector_name: str, query: np.ndarray | SparseVector, limit: int, where: Filter | None,
                exact: bool, attributes: bool) -> list[Any]:  # fmt: skip
        if len(self._shards) == 1:
            reader, hidden = self._shards[0]
            return reader.query_points(vector_name, query, limit, _without(where, hidden), exact, attributes)
        hits = [p for r, h in self._shards
                for p in r.query_points(vector_name, query, limit, _without(where, h), exact, attributes)]  # fmt: skip
        hits.sort(key=lambda p: -float(p.score))
        return hits[:limit]

    def search(
        self,
        vector_name: str,
        query: np.ndarray,
        limit: int,
        where: Filter | None = None,
        exact: bool = False,
        attributes: bool = False,
    ) -> list[tuple[str, float, dict[str, Any]]]:
        """(id, score, payload) of the `limit` nearest points over every part, best first (`EdgeReader.search`)."""
        points = self._merged(vector_name, query, limit, where, exact, attributes)
        payloads = with_attributes(points) if attributes else [dict(p.payload or {}) for p in points]
        return [(str(p.id), float(p.score), payload) for p, payload in zip(points, payloads, strict=True)]

    def search_columns(self, vector_name: str, query: np.ndarray | SparseVector, limit: int,
                       where: Filter | None = None) -> Columns:  # fmt: skip
        """`search` with attributes, as columns, best first."""
        return Columns.of(self._merged(vector_name, query, limit, where, False, True))

    def search_attribute_columns(self, terms: AttributeTerms, limit: int, where: Filter | None = None) -> Columns:
        """The `limit` best points for a description's terms over every part, as columns, best first.

        Each part ranks by its own layout (`EdgeReader.attribute_query`); parts of one version share it
        (a delta is only written on a base with the sparse terms, `storage.index_clients`)."""
        hits = [p for r, h in self._shards
                for p in r.query_points(*r.attribute_query(terms), limit, _without(where, h), False, True)]  # fmt: skip
        hits.sort(key=lambda p: -float(p.score))
        return Columns.of(hits[:limit])

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
