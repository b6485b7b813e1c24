"""Tracker construction: the boxmot registry, per-camera parameter overrides and their errors."""

from __future__ import annotations

import pytest

from flows.process import _camera_section
from smarttrace.config import CameraConfig, TrackerConfig
from smarttrace.errors import ConfigError
from tasks.track import build_tracker, tracker_config_for


def test_camera_overrides_win_over_the_global_params_without_changing_them():
    base = TrackerConfig(params={"track_thresh": 0.4, "track_buffer": 60})
    camera = CameraConfig(id="campus", video="v.mp4", fps=25, tracker_params={"track_thresh": 0.6})
    merged = tracker_config_for(base, camera.tracker_params)
    assert merged.params == {"track_thresh": 0.6, "track_buffer": 60}
    assert base.params == {"track_thresh": 0.4, "track_buffer": 60}  # other cameras keep the global value
    assert tracker_config_for(base, {}) is base
    tracker = build_tracker(merged, frame_rate=25, owner="camera campus")
    assert tracker.track_thresh == 0.6
    assert build_tracker(base, frame_rate=25).track_thresh == 0.4


def test_unknown_tracker_parameter_names_the_camera_and_parameter():
    config = tracker_config_for(TrackerConfig(), {"track_threshold": 0.6})
    with pytest.raises(ConfigError, match=r"camera campus: bad parameter for tracker 'bytetrack'.*track_threshold"):
        build_tracker(config, frame_rate=25, owner="camera campus")


def test_camera_overrides_are_part_of_that_camera_s_track_stage_key():
    # The track stage's cache key hashes the camera section: changing one camera's overrides re-runs
    # that camera's tracking only.
    plain = CameraConfig(id="campus", video="v.mp4", fps=25)
    tuned = plain.model_copy(update={"tracker_params": {"track_thresh": 0.6}})
    assert _camera_section(plain) != _camera_section(tuned)
    assert _camera_section(tuned)["tracker_params"] == {"track_thresh": 0.6}
