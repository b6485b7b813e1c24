"""INT8 detector: NNCF export calibrated on a real clip, boxes agreeing with FP32, cache repair, fallback."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from smarttrace.config import DetectorConfig
from tasks.detect import PersonDetector
from tasks.quantize_detector import export_is_valid
from tasks.video import DecodeReport, iter_frames

CLIP_FRAMES = 24
MIN_CONFIDENCE = 0.3  # boxes ByteTrack's first association uses; weaker ones are expected to differ


@pytest.fixture
def int8_cache(tmp_path, monkeypatch):
    """A private cache: this test's exports are built from scratch, not found from an earlier run."""
    pytest.importorskip("nncf")
    pytest.importorskip("openvino")
    monkeypatch.setenv("SMARTTRACE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(a[:, None, 0], b[None, :, 0]), np.maximum(a[:, None, 1], b[None, :, 1])
    x2, y2 = np.minimum(a[:, None, 2], b[None, :, 2]), np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _matched_fraction(reference, candidate) -> float:
    """Share of the reference's confident boxes that the candidate finds at IoU >= 0.5."""
    ref = reference.xyxy[reference.confidence >= MIN_CONFIDENCE]
    cand = candidate.xyxy[candidate.confidence >= MIN_CONFIDENCE * 0.8]
    if len(ref) == 0:
        return 1.0
    if len(cand) == 0:
        return 0.0
    return float((_iou(ref, cand).max(axis=1) >= 0.5).mean())


def _int8_config() -> DetectorConfig:
    return DetectorConfig(backend="openvino", precision="int8", calibration_frames=CLIP_FRAMES,
                          min_calibration_frames=16)


def test_int8_export_loads_and_agrees_with_fp32_boxes_then_a_corrupt_cache_is_rebuilt(
    int8_cache, pets_dir, models_dir, caplog
):
    video = pets_dir / "vtest.avi"
    frames = [frame for _, frame in iter_frames(video, "pets", DecodeReport(), max_frames=CLIP_FRAMES)]
    fp32 = PersonDetector(DetectorConfig(backend="openvino"))
    int8 = PersonDetector(_int8_config(), calibration_videos=[video])
    reference = [fp32([frame])[0] for frame in frames]
    quantized = [int8([frame])[0] for frame in frames]
    assert int8.precision == "int8" and fp32.precision == "fp32"
    exports = sorted(int8_cache.glob("exports/*-int8-*_openvino_model"))
    assert len(exports) == 1 and export_is_valid(exports[0])
    agreement = np.array([_matched_fraction(r, q) for r, q in zip(reference, quantized, strict=True)])
    assert sum(len(r) for r in reference) > 3 * CLIP_FRAMES  # ~4 people a frame in the first second: a real scene
    assert (agreement >= 0.8).mean() >= 0.8, agreement  # most frames: >= 80 % of FP32's boxes found again
    assert agreement.mean() >= 0.85, agreement

    weights_bin = next(exports[0].glob("*.bin"))
    size = weights_bin.stat().st_size
    weights_bin.write_bytes(weights_bin.read_bytes()[: size // 2])  # a truncated copy / disk error
    assert not export_is_valid(exports[0])
    with caplog.at_level(logging.WARNING, logger="smarttrace.detect"):
        rebuilt = PersonDetector(_int8_config(), calibration_videos=[video])
        again = rebuilt([frames[0]])[0]
    assert any("corrupt" in r.getMessage() for r in caplog.records)
    assert export_is_valid(exports[0]) and weights_bin.stat().st_size == size
    assert rebuilt.precision == "int8" and _matched_fraction(quantized[0], again) >= 0.8


def test_failed_calibration_falls_back_to_fp32_with_one_warning(int8_cache, pets_dir, models_dir, tmp_path, caplog):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00not a video" * 100)
    frame = next(iter_frames(pets_dir / "vtest.avi", "pets", DecodeReport(), max_frames=1))[1]
    detector = PersonDetector(_int8_config(), calibration_videos=[broken])
    with caplog.at_level(logging.WARNING, logger="smarttrace.detect"):
        detections = detector([frame])[0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "calibration failed, using FP32" in warnings[0] and "broken.mp4" in warnings[0]
    assert detector.precision == "fp32" and len(detections) > 0
    assert not list(int8_cache.glob("exports/*-int8-*"))
