"""Detect on keyframes, carry the boxes over the frames between them by optical flow.

Why: the detector is ~85% of Stage 1's time, and consecutive frames of a fixed camera hardly
change. Running it on every `stride`-th frame alone (and feeding the tracker only those frames)
breaks IoU association: PETS09-S2L1 at stride 2 lost 0.05 MOTA and 0.10 IDF1. Here the tracker
still sees EVERY frame: between keyframes each box of the previous frame is moved by the median
sparse optical flow (pyramidal Lucas-Kanade) of a grid of points inside it, ~1 ms per frame.
Flow cannot tell two people apart where their boxes overlap, so a frame is detected anyway when
two boxes of the previous frame overlap more than `redetect_iou`: crowded moments get the detector
on every frame, an empty plaza gets it on every `stride`-th. Only detected frames become rows of
the tracks table (flow boxes steer the tracker, they are not measurements); the rows between are
filled by interpolation afterwards, as for any gap.

Plain module: no Prefect, no I/O. `keyframe_stream` takes the detector as a callable.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import cv2
import numpy as np

from tasks.detections import Detections, max_overlap_xyxy

FLOW_GRID = 5  # points per side of the grid tracked inside each box (25 points)
FLOW_WINDOW = (15, 15)  # Lucas-Kanade window, pixels
FLOW_LEVELS = 2  # pyramid levels above the frame: people move ~10-20 px per frame at 7 fps
GRID_MARGIN_X, GRID_MARGIN_Y = 0.2, 0.1  # stay off the box's edges, where background shows


def to_gray(frame: np.ndarray) -> np.ndarray:
    """The single-channel image optical flow runs on."""
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame


def _grid_points(boxes: np.ndarray, grid: int) -> np.ndarray:
    """(n * grid * grid, 1, 2) float32 points, an even grid inside each box's central part."""
    points = []
    for x1, y1, x2, y2 in boxes:
        dx, dy = GRID_MARGIN_X * (x2 - x1), GRID_MARGIN_Y * (y2 - y1)
        xs = np.linspace(x1 + dx, x2 - dx, grid)
        ys = np.linspace(y1 + dy, y2 - dy, grid)
        points.append(np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2))
    return np.concatenate(points).astype(np.float32)[:, None, :]


def box_shifts(prev_gray: np.ndarray, gray: np.ndarray, boxes: np.ndarray, grid: int = FLOW_GRID) -> np.ndarray:
    """(n, 2) median flow (dx, dy) of each box's points from `prev_gray` to `gray`; 0 where none was found."""
    shifts = np.zeros((len(boxes), 2), np.float32)
    if len(boxes) == 0:
        return shifts
    start = _grid_points(np.asarray(boxes, np.float32), grid)
    end, found, _ = cv2.calcOpticalFlowPyrLK(prev_gray, gray, start, None, winSize=FLOW_WINDOW, maxLevel=FLOW_LEVELS)
    moved = (end - start)[:, 0, :].reshape(len(boxes), grid * grid, 2)
    found = found[:, 0].astype(bool).reshape(len(boxes), grid * grid)
    for i in range(len(boxes)):
        if found[i].any():
            shifts[i] = np.median(moved[i][found[i]], axis=0)
    return shifts


def carry(prev_gray: np.ndarray, gray: np.ndarray, detections: Detections, grid: int = FLOW_GRID) -> Detections:
    """The previous frame's detections moved into this frame by optical flow (same confidences, same order)."""
    shifts = box_shifts(prev_gray, gray, detections.xyxy, grid)
    keypoints = detections.keypoints.copy()
    keypoints[:, :, :2] += shifts[:, None, :]
    return Detections(
        xyxy=(detections.xyxy + np.tile(shifts, 2)).astype(np.float32),
        confidence=detections.confidence.copy(),
        keypoints=keypoints.astype(np.float32),
    )


