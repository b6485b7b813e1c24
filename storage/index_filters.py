"""The readers' filters as the index understands them: time ranges, camera + time filters for a Qdrant
server, and the dashboard's attribute filters as payload ranges (the embedded engine's filters are built by
`storage.edge_index.make_filter` from the same bounds)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from qdrant_client import models as qm

from storage.index_config import TimeBound
from tasks.attribute_scoring import ATTRIBUTE_FILTERS


def _epoch(value: TimeBound) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value)


def time_bounds(time_range: tuple[TimeBound, TimeBound] | None) -> tuple[float | None, float | None]:
    """(start, end) epoch seconds of a time range given as datetimes (naive = UTC) or numbers, ends optional."""
    if time_range is None:
        return None, None
    low, high = (_epoch(v) for v in time_range)
    if low is not None and high is not None and low > high:
        raise ValueError(f"time range starts after it ends: {time_range}")
    return low, high


def query_filter(camera_ids: Sequence[str] | None, low: float | None, high: float | None) -> qm.Filter | None:
    """Server mode: tracklets of these cameras that overlap [low, high] (each bound optional)."""
    must: list[qm.Condition] = []
    if camera_ids is not None:
        must.append(qm.FieldCondition(key="camera_id", match=qm.MatchAny(any=list(camera_ids))))
    if high is not None:
        must.append(qm.FieldCondition(key="start_epoch", range=qm.Range(lte=high)))
    if low is not None:
        must.append(qm.FieldCondition(key="end_epoch", range=qm.Range(gte=low)))
    return qm.Filter(must=must) if must else None


def filter_bounds(attribute_filters: Mapping[str, bool] | None) -> tuple[dict[str, float], dict[str, float]]:
    """Dashboard filters as payload ranges on `p_<name>` (the most probable of the filter's attributes):
    wanted -> p >= threshold, unwanted -> p <= 1 - threshold; the same test as attribute_scoring.filter_mask."""
    from tasks.attribute_scoring import FILTER_MIN_PROBABILITY

    at_least: dict[str, float] = {}
    at_most: dict[str, float] = {}
    for name, wanted in (attribute_filters or {}).items():
        if name not in ATTRIBUTE_FILTERS:
            raise KeyError(f"unknown attribute filter '{name}' (choose from {', '.join(ATTRIBUTE_FILTERS)})")
        if wanted:
            at_least[f"p_{name}"] = FILTER_MIN_PROBABILITY
        else:
            at_most[f"p_{name}"] = 1.0 - FILTER_MIN_PROBABILITY
    return at_least, at_most
