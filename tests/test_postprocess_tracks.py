"""Gap interpolation and short-track removal on hand-made tracks."""

import numpy as np
import pandas as pd

from tasks.postprocess_tracks import drop_short_tracks, interpolate_gaps


def _rows(track_id, frames, x0=0.0, dx=10.0):
    return pd.DataFrame(
        {
            "frame_index": frames,
            "track_id": track_id,
            "x1": [x0 + dx * f for f in frames],
            "y1": 0.0,
            "x2": [x0 + dx * f + 5 for f in frames],
            "y2": 20.0,
            "confidence": 0.9,
            "interpolated": False,
            "keypoints": [np.ones(51, np.float32)] * len(frames),
        }
    )


def test_gap_is_filled_linearly_and_marked_interpolated():
    out = interpolate_gaps(_rows(1, [0, 4]), max_gap=5)
    assert out["frame_index"].tolist() == [0, 1, 2, 3, 4]
    assert np.allclose(out["x1"], [0, 10, 20, 30, 40])
    assert out["interpolated"].tolist() == [False, True, True, True, False]
    assert out.loc[out["interpolated"], "keypoints"].isna().all()


def test_gap_longer_than_limit_is_left_open():
    out = interpolate_gaps(_rows(1, [0, 10]), max_gap=5)
    assert out["frame_index"].tolist() == [0, 10]


def test_tracks_are_filled_independently():
    rows = pd.concat([_rows(1, [0, 2]), _rows(2, [5, 8], x0=100)], ignore_index=True)
    out = interpolate_gaps(rows, max_gap=5)
    assert sorted(out.loc[out.track_id == 1, "frame_index"]) == [0, 1, 2]
    assert sorted(out.loc[out.track_id == 2, "frame_index"]) == [5, 6, 7, 8]


def test_short_tracks_count_only_detected_boxes():
    rows = pd.concat([_rows(1, [0, 1, 2]), _rows(2, [0, 9])], ignore_index=True)
    rows = interpolate_gaps(rows, max_gap=10)  # track 2 now has 10 rows but only 2 detections
    kept = drop_short_tracks(rows, min_detections=3)
    assert set(kept["track_id"]) == {1}
