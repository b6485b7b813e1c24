"""Join tracklets of one person broken by an occlusion or a missed stretch of detections.

A tracker gives up on a person after a few missed frames; when they reappear they get a new
id. We link tracklet A to a later tracklet B when B starts within `max_gap_s` of A's end,
near where A's end could have walked to, and the two look alike (OSNet cosine similarity).
Each tracklet gets at most one successor and one predecessor, decided greedily from the most
similar pair, so chains never overlap in time. Pure numpy: no Prefect, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinkParams:
    """Gates for linking; defaults from PETS09-S2L1 (7 fps, people ~80 px tall)."""

    max_gap_s: float = 5.0  # longest occlusion bridged, seconds
    max_speed_heights_per_s: float = 1.0  # a brisk walk is ~1 body height per second
    min_similarity: float = 0.85  # OSNet x0.25 cosine; see PostprocessConfig for the sweep
    max_height_ratio: float = 1.6  # box heights at the two ends may differ by at most this factor


@dataclass(frozen=True)
class TrackletEnds:
    """What linking needs of one tracklet: its two ends and its appearance."""

    track_id: int
    first_frame: int
    last_frame: int
    first_foot: np.ndarray  # (2,) pixels: bottom-centre of the first box
    last_foot: np.ndarray  # (2,) pixels: bottom-centre of the last box
    first_height: float  # pixels
    last_height: float  # pixels
    embedding: np.ndarray  # (d,) L2-normalised


def walk_reach_px(gap_s: float | np.ndarray, height_px: float | np.ndarray, speed_heights_per_s: float):
    """How far (pixels) a person of this box height can walk in `gap_s` seconds, plus half a body of slack."""
    return (speed_heights_per_s * gap_s + 0.5) * height_px


def _gate(a: TrackletEnds, b: TrackletEnds, fps: float, params: LinkParams) -> float | None:
    """Similarity of A -> B if B may continue A, else None."""
    gap_frames = b.first_frame - a.last_frame
    if gap_frames <= 0 or gap_frames > params.max_gap_s * fps:
        return None
    heights = (a.last_height, b.first_height)
    if max(heights) > params.max_height_ratio * min(heights):
        return None
    reach = walk_reach_px(gap_frames / fps, float(np.mean(heights)), params.max_speed_heights_per_s)
    if np.linalg.norm(b.first_foot - a.last_foot) > reach:
        return None
    similarity = float(a.embedding @ b.embedding)
    return similarity if similarity >= params.min_similarity else None


def link_tracklets(tracklets: list[TrackletEnds], fps: float, params: LinkParams) -> dict[int, int]:
    """Map every track id to the id of its chain's first tracklet (identity if unlinked)."""
    candidates = [
        (similarity, a.track_id, b.track_id)
        for a in tracklets
        for b in tracklets
        if (similarity := _gate(a, b, fps, params)) is not None
    ]
    successor: dict[int, int] = {}
    predecessor: dict[int, int] = {}
    for _, a, b in sorted(candidates, reverse=True):
        if a not in successor and b not in predecessor:
            successor[a], predecessor[b] = b, a
    mapping: dict[int, int] = {}
    for tracklet in sorted(tracklets, key=lambda t: t.first_frame):
        head = tracklet.track_id
        while head in predecessor:
            head = predecessor[head]
        mapping[tracklet.track_id] = head
    return mapping
