"""Tracklet rows -> index points: the checks an upload runs before touching the index, and the payloads.

Why its own module: `storage.index` talks to Qdrant (server, local mode, published engine versions);
what a point holds is decided here, once, for every backend and for bulk publishing
(`benchmarks/search_scale.py` builds its synthetic payloads with the same `attribute_payload`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from qdrant_client import models as qm

from smarttrace.errors import ArtifactError
from storage.index_errors import IndexSchemaError
from storage.schemas import ATTRIBUTE_VOCABULARY
from tasks.attribute_scoring import ATTRIBUTE_FILTERS

# Payload fields with a server-side index, and their type. Local mode ignores them (see above).
PAYLOAD_INDEXES: dict[str, qm.PayloadSchemaType] = {
    "camera_id": qm.PayloadSchemaType.KEYWORD,
    "global_id": qm.PayloadSchemaType.INTEGER,
    "person_id": qm.PayloadSchemaType.INTEGER,
    "start_epoch": qm.PayloadSchemaType.FLOAT,
    "end_epoch": qm.PayloadSchemaType.FLOAT,
    "upper_color": qm.PayloadSchemaType.KEYWORD,
    "lower_color": qm.PayloadSchemaType.KEYWORD,
    # Attributes (when the attribute model ran): the decided gender and age group, and the probability
    # of each dashboard filter (`p_female`, `p_bag`, ... see tasks.attribute_scoring.ATTRIBUTE_FILTERS).
    "has_attributes": qm.PayloadSchemaType.BOOL,
    "gender": qm.PayloadSchemaType.KEYWORD,
    "age_group": qm.PayloadSchemaType.KEYWORD,
    **{f"p_{name}": qm.PayloadSchemaType.FLOAT for name in ATTRIBUTE_FILTERS},
}
ENGINE_FIELDS = {field: schema.value for field, schema in PAYLOAD_INDEXES.items()}  # the same fields, for the engine
ATTRIBUTE_PAYLOAD = "attribute_probs"  # payload key of the full probability list (ATTRIBUTE_VOCABULARY order)
# PETA's age groups, in order, and how the payload names the most probable one.
AGE_GROUPS = (("personalLess15", "under 15"), ("personalLess30", "16-30"), ("personalLess45", "31-45"),
              ("personalLess60", "46-60"), ("personalLarger60", "over 60"))  # fmt: skip
_VOCAB_INDEX = {name: i for i, name in enumerate(ATTRIBUTE_VOCABULARY)}


_REQUIRED_COLUMNS = (
    "camera_id", "tracklet_id", "start_frame", "end_frame", "start_time_s", "end_time_s",
    "start_timestamp", "end_timestamp", "video_path", "reid_embedding",
)
_OPTIONAL_COLUMNS = (
    "thumbnail_path", "best_frame", "clip_embedding",
    "upper_color", "upper_color_conf", "lower_color", "lower_color_conf", "attribute_probs",
)


def _as_table(data: pa.Table | pd.DataFrame, columns: Sequence[str]) -> pa.Table:
    """The wanted columns that exist, as Arrow (heavy columns such as crop embeddings left out)."""
    if isinstance(data, pa.Table):
        return data.select([c for c in columns if c in data.column_names])
    if isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data[[c for c in columns if c in data.columns]], preserve_index=False)
    raise TypeError(f"expected a pyarrow Table or a pandas DataFrame, got {type(data).__name__}")


def _tracklet_name(table: pa.Table, row: int) -> str:
    return f"{table.column('camera_id')[row].as_py()}/{table.column('tracklet_id')[row].as_py()}"


def _check_vectors(table: pa.Table, column: str, dim: int, what: str) -> None:
    """Every non-null vector has `dim` finite values; the message names the first bad tracklet."""
    values = table.column(column).combine_chunks()  # parent indices below are per chunk otherwise
    lengths = pc.list_value_length(values).to_numpy(zero_copy_only=False)
    present = ~pd.isna(lengths)
    wrong = np.flatnonzero(present & (np.nan_to_num(lengths, nan=dim) != dim))
    if wrong.size:
        row = int(wrong[0])
        raise IndexSchemaError(
            f"{what} of tracklet {_tracklet_name(table, row)} has "
            f"{int(lengths[row])} values, the index expects {dim} ({wrong.size} tracklets differ): "
            "the embedding model and index config disagree"
        )
    flat = pc.list_flatten(values).to_numpy(zero_copy_only=False)
    if flat.size and not np.isfinite(flat).all():
        parents = pc.list_parent_indices(values).to_numpy()
        row = int(parents[np.flatnonzero(~np.isfinite(flat))[0]])
        raise IndexSchemaError(
            f"{what} of tracklet {_tracklet_name(table, row)} holds NaN or infinite values"
        )


def _check_attribute_probs(table: pa.Table) -> None:
    """Each non-null list has one probability in [0, 1] (or NaN: not predicted) per vocabulary name."""
    values = table.column("attribute_probs").combine_chunks()
    lengths = pc.list_value_length(values).to_numpy(zero_copy_only=False)
    present = ~pd.isna(lengths)
    wrong = np.flatnonzero(present & (np.nan_to_num(lengths, nan=len(ATTRIBUTE_VOCABULARY)) != len(
        ATTRIBUTE_VOCABULARY)))
    if wrong.size:
        raise IndexSchemaError(
            f"attribute_probs of tracklet {_tracklet_name(table, int(wrong[0]))} has {int(lengths[wrong[0]])} values, "
            f"the attribute vocabulary has {len(ATTRIBUTE_VOCABULARY)}: the tracklets come from another release"
        )
    flat = pc.list_flatten(values).to_numpy(zero_copy_only=False).astype(np.float64)
    bad = ~np.isnan(flat) & ((flat < 0) | (flat > 1))
    if bad.any():
        row = int(pc.list_parent_indices(values).to_numpy()[np.flatnonzero(bad)[0]])
        raise IndexSchemaError(f"attribute_probs of tracklet {_tracklet_name(table, row)} holds values outside [0, 1]")


def _aware(value: Any) -> datetime | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise ArtifactError(f"expected a timestamp, got {value!r}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _clean(value: Any) -> Any:
    """JSON-safe payload value: NaN -> None, numpy scalars -> Python."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    return value


