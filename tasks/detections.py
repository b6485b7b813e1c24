"""`Detections`: the one record that flows from the detector through the tracker.

Parallel numpy arrays, validated once at construction (shapes named in the error), with
adapters from each library's output in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from storage.schemas import NUM_KEYPOINTS


def crop_xyxy(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """A copy of the frame inside a box (x1, y1, x2, y2 in source pixels), widened to whole pixels and
    clipped to the frame; empty when the box lies outside it."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = box
    x1, y1 = int(max(0, np.floor(x1))), int(max(0, np.floor(y1)))
    x2, y2 = int(min(w, np.ceil(x2))), int(min(h, np.ceil(y2)))
    return frame[y1:y2, x1:x2].copy()


def iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) IoU between two arrays of x1, y1, x2, y2 boxes (pixels); empty boxes overlap nothing."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def max_overlap_xyxy(boxes: np.ndarray) -> np.ndarray:
    """For each box, its largest IoU with any OTHER box of the same array (0 when alone)."""
    if len(boxes) < 2:
        return np.zeros(len(boxes))
    iou = iou_xyxy(boxes, boxes)
    np.fill_diagonal(iou, 0.0)
    return iou.max(axis=1)


@dataclass
class Detections:
    """People found in one frame. Boxes are xyxy pixels of the source frame."""

    xyxy: np.ndarray  # (n, 4) float32
    confidence: np.ndarray  # (n,) float32
    keypoints: np.ndarray  # (n, 17, 3) float32: x, y (pixels), visibility score
    tracker_id: np.ndarray | None = None  # (n,) int, set once tracked

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        checks = {
            "xyxy": (self.xyxy.shape, (n, 4)),
            "confidence": (self.confidence.shape, (n,)),
            "keypoints": (self.keypoints.shape, (n, NUM_KEYPOINTS, 3)),
        }
        if self.tracker_id is not None:
            checks["tracker_id"] = (self.tracker_id.shape, (n,))
        for field, (actual, expected) in checks.items():
            if tuple(actual) != expected:
                raise ValueError(f"Detections.{field} has shape {actual}, expected {expected}")

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros((0,), np.float32),
            keypoints=np.zeros((0, NUM_KEYPOINTS, 3), np.float32),
        )

    @classmethod
    def from_ultralytics(cls, result) -> Detections:  # noqa: ANN001 - ultralytics.engine.results.Results
        """Convert one ultralytics Results (a pose model's) to Detections, on the CPU."""
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return cls.empty()
        xyxy = boxes.xyxy.cpu().numpy().astype(np.float32)
        confidence = boxes.conf.cpu().numpy().astype(np.float32)
        if result.keypoints is not None and result.keypoints.data.shape[1] == NUM_KEYPOINTS:
            keypoints = result.keypoints.data.cpu().numpy().astype(np.float32)
        else:  # a plain detection model: keep the column, mark every keypoint invisible
            keypoints = np.zeros((len(xyxy), NUM_KEYPOINTS, 3), np.float32)
        return cls(xyxy=xyxy, confidence=confidence, keypoints=keypoints)

    def to_tracker_input(self) -> np.ndarray:
        """boxmot's detection array: (n, 6) = x1, y1, x2, y2, confidence, class (0 = person)."""
        classes = np.zeros((len(self), 1), np.float32)
        return np.hstack([self.xyxy, self.confidence[:, None], classes]).astype(np.float32)

    def select(self, index: np.ndarray) -> Detections:
        """Rows by integer index (keeps arrays parallel)."""
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            keypoints=self.keypoints[index],
            tracker_id=None if self.tracker_id is None else self.tracker_id[index],
        )
