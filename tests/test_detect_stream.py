"""PersonDetector.stream: detector threads ahead of the tracker give the same boxes, in frame order."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from smarttrace.config import DetectorConfig
from tasks.detect import PersonDetector


def _frames(pets_dir, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(pets_dir / "vtest.avi"))
    frames = [capture.read()[1] for _ in range(count)]
    capture.release()
    return frames


def _detector(models_dir, monkeypatch, workers: int) -> PersonDetector:
    monkeypatch.setenv("SMARTTRACE_MODEL_DIR", str(models_dir))
    return PersonDetector(DetectorConfig(workers=workers, backend="openvino"))


def test_worker_threads_give_the_inline_boxes_in_frame_order_across_a_frame_size_change(
    pets_dir, models_dir, monkeypatch
):
    frames = _frames(pets_dir, 8)
    # A camera whose second file is smaller: each worker must load the model for the new input shape.
    frames += [cv2.resize(frame, (640, 480)) for frame in frames[:4]]
    items = [(index * 3, frame) for index, frame in enumerate(frames)]  # indices need not be contiguous
    inline = list(_detector(models_dir, monkeypatch, 0).stream(items))
    threaded = list(_detector(models_dir, monkeypatch, 2).stream(items))
    assert [row[0] for row in threaded] == [index for index, _ in items]
    assert all(row[1] is frame for row, (_, frame) in zip(threaded, items, strict=True))
    assert sum(len(row[2]) for row in inline) > 20  # PETS09 has people in every frame
    for a, b in zip(inline, threaded, strict=True):
        np.testing.assert_allclose(a[2].xyxy, b[2].xyxy, atol=1e-3)
        np.testing.assert_allclose(a[2].confidence, b[2].confidence, atol=1e-5)
    assert all(row[3] > 0 for row in threaded)


def test_a_failing_frame_source_stops_the_stream_with_its_error_after_the_frames_before_it(
    pets_dir, models_dir, monkeypatch
):
    frames = _frames(pets_dir, 4)

    def source():
        yield from enumerate(frames)
        raise ValueError("video.mp4: frame 4 is corrupt")

    for workers in (0, 1):  # frames read before the error are detected and delivered, threads or not
        seen = []
        with pytest.raises(ValueError, match="frame 4 is corrupt"):
            for index, _, detections, _ in _detector(models_dir, monkeypatch, workers).stream(source()):
                seen.append((index, len(detections)))
        assert [index for index, _ in seen] == [0, 1, 2, 3], workers
        assert all(count > 0 for _, count in seen)


def test_a_consumer_that_stops_early_leaves_no_worker_running(pets_dir, models_dir, monkeypatch):
    import threading

    frames = _frames(pets_dir, 6)
    stream = _detector(models_dir, monkeypatch, 2).stream(enumerate(frames))
    assert next(stream)[0] == 0
    stream.close()  # the tracking loop broke out (e.g. max_frames): the pool shuts down with it
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("detect")]
