"""Offline clean-up of one camera's tracks: drop short tracks, fill gaps by interpolation.

Why offline: tracking runs causally, but we have the whole video. A person missed for a few
frames (occlusion, a weak detection, or frames skipped by the detector stride) is still the
same track on both sides of the gap; filling it raises recall (MOTA) and keeps identities
continuous (IDF1). Tracks seen only a handful of times are mostly false positives.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BOX_COLUMNS = ["x1", "y1", "x2", "y2"]


def drop_short_tracks(rows: pd.DataFrame, min_detections: int) -> pd.DataFrame:
    """Remove tracks with fewer than `min_detections` detected (not interpolated) boxes."""
    if rows.empty:
        return rows
    detected = rows.loc[~rows["interpolated"]].groupby("track_id").size()
    keep = detected.index[detected >= min_detections]
    return rows.loc[rows["track_id"].isin(keep)].reset_index(drop=True)


def drop_small_boxes(rows: pd.DataFrame, min_height: float) -> pd.DataFrame:
    """Remove boxes shorter than `min_height` pixels."""
    if rows.empty or min_height <= 0:
        return rows
    return rows.loc[(rows["y2"] - rows["y1"]) >= min_height].reset_index(drop=True)


def _fill_track(track: pd.DataFrame, max_gap: int) -> pd.DataFrame:
    """Linearly interpolated rows for the gaps of one track (frames strictly inside a gap)."""
    frames = track["frame_index"].to_numpy()
    gaps = np.diff(frames)
    fill_after = np.nonzero((gaps > 1) & (gaps <= max_gap + 1))[0]
    if len(fill_after) == 0:
        return track.iloc[0:0]
    boxes = track[BOX_COLUMNS].to_numpy(np.float64)
    new_frames, new_boxes = [], []
    for i in fill_after:
        inner = np.arange(frames[i] + 1, frames[i + 1])
        weight = ((inner - frames[i]) / gaps[i])[:, None]
        new_frames.append(inner)
        new_boxes.append(boxes[i] * (1 - weight) + boxes[i + 1] * weight)
    filled = pd.DataFrame(np.vstack(new_boxes), columns=BOX_COLUMNS)
    filled.insert(0, "frame_index", np.concatenate(new_frames))
    filled["track_id"] = track["track_id"].iloc[0]
    filled["confidence"] = 0.0
    filled["interpolated"] = True
    filled["keypoints"] = None
    return filled


def interpolate_gaps(rows: pd.DataFrame, max_gap: int) -> pd.DataFrame:
    """Fill gaps of at most `max_gap` missing frames inside each track; keeps rows sorted."""
    if rows.empty or max_gap <= 0:
        return rows
    rows = rows.sort_values(["track_id", "frame_index"], kind="stable")
    filled = [_fill_track(track, max_gap) for _, track in rows.groupby("track_id", sort=False)]
    filled = [f for f in filled if not f.empty]
    if filled:
        rows = pd.concat([rows, *filled], ignore_index=True)
    return rows.sort_values(["frame_index", "track_id"], kind="stable").reset_index(drop=True)
