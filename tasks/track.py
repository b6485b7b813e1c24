"""Trackers from boxmot behind one interface, chosen by name (a config value, not code)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from smarttrace.assets import resolve
from smarttrace.config import TrackerConfig
from smarttrace.errors import ConfigError
from tasks.detections import Detections

# name -> (boxmot class name, needs ReID weights)
TRACKERS: dict[str, tuple[str, bool]] = {
    "bytetrack": ("ByteTrack", False),
    "ocsort": ("OcSort", False),
    "botsort": ("BotSort", True),
    "deepocsort": ("DeepOcSort", True),
    "strongsort": ("StrongSort", True),
}


class Tracker(Protocol):
    """What we need from a boxmot tracker."""

    def update(self, dets: np.ndarray, img: np.ndarray) -> np.ndarray: ...


def tracker_config_for(config: TrackerConfig, overrides: dict[str, Any]) -> TrackerConfig:
    """``config`` with one camera's ``tracker_params`` merged over its params (the camera wins)."""
    if not overrides:
        return config
    return config.model_copy(update={"params": {**config.params, **overrides}})


def build_tracker(config: TrackerConfig, frame_rate: float, owner: str = "tracker") -> Tracker:
    """Build a boxmot tracker. `frame_rate` is the rate of frames it is fed (after stride).

    A parameter the tracker does not take raises ``ConfigError`` naming ``owner`` (e.g. the camera)
    and the parameter, before any frame is decoded.
    """
    import boxmot

    if config.name not in TRACKERS:
        raise ValueError(f"unknown tracker '{config.name}', choose one of {', '.join(TRACKERS)}")
    class_name, needs_reid = TRACKERS[config.name]
    params: dict[str, Any] = {"frame_rate": max(1, round(frame_rate)), **config.params}
    if needs_reid:
        params.setdefault("reid_weights", resolve(config.reid_weights))
        params.setdefault("device", "cpu")
        params.setdefault("half", False)
    try:
        return getattr(boxmot, class_name)(**params)
    except TypeError as exc:
        raise ConfigError(f"{owner}: bad parameter for tracker '{config.name}' ({class_name}): {exc}") from exc


def update_tracker(tracker: Tracker, detections: Detections, frame: np.ndarray) -> Detections:
    """Feed one frame's detections; return the tracked ones with `tracker_id` set.

    boxmot returns (m, 8) rows x1, y1, x2, y2, id, conf, cls, det_index; det_index lets us
    carry each detection's keypoints over to its track.
    """
    output = tracker.update(detections.to_tracker_input(), frame)
    if output is None or len(output) == 0:
        tracked = Detections.empty()
        tracked.tracker_id = np.zeros(0, np.int64)
        return tracked
    # Keep the detector's box (measured, not the Kalman-predicted one) for each matched detection.
    tracked = detections.select(output[:, 7].astype(np.int64))
    tracked.tracker_id = output[:, 4].astype(np.int64)
    return tracked
