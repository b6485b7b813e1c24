"""Tracks -> MOTChallenge rows, so any external MOT tool can score a stage."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from smarttrace.errors import ArtifactError

MOT_COLUMNS = ["frame", "id", "x", "y", "w", "h", "conf"]


def tracks_to_mot(tracks: pd.DataFrame, camera: str | None = None, id_column: str = "track_id") -> pd.DataFrame:
    """MOT rows (frames 1-based as decoded: MOT frame k is the k-th decoded frame)."""
    cameras = sorted(tracks["camera_id"].unique()) if len(tracks) else []
    if camera is None and len(cameras) > 1:
        raise ArtifactError(f"the artifact holds cameras {', '.join(cameras)}: choose one with --camera")
    if camera is not None:
        tracks = tracks.loc[tracks["camera_id"] == camera]
    return pd.DataFrame(
        {
            "frame": tracks["frame_index"].astype(int) + 1,
            "id": tracks[id_column].astype(int),
            "x": tracks["x1"].astype(float),
            "y": tracks["y1"].astype(float),
            "w": (tracks["x2"] - tracks["x1"]).astype(float),
            "h": (tracks["y2"] - tracks["y1"]).astype(float),
            "conf": tracks["confidence"].astype(float).where(~tracks["interpolated"], 1.0),
        }
    ).sort_values(["frame", "id"], kind="stable").reset_index(drop=True)


def write_mot_txt(rows: pd.DataFrame, path: Path | None) -> None:
    """`frame,id,x,y,w,h,conf,-1,-1,-1` lines to a file, or stdout when path is None."""
    lines = [
        f"{r.frame},{r.id},{r.x:.2f},{r.y:.2f},{r.w:.2f},{r.h:.2f},{r.conf:.4f},-1,-1,-1"
        for r in rows.itertuples(index=False)
    ]
    text = "\n".join(lines) + ("\n" if lines else "")
    if path is None:
        sys.stdout.write(text)
    else:
        path.write_text(text)