@dataclass(frozen=True)
class KeyframePlan:
    """When the detector runs: every `stride`-th frame, and on any frame after a crowded one."""

    stride: int
    redetect_iou: float

    def scheduled(self, offset: int) -> bool:
        """A keyframe: `offset` frames after the first (known before any box is seen, so it can run ahead)."""
        return offset % self.stride == 0

    def crowded(self, previous: Detections) -> bool:
        """Two of the previous frame's boxes overlap more than `redetect_iou`: flow would mix them up."""
        return bool(len(previous) > 1 and max_overlap_xyxy(previous.xyxy).max() > self.redetect_iou)

    def detect(self, offset: int, previous: Detections | None) -> bool:
        """`offset`: frames since the first; `previous`: the last frame's boxes (None before the first)."""
        return previous is None or self.scheduled(offset) or self.crowded(previous)


@dataclass
class KeyframeItem:
    """One frame for the tracker: its boxes, whether the detector made them, and the detector's seconds."""

    index: int
    frame: np.ndarray
    detections: Detections
    detected: bool
    detect_s: float
    flow_s: float


def _timed(detect: Callable[[np.ndarray], Detections], frame: np.ndarray) -> tuple[Detections, float]:
    started = time.perf_counter()
    detections = detect(frame)
    return detections, time.perf_counter() - started


class _Done:
    """A finished result with a Future's `result` / `cancel` (the path without a detector thread)."""

    def __init__(self, value: tuple[Detections, float]) -> None:
        self.value = value

    def result(self) -> tuple[Detections, float]:
        return self.value

    def cancel(self) -> bool:
        return False


def keyframe_stream(
    frames: Iterable[tuple[int, np.ndarray]],
    detect: Callable[[np.ndarray], Detections],
    plan: KeyframePlan,
    lookahead: bool = True,
) -> Iterator[KeyframeItem]:
    """Every frame with boxes: detected on the plan's keyframes (and after crowded frames), carried by flow otherwise.

    `lookahead`: one detector thread detects the next scheduled keyframe while the frames before it are
    decoded, carried and tracked here; every `detect` call then runs on that thread (one model, one
    thread), so a crowded frame's extra detection queues behind it. The boxes are the same either way.
    """
    source = iter(frames)
    ahead: deque[tuple[int, np.ndarray, bool, Future | _Done | None]] = deque()
    first: int | None = None
    previous: Detections | None = None
    prev_gray: np.ndarray | None = None
    with ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="keyframe")) if lookahead else None

        def start(frame: np.ndarray) -> Future | _Done:
            return pool.submit(_timed, detect, frame) if pool else _Done(_timed(detect, frame))

        def read_ahead() -> None:
            """Decode until the keyframe after the current one is in flight (at most `stride` frames ahead)."""
            nonlocal first
            while not any(scheduled for _, _, scheduled, _ in list(ahead)[1:]) and len(ahead) <= plan.stride:
                item = next(source, None)
                if item is None:
                    return
                index, frame = item
                first = index if first is None else first
                scheduled = plan.scheduled(index - first)
                ahead.append((index, frame, scheduled, start(frame) if scheduled and pool else None))

        try:
            while True:
                read_ahead()
                if not ahead:
                    return
                index, frame, _scheduled, future = ahead.popleft()
                started = time.perf_counter()
                gray = to_gray(frame)
                new_view = prev_gray is None or prev_gray.shape != gray.shape  # the first frame, or a new file's size
                if new_view or plan.detect(index - first, previous):
                    flow_s = time.perf_counter() - started
                    detections, detect_s = (future or start(frame)).result()
                    item = KeyframeItem(index, frame, detections, True, detect_s, flow_s)
                else:
                    detections = carry(prev_gray, gray, previous)
                    item = KeyframeItem(index, frame, detections, False, 0.0, time.perf_counter() - started)
                previous, prev_gray = detections, gray
                yield item
        finally:  # the caller stopped early, or a detection failed: drop what is queued
            for *_, future in ahead:
                if future is not None:
                    future.cancel()


__all__ = ["KeyframeItem", "KeyframePlan", "box_shifts", "carry", "keyframe_stream", "to_gray"]
