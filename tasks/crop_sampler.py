"""Keep a bounded, time-spread sample of each track's crops while the video streams by.

Why sample during tracking: re-decoding hours of video to cut crops later costs as much as
decoding did. Memory stays bounded: at most 2*K crops per live track, thinned by dropping
every other one, which keeps the sample spread over the track's whole life.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


class CropSampler:
    """Per-track crop reservoir; crops cut by the image edge or too small are skipped."""

    def __init__(self, per_track: int, min_height: float, edge_margin_px: int = 2) -> None:
        self.per_track = per_track
        self.min_height = min_height
        self.edge_margin_px = edge_margin_px
        self.crops: dict[int, list[tuple[int, np.ndarray]]] = defaultdict(list)
        self._every: dict[int, int] = defaultdict(lambda: 1)
        self._seen: dict[int, int] = defaultdict(int)

    def _usable(self, box: np.ndarray, frame_hw: tuple[int, int]) -> bool:
        x1, y1, x2, y2 = box
        height, width = frame_hw
        m = self.edge_margin_px
        inside = x1 > m and y1 > m and x2 < width - m and y2 < height - m
        return inside and (y2 - y1) >= self.min_height

    def offer(self, track_id: int, frame_index: int, box: np.ndarray, frame: np.ndarray) -> None:
        """Consider one detection of a track; copies the crop if it is kept."""
        if not self._usable(box, frame.shape[:2]):
            return
        self._seen[track_id] += 1
        if (self._seen[track_id] - 1) % self._every[track_id]:
            return
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        self.crops[track_id].append((frame_index, frame[y1:y2, x1:x2].copy()))
        if len(self.crops[track_id]) >= 2 * self.per_track:
            self.crops[track_id] = self.crops[track_id][::2]
            self._every[track_id] *= 2

    def sample(self, track_id: int) -> list[np.ndarray]:
        """At most `per_track` crops of the track, evenly spread over the kept ones."""
        kept = self.crops.get(track_id, [])
        if len(kept) <= self.per_track:
            return [crop for _, crop in kept]
        index = np.linspace(0, len(kept) - 1, self.per_track).round().astype(int)
        return [kept[i][1] for i in index]
