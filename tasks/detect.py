"""Person detection with ultralytics YOLO (pose models keep the 17 keypoints)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from smarttrace.assets import resolve
from smarttrace.config import DetectorConfig
from smarttrace.errors import AssetError
from tasks.detections import Detections

PERSON_CLASS = 0  # COCO class id of "person"


class PersonDetector:
    """A YOLO model loaded once from a verified local weights file, run on batches of frames."""

    def __init__(self, config: DetectorConfig) -> None:
        from ultralytics import YOLO  # heavy import, only when a detector is built

        self.config = config
        self.weights_path: Path = resolve(config.weights)
        try:
            self.model = YOLO(str(self.weights_path), task="pose" if "pose" in self.weights_path.name else None)
        except Exception as exc:  # ultralytics raises many types for a bad file
            raise AssetError(f"detector weights {self.weights_path} could not be loaded: {exc}") from exc

    def __call__(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detect people in each frame; one Detections per frame, boxes in source pixels."""
        results = self.model.predict(
            list(frames),
            imgsz=self.config.imgsz,
            conf=self.config.conf,
            iou=self.config.iou,
            classes=[PERSON_CLASS],
            device=self.config.device,
            verbose=False,
        )
        return [Detections.from_ultralytics(result) for result in results]
