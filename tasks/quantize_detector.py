"""INT8 post-training quantisation of the OpenVINO detector (NNCF), calibrated on the user's own video.

Why: the 1280-px detector is ~90 % of a frame's time on our 2-core CPUs. INT8 weights and
activations run it faster; calibrating on frames of the cameras being processed (not COCO) keeps
the activation ranges those cameras produce. The export is cached like the FP32 one, keyed by the
weights' sha256, the input shape and a fingerprint of the calibration frames, and published by
rename with a manifest of its files' sha256, so a corrupt cached export is detected and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from smarttrace.errors import SmartTraceError

log = logging.getLogger("smarttrace.detect")
MANIFEST = "smarttrace_int8.json"
LETTERBOX_PAD = 114  # ultralytics' letterbox grey, so calibration sees what inference sees


class CalibrationError(SmartTraceError):
    """Too few frames, or no readable video, to calibrate the INT8 detector."""


def sample_calibration_frames(videos: Sequence[Path], count: int) -> list[np.ndarray]:
    """Up to `count` BGR frames spread evenly over all the videos (by their header frame counts)."""
    lengths = []
    for path in videos:
        capture = cv2.VideoCapture(str(path))
        lengths.append(int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if capture.isOpened() else 0)
        capture.release()
    total = sum(lengths)
    if total <= 0:
        return []
    wanted = set(np.linspace(0, total - 1, num=min(count, total)).round().astype(int).tolist())
    frames, offset = [], 0
    for path, length in zip(videos, lengths, strict=True):
        local = sorted(i - offset for i in wanted if offset <= i < offset + length)
        offset += length
        if not local:
            continue
        capture = cv2.VideoCapture(str(path))
        index = 0
        for target in local:  # sequential grab is exact (seeking by frame number is not, in every codec)
            while index < target and capture.grab():
                index += 1
            ok, frame = capture.read()
            index += 1
            if not ok or frame is None:
                break
            frames.append(frame)
        capture.release()
    return frames


def letterbox(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The detector's input for one BGR frame, uint8: RGB, resized to fit `shape` (h, w), padded, NCHW.

    Kept as uint8 (a quarter of float32's memory) until NNCF asks for it: 300 calibration inputs at
    960x1280 are 1.1 GB as uint8, 4.4 GB as float32.
    """
    height, width = frame.shape[:2]
    ratio = min(shape[0] / height, shape[1] / width)
    new_h, new_w = round(height * ratio), round(width * ratio)
    resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, left = (shape[0] - new_h) // 2, (shape[1] - new_w) // 2
    canvas = np.full((shape[0], shape[1], 3), LETTERBOX_PAD, np.uint8)
    canvas[top:top + new_h, left:left + new_w] = resized
    return np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1))[None]


def _to_network_input(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0


def calibration_fingerprint(frames: Sequence[np.ndarray]) -> str:
    """sha256 of the calibration frames' pixels: the same frames give the same cached export."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(np.ascontiguousarray(frame[::4, ::4]).tobytes())
    return digest.hexdigest()


def _file_hashes(folder: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.iterdir())
        if path.suffix in (".xml", ".bin", ".yaml")
    }


def export_is_valid(folder: Path) -> bool:
    """True when every file the manifest lists is present with its recorded sha256."""
    manifest = folder / MANIFEST
    try:
        recorded = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(recorded) and _file_hashes(folder) == recorded


def _head_ignored_scope(model):  # noqa: ANN001, ANN202 - openvino Model -> nncf.IgnoredScope
    """Keep the detection head (box/keypoint decoding, sigmoids) in float, as ultralytics' own INT8 export does:
    quantising the decoded coordinates costs box accuracy for no measurable speed."""
    import nncf

    operations = model.get_ordered_ops()
    sigmoids = [op.get_friendly_name() for op in operations if op.get_type_name() == "Sigmoid"]
    if not sigmoids:
        return None
    head = sigmoids[-1].split("/", 1)[0]
    names = [
        op.get_friendly_name() for op in operations
        if op.get_type_name() == "Sigmoid" or op.get_friendly_name().startswith((f"{head}/", f"{head}.dfl"))
    ]
    return nncf.IgnoredScope(names=names, validate=False)


def quantize_export(fp32_folder: Path, frames: Sequence[np.ndarray], shape: tuple[int, int], target: Path) -> Path:
    """Quantise an FP32 OpenVINO export folder to `target` (published by rename, with a sha256 manifest)."""
    import nncf
    import openvino as ov

    xml = next(fp32_folder.glob("*.xml"))
    model = ov.Core().read_model(str(xml))
    inputs = [letterbox(frame, shape) for frame in frames]
    quantized = nncf.quantize(
        model, nncf.Dataset(inputs, _to_network_input), preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(inputs), ignored_scope=_head_ignored_scope(model),
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".int8-"))
    try:
        ov.save_model(quantized, str(work / xml.name), compress_to_fp16=False)
        for extra in fp32_folder.glob("*.yaml"):  # ultralytics reads names, task, imgsz from metadata.yaml
            shutil.copy(extra, work / extra.name)
        (work / MANIFEST).write_text(json.dumps({"files": _file_hashes(work), "calibration_frames": len(inputs)}))
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


__all__ = [
    "CalibrationError", "calibration_fingerprint", "export_is_valid", "letterbox", "quantize_export",
    "sample_calibration_frames",
]
