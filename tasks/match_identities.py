"""In-camera matching (tracklets -> camera-local persons) and cross-camera matching
(persons -> global identities). Pure pandas/numpy; the flow wraps them in tasks.

Both are the same constrained clustering (tasks/clustering.py) with different constraints:
- in one camera, tracklets that overlap in time are two people; a short gap must also be
  physically walkable (position gate); a very long gap is not joined at all;
- across cameras, persons of one camera are never merged again (in-camera matching already
  decided them), and optional camera-pair transit windows bound when a person may reappear;
  each camera's mean person embedding is removed first (camera centering, tasks/reid_rerank.py):
  on real cross-camera data what two views of one person share is hidden under each camera's look;
  where the embed stage made them, the vectors compared are those under each camera's own BatchNorm
  statistics (`reid_camera_embedding`, camera BN), for the same reason one layer deeper.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from smarttrace.config import MatchConfig
from tasks.clustering import consistency_pass, constrained_average_linkage
from tasks.link_tracklets import walk_reach_px
from tasks.reid_rerank import center_by_camera


def _embeddings(vectors: pd.Series, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) matrix of the non-null vectors (zeros elsewhere) and the mask of non-null rows."""
    present = vectors.map(lambda v: v is not None and len(v) > 0).to_numpy(bool)
    if dim is None:
        dim = len(vectors[present].iloc[0]) if present.any() else 1
    matrix = np.zeros((len(vectors), dim), np.float32)
    for i, vector in enumerate(vectors):
        if present[i]:
            matrix[i] = np.asarray(vector, np.float32)
    return matrix, present


