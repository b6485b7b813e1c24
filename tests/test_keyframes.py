"""Keyframe detection with optical flow between keyframes (tasks/keyframes.py)."""

import numpy as np
import pytest

from smarttrace.config import CameraConfig, DetectorConfig, PostprocessConfig, TrackerConfig
from tasks.detections import Detections, iou_xyxy
from tasks.keyframes import KeyframePlan, box_shifts, carry, keyframe_stream, to_gray
from tasks.track_camera import track_camera, tracker_frame_rate


def _texture(seed: int = 0, size: tuple[int, int] = (240, 320)) -> np.ndarray:
    """A smooth random texture (blurred noise): corners everywhere for Lucas-Kanade."""
    import cv2

    noise = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 2.0)


def _shifted(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    return np.roll(np.roll(image, dy, axis=0), dx, axis=1)


def _detections(boxes: list[list[float]], conf: float = 0.8) -> Detections:
    n = len(boxes)
    keypoints = np.zeros((n, 17, 3), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        keypoints[i, :, 0], keypoints[i, :, 1], keypoints[i, :, 2] = (x1 + x2) / 2, (y1 + y2) / 2, 0.9
    return Detections(np.array(boxes, np.float32).reshape(n, 4), np.full(n, conf, np.float32), keypoints)


def test_box_shifts_recover_a_known_translation():
    before = _texture()
    after = _shifted(before, 4, -3)
    shifts = box_shifts(before, after, np.array([[100, 60, 140, 150], [200, 80, 240, 170]], np.float32))
    np.testing.assert_allclose(shifts, [[4, -3], [4, -3]], atol=0.25)


def test_carry_moves_boxes_and_keypoints_by_the_same_shift_and_keeps_the_rest():
    before = _texture(1)
    after = _shifted(before, -5, 2)
    previous = _detections([[50, 40, 90, 130], [180, 70, 220, 160]], conf=0.55)
    carried = carry(before, after, previous)
    np.testing.assert_allclose(carried.xyxy - previous.xyxy, [[-5, 2, -5, 2]] * 2, atol=0.3)
    moved = carried.keypoints[:, :, :2] - previous.keypoints[:, :, :2]
    np.testing.assert_allclose(moved, np.broadcast_to([-5, 2], moved.shape), atol=0.3)
    np.testing.assert_array_equal(carried.keypoints[:, :, 2], previous.keypoints[:, :, 2])
    np.testing.assert_array_equal(carried.confidence, previous.confidence)
    assert carried.tracker_id is None


def test_carry_of_no_boxes_is_no_boxes():
    image = _texture(2)
    assert len(carry(image, image, Detections.empty())) == 0


def test_plan_detects_keyframes_and_frames_after_overlapping_boxes():
    plan = KeyframePlan(stride=4, redetect_iou=0.1)
    apart = _detections([[0, 0, 10, 20], [50, 0, 60, 20]])
    crossing = _detections([[0, 0, 10, 20], [4, 0, 14, 20]])  # IoU 6/14 = 0.43
    touching = _detections([[0, 0, 10, 20], [9, 0, 19, 20]])  # IoU 1/19 = 0.05
    assert plan.detect(0, None) and plan.detect(7, None)
    assert [plan.detect(k, apart) for k in range(9)] == [True, False, False, False, True, False, False, False, True]
    assert plan.detect(1, crossing) and not plan.detect(1, touching)
    assert not KeyframePlan(stride=4, redetect_iou=1.0).detect(1, crossing)


def test_stream_calls_the_detector_on_keyframes_only_and_carries_boxes_with_the_motion():
    base = np.dstack([_texture(3)] * 3)
    frames = [(10 + k, _shifted(base, 2 * k, 0)) for k in range(9)]  # moves 2 px right per frame
    calls: list[int] = []

    def detect(frame: np.ndarray) -> Detections:
        k = next(i for i, (_, f) in enumerate(frames) if f is frame)
        calls.append(k)
        return _detections([[100 + 2 * k, 50, 140 + 2 * k, 140]])

    items = list(keyframe_stream(iter(frames), detect, KeyframePlan(stride=4, redetect_iou=0.1)))
    assert calls == [0, 4, 8]
    assert [item.index for item in items] == [f[0] for f in frames]
    assert [item.detected for item in items] == [k % 4 == 0 for k in range(9)]
    for k, item in enumerate(items):
        np.testing.assert_allclose(item.detections.xyxy[0], [100 + 2 * k, 50, 140 + 2 * k, 140], atol=0.5)
        assert (item.detect_s > 0) == item.detected


@pytest.mark.parametrize("lookahead", [True, False])
def test_a_crowded_frame_is_detected_and_both_paths_give_the_same_boxes(lookahead):
    base = np.dstack([_texture(5)] * 3)
    frames = [(k, _shifted(base, k, 0)) for k in range(8)]
    calls: list[int] = []

    def detect(frame: np.ndarray) -> Detections:
        k = next(i for i, (_, f) in enumerate(frames) if f is frame)
        calls.append(k)
        if k == 4:  # two people crossing at the second keyframe
            return _detections([[100 + k, 50, 140 + k, 140], [110 + k, 50, 150 + k, 140]])
        return _detections([[100 + k, 50, 140 + k, 140]])

    items = list(keyframe_stream(iter(frames), detect, KeyframePlan(stride=4, redetect_iou=0.1), lookahead))
    assert sorted(calls) == [0, 4, 5]  # frame 5 follows the crowded frame 4
    assert [item.detected for item in items] == [True, False, False, False, True, True, False, False]
    np.testing.assert_allclose(items[7].detections.xyxy, [[107, 50, 147, 140]], atol=0.5)


def test_a_frame_of_another_size_is_detected_not_carried():
    """A camera folder whose next file has another resolution: flow cannot run across the change."""
    small, large = np.dstack([_texture(7, (120, 160))] * 3), np.dstack([_texture(8)] * 3)
    frames = [(0, small), (1, small), (2, large), (3, large)]
    calls: list[int] = []

    def detect(frame: np.ndarray) -> Detections:
        calls.append(next(i for i, (_, f) in enumerate(frames) if f is frame))
        return _detections([[10, 10, 50, 100]])

    items = list(keyframe_stream(iter(frames), detect, KeyframePlan(stride=4, redetect_iou=0.1)))
    assert calls == [0, 2] and [item.detected for item in items] == [True, False, True, False]


def test_a_failing_detection_stops_the_stream_with_its_error():
    frames = [(k, np.dstack([_texture(6)] * 3)) for k in range(12)]

    def detect(frame: np.ndarray) -> Detections:
        if frame is frames[4][1]:
            raise RuntimeError("detector broke on frame 4")
        return _detections([[10, 10, 50, 100]])

    seen = []
    with pytest.raises(RuntimeError, match="frame 4"):
        for item in keyframe_stream(iter(frames), detect, KeyframePlan(stride=4, redetect_iou=0.1)):
            seen.append(item.index)
    assert seen == [0, 1, 2, 3]


def test_tracker_rate_is_the_camera_rate_unless_keyframes_are_fed_alone():
    camera = CameraConfig(id="c", video="x.avi", fps=8)
    assert tracker_frame_rate(camera, DetectorConfig(stride=4, between="flow")) == 8
    assert tracker_frame_rate(camera, DetectorConfig(stride=4, between="skip")) == 2


def test_config_rejects_an_unknown_between_mode():
    with pytest.raises(ValueError, match="between"):
        DetectorConfig(between="guess")


def test_flow_keyframes_on_real_video_keep_the_every_frame_boxes(pets_dir, models_dir):
    """PETS09, 60 frames: stride 4 + flow detects fewer frames yet covers the every-frame run's boxes."""
    camera = CameraConfig(id="pets", video=str(pets_dir / "vtest.avi"), fps=7, max_frames=60)
    post = PostprocessConfig(link=False)
    every = track_camera(camera, DetectorConfig(stride=1, workers=0), TrackerConfig(), post)
    keyed = track_camera(camera, DetectorConfig(stride=4, between="flow", redetect_iou=0.1), TrackerConfig(), post)
    assert every.detected_frames == 60 and 15 <= keyed.detected_frames < 60
    assert keyed.seconds["flow"] > 0 and every.seconds["flow"] == 0
    a, b = every.table.to_pandas(), keyed.table.to_pandas()
    assert set(b["frame_index"]) >= set(range(8, 52))  # frames between keyframes are filled
    matched = total = 0
    for frame, rows in a.groupby("frame_index"):
        other = b[b["frame_index"] == frame]
        total += len(rows)
        if len(other):
            iou = iou_xyxy(rows[["x1", "y1", "x2", "y2"]].to_numpy(), other[["x1", "y1", "x2", "y2"]].to_numpy())
            matched += int((iou.max(axis=1) >= 0.5).sum())
    assert total > 200 and matched / total >= 0.85


def test_gray_of_a_gray_frame_is_itself():
    image = _texture(4)
    assert to_gray(image) is image