def identity_lookup(identities: pa.Table | pd.DataFrame | None) -> dict[tuple[str, int], tuple[int, int]]:
    if identities is None:
        return {}
    table = _as_table(identities, ("camera_id", "tracklet_id", "person_id", "global_id"))
    missing = [c for c in ("camera_id", "tracklet_id", "person_id", "global_id") if c not in table.column_names]
    if missing:
        raise ArtifactError(f"identities lack the fields {', '.join(missing)}")
    return {
        (row["camera_id"], int(row["tracklet_id"])): (int(row["person_id"]), int(row["global_id"]))
        for row in table.to_pylist()
    }


def tracklet_payload(
    row: dict[str, Any], identity: tuple[int, int] | None, location: str | None, has_clip: bool
) -> dict[str, Any]:
    """A point's payload: ids, times (ISO and epoch, for the engine's float range filters), files, colours,
    attributes. JSON-safe (NaN -> None), so every backend stores it unchanged."""
    start, end = _aware(row["start_timestamp"]), _aware(row["end_timestamp"])
    person_id, global_id = identity if identity is not None else (-1, -1)
    return {
        "camera_id": row["camera_id"],
        "tracklet_id": int(row["tracklet_id"]),
        "person_id": person_id,
        "global_id": global_id,
        "location": location,
        "start_frame": int(row["start_frame"]),
        "end_frame": int(row["end_frame"]),
        "start_time_s": _clean(row["start_time_s"]),
        "end_time_s": _clean(row["end_time_s"]),
        "start_timestamp": start.isoformat() if start else None,
        "end_timestamp": end.isoformat() if end else None,
        "start_epoch": start.timestamp() if start else None,
        "end_epoch": end.timestamp() if end else None,
        "video_path": row["video_path"],
        "thumbnail_path": row.get("thumbnail_path"),
        "best_frame": _clean(row.get("best_frame")),
        "upper_color": row.get("upper_color"),
        "upper_color_conf": _clean(row.get("upper_color_conf")),
        "lower_color": row.get("lower_color"),
        "lower_color_conf": _clean(row.get("lower_color_conf")),
        "has_reid": row["reid_embedding"] is not None,
        "has_clip": has_clip,
        **attribute_payload(row.get("attribute_probs")),
    }


def attribute_payload(probs: Sequence[float | None] | None) -> dict[str, Any]:
    """The attribute fields of a point: the full list (NaN -> None), decided gender and age group, and
    the probability behind each dashboard filter, so a Qdrant server can filter on them."""
    if probs is None:
        return {"has_attributes": False}
    values = np.array([np.nan if v is None else v for v in probs], dtype=np.float64)

    def best(names: Sequence[str]) -> float | None:
        found = [values[_VOCAB_INDEX[n]] for n in names if n in _VOCAB_INDEX and not np.isnan(values[_VOCAB_INDEX[n]])]
        return round(float(max(found)), 4) if found else None

    female, male = best(["personalFemale"]), best(["personalMale"])
    gender = "unknown"
    if female is not None and female >= 0.5 and (male is None or female > male):
        gender = "female"
    elif male is not None and male >= 0.5 and (female is None or male > female):
        gender = "male"
    ages = [(best([name]), label) for name, label in AGE_GROUPS]
    known_ages = [(p, label) for p, label in ages if p is not None]
    return {
        "has_attributes": True,
        ATTRIBUTE_PAYLOAD: [None if np.isnan(v) else round(float(v), 4) for v in values],
        "gender": gender,
        "age_group": max(known_ages)[1] if known_ages else None,
        **{f"p_{name}": best(attributes) for name, (_label, attributes) in ATTRIBUTE_FILTERS.items()},
    }


def check_tracklets(tracklets: pa.Table | pd.DataFrame, reid_dim: int, clip_dim: int | None) -> pa.Table:
    """Check the whole input before the index is touched: a bad row must not leave half an upload."""
    table = _as_table(tracklets, _REQUIRED_COLUMNS + _OPTIONAL_COLUMNS)
    missing = [c for c in _REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise ArtifactError(f"tracklets to index lack the fields {', '.join(missing)}")
    for column in ("camera_id", "tracklet_id"):
        if table.column(column).null_count:
            raise ArtifactError(f"tracklets to index have null {column} values")
    seen: set[tuple[str, int]] = set()
    for key in zip(table.column("camera_id").to_pylist(), table.column("tracklet_id").to_pylist(), strict=True):
        if key in seen:
            raise ArtifactError(f"tracklets to index repeat tracklet {key[0]}/{key[1]}: one row per tracklet")
        seen.add(key)
    _check_vectors(table, "reid_embedding", reid_dim, "reid_embedding")
    if "attribute_probs" in table.column_names and table.column("attribute_probs").null_count < table.num_rows:
        _check_attribute_probs(table)
    if clip_dim is not None and "clip_embedding" in table.column_names:
        _check_vectors(table, "clip_embedding", clip_dim, "clip_embedding")
    return table