def _overlaps(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(n, n) True where [start, end] intervals intersect."""
    return (start[:, None] <= end[None, :]) & (start[None, :] <= end[:, None])


def match_in_camera(tracklets: pd.DataFrame, config: MatchConfig) -> np.ndarray:
    """Camera-local person id (1..k) per tracklet row of ONE camera."""
    n = len(tracklets)
    if n == 0:
        return np.zeros(0, np.int32)
    embeddings, present = _embeddings(tracklets["reid_embedding"].reset_index(drop=True))
    start = tracklets["start_time_s"].to_numpy(float)
    end = tracklets["end_time_s"].to_numpy(float)
    gap = np.maximum(start[None, :] - end[:, None], start[:, None] - end[None, :])  # >0: time between them
    cannot = _overlaps(start, end) | (gap > config.in_camera_max_gap_s)
    cannot |= ~present[:, None] | ~present[None, :]  # no appearance: no evidence to join
    cannot |= _position_gate(tracklets, gap, config)
    np.fill_diagonal(cannot, False)
    labels = constrained_average_linkage(embeddings @ embeddings.T, cannot, config.in_camera_min_similarity)
    return (labels + 1).astype(np.int32)


def _position_gate(tracklets: pd.DataFrame, gap: np.ndarray, config: MatchConfig) -> np.ndarray:
    """True where a short gap would need a walk faster than allowed between the two ends."""
    paths = tracklets["foot_path"].map(lambda p: np.asarray(p, np.float32).reshape(-1, 2))
    first = np.stack([p[0] for p in paths])
    last = np.stack([p[-1] for p in paths])
    height = np.maximum(tracklets["mean_box_height"].to_numpy(float), 1.0)
    start = tracklets["start_time_s"].to_numpy(float)
    i_before_j = start[None, :] >= start[:, None]  # i ends before j starts (no overlap case)
    distance = np.where(
        i_before_j,
        np.linalg.norm(first[None, :, :] - last[:, None, :], axis=2),
        np.linalg.norm(first[:, None, :] - last[None, :, :], axis=2),
    )
    mean_height = (height[:, None] + height[None, :]) / 2
    reach = walk_reach_px(np.maximum(gap, 0), mean_height, config.in_camera_max_speed_heights_per_s)
    return (gap > 0) & (gap <= config.in_camera_position_gate_s) & (distance > reach)


def cross_camera_column(tracklets: pd.DataFrame, use_camera_bn: bool) -> pd.Series:
    """Per tracklet row, the column cross-camera matching reads: `reid_camera_embedding` for a camera whose every
    embedded tracklet has one (the camera's own BN statistics), else `reid_embedding` (the trained statistics)."""
    plain = pd.Series("reid_embedding", index=tracklets.index)
    if not use_camera_bn or "reid_camera_embedding" not in tracklets.columns:
        return plain
    has = tracklets["reid_camera_embedding"].map(lambda v: v is not None and len(v) > 0)
    embedded = tracklets["reid_embedding"].map(lambda v: v is not None and len(v) > 0)
    complete = (has | ~embedded).groupby(tracklets["camera_id"]).transform("all") & has.groupby(
        tracklets["camera_id"]).transform("any")
    return plain.mask(complete, "reid_camera_embedding")


def _persons(tracklets: pd.DataFrame, use_camera_bn: bool = False) -> pd.DataFrame:
    """One row per (camera, person): weighted mean embedding and time span (wall clock, seconds)."""
    rows = []
    column = cross_camera_column(tracklets, use_camera_bn)
    for (camera_id, person_id), group in tracklets.groupby(["camera_id", "person_id"], sort=True):
        vectors, present = _embeddings(group[column.loc[group.index].iloc[0]].reset_index(drop=True))
        weights = group["num_crops"].to_numpy(float) * present
        mean = (vectors * weights[:, None]).sum(axis=0)
        norm = float(np.linalg.norm(mean))
        rows.append(
            {
                "camera_id": camera_id,
                "person_id": int(person_id),
                "embedding": mean / norm if norm > 0 else None,
                "start": group["start_timestamp"].min().timestamp(),
                "end": group["end_timestamp"].max().timestamp(),
            }
        )
    persons = pd.DataFrame(rows)
    persons["embedding"] = pad_vectors(persons["embedding"]) if len(persons) else persons.get("embedding")
    return persons


def pad_vectors(vectors: pd.Series) -> pd.Series:
    """Unit vectors of different lengths -> one length, zeros appended.

    Why: a camera-BN vector carries body-part stripes after the embedding (`ReidEmbedder.embed_camera_bn`); a
    camera whose tracklets lack one falls back to its plain vectors, which have none. Zero stripes make its
    similarity to a camera-BN person the embedding cosine / sqrt(1 + parts_weight): smaller, so such a camera
    joins others less readily (a stranger merged is worse than a split), never by comparing unrelated values.
    """
    lengths = vectors.map(lambda v: 0 if v is None else len(v))
    longest = int(lengths.max()) if len(lengths) else 0
    return vectors.map(lambda v: v if v is None or len(v) == longest else np.pad(np.asarray(v, np.float32),
                                                                                 (0, longest - len(v))))


def _transit_allowed(persons: pd.DataFrame, windows: dict[str, tuple[float, float]]) -> np.ndarray:
    """(n, n) True where the pair may be one person under the camera-pair transit windows.

    A window "A->B": [low, high] says a person leaving A enters B low..high seconds later. A pair
    of cameras with any window is restricted to its windows (either direction); others are free.
    """
    n = len(persons)
    restricted = np.zeros((n, n), bool)
    ok = np.zeros((n, n), bool)
    cameras = persons["camera_id"].to_numpy()
    start, end = persons["start"].to_numpy(float), persons["end"].to_numpy(float)
    for key, (low, high) in windows.items():
        source, target = (part.strip() for part in key.split("->"))
        for i in np.flatnonzero(cameras == source):
            for j in np.flatnonzero(cameras == target):
                restricted[i, j] = restricted[j, i] = True
                if low <= start[j] - end[i] <= high:
                    ok[i, j] = ok[j, i] = True
    return ~restricted | ok


def mutual_best(similarity: np.ndarray, cameras: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(n, n) True where i and j are each other's most similar person in the other's camera.

    Why: across real cameras a stranger under the same light is often as close as the person
    themself; a true match is usually *mutually* best (Lowe's mutual-nearest-neighbour test, the
    1:1 assignment a pair of cameras implies). Parameter-free; applied per camera pair.
    """
    n = len(similarity)
    ok = np.zeros((n, n), bool)
    masked = np.where(present[:, None] & present[None, :], similarity, -np.inf)
    best_in = {}
    for camera in np.unique(cameras):
        columns = np.flatnonzero(cameras == camera)
        best_in[camera] = columns[np.argmax(masked[:, columns], axis=1)]  # each row's best person in `camera`
    for i in np.flatnonzero(present):
        for camera, best in best_in.items():
            j = best[i]
            if camera != cameras[i] and best_in[cameras[i]][j] == i and np.isfinite(masked[i, j]):
                ok[i, j] = ok[j, i] = True
    return ok


def match_cross_camera(tracklets: pd.DataFrame, config: MatchConfig) -> pd.Series:
    """Global id (1..k) per tracklet row; `tracklets` needs camera_id, person_id, embeddings, times."""
    if tracklets.empty:
        return pd.Series([], dtype=np.int32)
    persons = _persons(tracklets, config.cross_camera_camera_bn)
    embeddings, present = _embeddings(persons["embedding"])
    cameras = persons["camera_id"].to_numpy()
    if config.cross_camera_centering:  # remove each camera's own look (light, colour cast, viewpoint)
        embeddings[present] = center_by_camera(
            embeddings[present], cameras[present], config.cross_camera_centering_min_persons
        )
    cannot = (cameras[:, None] == cameras[None, :]) | ~present[:, None] | ~present[None, :]
    np.fill_diagonal(cannot, False)
    allowed = _transit_allowed(persons, config.transit_windows)
    if config.cross_camera_mutual_best:
        allowed &= mutual_best(embeddings @ embeddings.T, cameras, present)
    labels = constrained_average_linkage(
        embeddings @ embeddings.T, cannot, config.cross_camera_min_similarity, can_link=allowed
    )
    labels = consistency_pass(embeddings, labels, config.consistency_min_similarity)
    _, labels = np.unique(labels, return_inverse=True)
    key = dict(zip(zip(persons["camera_id"], persons["person_id"], strict=True), labels + 1, strict=True))
    return pd.Series(
        [int(key[(c, p)]) for c, p in zip(tracklets["camera_id"], tracklets["person_id"], strict=True)],
        index=tracklets.index,
        dtype=np.int32,
    )
