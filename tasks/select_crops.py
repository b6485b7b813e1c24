"""Choose the K best crops of each tracklet, spread over its life.

Quality favours what ReID and colour naming need: large boxes, confident detections, not cut
by the image edge, not overlapped by another person. Picking the best box in each of K equal
slices of the tracklet's life keeps the sample diverse (poses, lighting) instead of K near-
identical consecutive frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.detections import max_overlap_xyxy

EDGE_MARGIN_PX = 2  # a box this close to the border is probably cut by it


def crop_quality(tracks: pd.DataFrame, frame_hw: tuple[int, int], min_height: float, max_overlap: float) -> pd.Series:
    """Quality in [0, 1] of every box (0 = unusable), indexed like `tracks`."""
    height, width = frame_hw
    overlap = pd.Series(0.0, index=tracks.index)
    for _, frame_rows in tracks.groupby("frame_index"):
        overlap.loc[frame_rows.index] = max_overlap_xyxy(frame_rows[["x1", "y1", "x2", "y2"]].to_numpy())
    box_h = tracks["y2"] - tracks["y1"]
    inside = (
        (tracks["x1"] > EDGE_MARGIN_PX) & (tracks["y1"] > EDGE_MARGIN_PX)
        & (tracks["x2"] < width - EDGE_MARGIN_PX) & (tracks["y2"] < height - EDGE_MARGIN_PX)
    )
    usable = inside & (box_h >= min_height) & (overlap <= max_overlap) & ~tracks["interpolated"]
    size = (box_h / max(box_h.max(), 1.0)).clip(0, 1)
    return (size * tracks["confidence"].clip(0, 1) * (1 - overlap)).where(usable, 0.0)


def select_crops(tracks: pd.DataFrame, quality: pd.Series, per_tracklet: int) -> pd.DataFrame:
    """Rows of `tracks` chosen as crops: the best box in each of K slices of each tracklet's life."""
    chosen = []
    usable = tracks.assign(quality=quality).loc[quality > 0]
    for _, rows in usable.groupby("track_id"):
        first, last = rows["frame_index"].min(), rows["frame_index"].max()
        edges = np.linspace(first, last + 1, per_tracklet + 1)
        slice_of = np.searchsorted(edges, rows["frame_index"].to_numpy(), side="right") - 1
        best = rows.assign(slice=slice_of).sort_values("quality", ascending=False).groupby("slice").head(1)
        chosen.append(best.drop(columns="slice"))
    if not chosen:
        return tracks.assign(quality=quality).iloc[0:0]
    return pd.concat(chosen).sort_values(["track_id", "frame_index"])
