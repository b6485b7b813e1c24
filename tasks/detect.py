"""Person detection with ultralytics YOLO (pose models keep the 17 keypoints).

The runtime is chosen like boxmot chooses its ReID backend: by the weights' suffix
(`.pt` -> PyTorch, `*_openvino_model/` -> OpenVINO, `.onnx` -> ONNX Runtime). With
`backend: openvino` (or `auto` when OpenVINO is installed) a `.pt` file is exported once per
input shape into the cache and reused: on our 2-core CPUs OpenVINO runs YOLO11n-pose at
1280 px ~5x faster than PyTorch with the same boxes (benchmarks/tracking.py).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

from smarttrace.assets import cache_dir, resolve, sha256_of
from smarttrace.config import DetectorConfig
from smarttrace.errors import AssetError
from tasks.detections import Detections
from tasks.quantize_detector import (
    CalibrationError,
    calibration_fingerprint,
    export_is_valid,
    quantize_export,
    sample_calibration_frames,
)

log = logging.getLogger("smarttrace.detect")
PERSON_CLASS = 0  # COCO class id of "person"
MODEL_STRIDE = 32  # YOLO input sides must be multiples of this
_EXPORT_LOCK = threading.Lock()
# OpenVINO's Python binding initialises numpy's C API lazily through pybind11's gil_safe_call_once; two
# camera threads making their FIRST inference at the same moment deadlock there (seen in CI: both threads
# parked in pyopenvino's call_once, the flow hung). The first inference of the process is serialised; after
# it the API is initialised for good and cameras infer in parallel.
_FIRST_INFERENCE_LOCK = threading.Lock()
_first_inference_done = threading.Event()


def backend_of(weights: Path) -> str:
    """Runtime implied by a weights path's suffix."""
    if weights.name.endswith("_openvino_model"):
        return "openvino"
    if weights.suffix == ".onnx":
        return "onnx"
    return "torch"


def input_shape(frame_hw: tuple[int, int], imgsz: int) -> tuple[int, int]:
    """Letterboxed network input (h, w): long side `imgsz`, short side rounded up to the stride."""
    height, width = frame_hw
    ratio = imgsz / max(height, width)
    return (
        math.ceil(height * ratio / MODEL_STRIDE) * MODEL_STRIDE,
        math.ceil(width * ratio / MODEL_STRIDE) * MODEL_STRIDE,
    )


def choose_backend(requested: str, weights: Path) -> str:
    """Resolve `auto`: OpenVINO when installed and the weights are a PyTorch file."""
    implied = backend_of(weights)
    if implied != "torch":
        return implied
    if requested == "auto":
        return "openvino" if importlib.util.find_spec("openvino") else "torch"
    return requested


def export_openvino(weights: Path, shape: tuple[int, int]) -> Path:
    """Export `weights` to OpenVINO for one input shape, cached by content hash and shape.

    Exported in a private temp folder (the model folder may be read-only and other cameras
    may export concurrently), then published by rename.
    """
    target = cache_dir() / "exports" / f"{weights.stem}-{sha256_of(weights)[:12]}-{shape[0]}x{shape[1]}_openvino_model"
    if target.is_dir():
        return target
    from ultralytics import YOLO

    with _EXPORT_LOCK:
        if target.is_dir():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".export-"))
        try:
            shutil.copy(weights, work / weights.name)
            log.info("exporting %s to OpenVINO at %dx%d (once, cached in %s)", weights.name, *shape, target)
            exported = Path(YOLO(str(work / weights.name)).export(format="openvino", imgsz=shape, verbose=False))
            os.replace(exported, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def export_openvino_int8(
    weights: Path, shape: tuple[int, int], videos: Sequence[Path], frames_wanted: int, min_frames: int
) -> Path:
    """INT8 export calibrated on `frames_wanted` frames of `videos`, cached by weights + shape + calibration set.

    Raises CalibrationError when fewer than `min_frames` frames can be read. A cached export whose files
    no longer match their manifest (truncated copy, disk error) is rebuilt.
    """
    fp32 = export_openvino(weights, shape)
    try:
        frames = sample_calibration_frames(list(videos), frames_wanted)
    except cv2.error as exc:
        raise CalibrationError(f"cannot read calibration frames from {', '.join(map(str, videos))}: {exc}") from exc
    if len(frames) < min_frames:
        raise CalibrationError(
            f"only {len(frames)} readable frames in {', '.join(map(str, videos)) or 'no video'} "
            f"(detector.min_calibration_frames is {min_frames})"
        )
    fingerprint = calibration_fingerprint(frames)[:12]
    target = cache_dir() / "exports" / (
        f"{weights.stem}-{sha256_of(weights)[:12]}-{shape[0]}x{shape[1]}-int8-{fingerprint}_openvino_model"
    )
    with _EXPORT_LOCK:
        if export_is_valid(target):
            return target
        if target.exists():
            log.warning("cached INT8 detector %s is corrupt or incomplete: rebuilding it", target)
        log.info("quantising %s to INT8 at %dx%d on %d frames of %d video(s) (once, cached in %s)",
                 weights.name, *shape, len(frames), len(videos), target)
        try:
            quantize_export(fp32, frames, shape, target)
        except (ImportError, RuntimeError, ValueError) as exc:  # nncf missing, or it rejected the model / data
            raise CalibrationError(f"NNCF quantisation of {fp32.name} failed: {exc}") from exc
    return target


class PersonDetector:
    """A YOLO model loaded from a verified local weights file, run frame by frame.

    The network is built on the first frame, when the frame size (and so the input shape of
    an exported model) is known.
    """

    def __init__(self, config: DetectorConfig, calibration_videos: Sequence[Path] = ()) -> None:
        self.config = config
        self.weights_path: Path = resolve(config.weights)
        self.backend = choose_backend(config.backend, self.weights_path)
        # The cameras' own videos: INT8 calibration frames are sampled from them (precision: int8).
        self.calibration_videos = list(calibration_videos)
        self.precision = "fp32"  # what is actually loaded; int8 only once its export succeeded
        if config.precision == "int8" and self.backend != "openvino":
            log.warning("detector.precision int8 needs the OpenVINO backend (backend is %s): using FP32", self.backend)
        # The inline loop's model and its input shape; each worker thread of `stream` has its own.
        self._inline = SimpleNamespace(model=None, shape=None)

    def _model_for(self, state: SimpleNamespace | threading.local, shape: tuple[int, int]):  # noqa: ANN202
        """The model in `state` for this input shape, (re)loaded when the shape changes (a new video size)."""
        if getattr(state, "shape", None) != shape:
            state.model, state.shape = self._new_model(self._model_path(shape)), shape
        return state.model

    def _model_path(self, shape: tuple[int, int]) -> Path:
        """The weights to load for this input shape: the (cached) OpenVINO export when that is the backend."""
        path = self.weights_path
        if self.backend == "openvino" and backend_of(path) == "torch":
            path = self._openvino_export(path, shape)
        return path

    @staticmethod
    def _new_model(path: Path):  # noqa: ANN205 - an ultralytics YOLO
        from ultralytics import YOLO

        task = "pose" if "pose" in path.name else None
        try:
            return YOLO(str(path), task=task)
        except Exception as exc:  # ultralytics raises many types for a bad file
            raise AssetError(f"detector weights {path} could not be loaded: {exc}") from exc

    def _openvino_export(self, weights: Path, shape: tuple[int, int]) -> Path:
        """The FP32 export, or the INT8 one when asked for and calibration works (else FP32, one warning)."""
        self.precision = "fp32"
        if self.config.precision != "int8":
            return export_openvino(weights, shape)
        try:
            path = export_openvino_int8(weights, shape, self.calibration_videos, self.config.calibration_frames,
                                        self.config.min_calibration_frames)
        except CalibrationError as exc:
            log.warning("detector.precision int8: calibration failed, using FP32: %s", exc)
            return export_openvino(weights, shape)
        self.precision = "int8"
        return path

    def __call__(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detect people in each frame; one Detections per frame, boxes in source pixels."""
        if not frames:
            return []
        shape = input_shape(frames[0].shape[:2], self.config.imgsz)
        results = self._predict(self._model_for(self._inline, shape), shape, frames)
        return [Detections.from_ultralytics(result) for result in results]

    def stream(self, frames: Iterable[tuple[int, np.ndarray]]) -> Iterator[tuple[int, np.ndarray, Detections, float]]:
        """(index, frame, detections, detector seconds) for each frame, in order.

        With `detector.workers` = 0 each frame is detected inline, between decoding and tracking. With
        N > 0, N worker threads (each with its own model: ultralytics predictors are not thread-safe)
        detect frames t+1.. while the caller tracks frame t; the boxes are the same either way.
        """
        workers = self.config.workers
        if workers <= 0:
            for index, frame in frames:
                started = time.perf_counter()
                detections = self([frame])[0]
                yield index, frame, detections, time.perf_counter() - started
            return
        local = threading.local()
        pending: deque = deque()
        source, error = iter(frames), None
        with ThreadPoolExecutor(workers, thread_name_prefix="detect") as pool:
            try:
                while True:
                    try:
                        index, frame = next(source)
                    except StopIteration:
                        break
                    except Exception as exc:  # noqa: BLE001 - re-raised below, after the frames read before it
                        error = exc
                        break
                    pending.append((index, frame, pool.submit(self._detect_in_worker, local, frame)))
                    if len(pending) > workers + 1:  # bounded look-ahead: a few frames in memory
                        index, frame, future = pending.popleft()
                        yield index, frame, *future.result()
                while pending:
                    index, frame, future = pending.popleft()
                    yield index, frame, *future.result()
            finally:  # the caller stopped early, or a detection failed: drop what is queued
                for *_, future in pending:
                    future.cancel()
        if error is not None:
            raise error

    def _detect_in_worker(self, local: threading.local, frame: np.ndarray) -> tuple[Detections, float]:
        """One frame on this worker thread's own model."""
        started = time.perf_counter()
        shape = input_shape(frame.shape[:2], self.config.imgsz)
        results = self._predict(self._model_for(local, shape), shape, [frame])
        return Detections.from_ultralytics(results[0]), time.perf_counter() - started

    def _predict(self, model, shape: tuple[int, int] | None, frames: Sequence[np.ndarray]) -> list:  # noqa: ANN001
        if not _first_inference_done.is_set():
            with _FIRST_INFERENCE_LOCK:
                results = self._predict_unlocked(model, shape, frames)
                _first_inference_done.set()
            return results
        return self._predict_unlocked(model, shape, frames)

    def _predict_unlocked(self, model, shape: tuple[int, int] | None, frames: Sequence[np.ndarray]) -> list:  # noqa: ANN001
        return model.predict(
            list(frames),
            imgsz=shape if self.backend != "torch" else self.config.imgsz,
            conf=self.config.conf,
            iou=self.config.iou,
            classes=[PERSON_CLASS],
            device=self.config.device,
            verbose=False,
        )
