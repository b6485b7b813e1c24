"""Stage 2 for one camera: tracks -> one row per tracklet with crops, embeddings, attributes, colours.

Decodes the camera's video once more, but only cuts the K selected crops per tracklet, so the
cost is decoding (cheap) plus a few hundred small OSNet forward passes, not detection.

Attributes (gender, age, garments, bags, colours: `tasks.attribute_vocab`) come from the PETA-trained
attribute model when one is given: its per-crop probabilities are averaged per tracklet with the same
crop-quality weights as the ReID vector, so a sharp, unoccluded crop counts more than a blurred one.
The pose-region colour rules (`tasks.attributes`) still run, but only as the text-search fallback for
tracklets embedded without the model and the "clothes" line of the person page: mixed into the
model's colour probabilities they added nothing measurable (PETA test split, benchmarks/
attributes_text.py: text mAP 0.356 model alone, 0.362 mixed, 0.159 colour rules alone).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa

from smarttrace.config import CameraConfig, EmbedConfig
from storage.schemas import ATTRIBUTE_VOCABULARY, TRACKLETS_SCHEMA
from tasks.attributes import describe_person
from tasks.detections import crop_xyxy
from tasks.embed_clip import ClipEmbedder
from tasks.embed_reid import ReidEmbedder
from tasks.select_crops import crop_quality, select_crops
from tasks.video import CameraDecode, camera_videos, iter_camera_frames, open_video

if TYPE_CHECKING:
    from tasks.attribute_model import AttributeModel

log = logging.getLogger("smarttrace.embed")
FOOT_PATH_POINTS = 32  # foot-point samples kept per tracklet for the path summary


@dataclass
class EmbedRun:
    """One camera's tracklets table and what the stage did."""

    table: pa.Table
    crops: int = 0
    seconds: dict[str, float] = field(
        default_factory=lambda: {"decode": 0.0, "reid": 0.0, "attributes": 0.0, "clip": 0.0, "other": 0.0}
    )


def _frame_size(camera: CameraConfig) -> tuple[int, int]:
    capture, info = open_video(camera_videos(camera.video)[0], camera.id)
    capture.release()
    return info.height, info.width


def _cut_crops(camera: CameraConfig, chosen: pd.DataFrame, run: EmbedRun) -> list[np.ndarray]:
    """Decode the camera once and cut the chosen boxes (clipped to the frame), in `chosen` order."""
    wanted: dict[int, list[int]] = {}
    for position, frame_index in enumerate(chosen["frame_index"].to_numpy()):
        wanted.setdefault(int(frame_index), []).append(position)
    crops: list[np.ndarray | None] = [None] * len(chosen)
    boxes = chosen[["x1", "y1", "x2", "y2"]].to_numpy()
    last = max(wanted) if wanted else -1
    started = time.perf_counter()
    for frame_index, frame in iter_camera_frames(camera.video, camera.id, CameraDecode(), camera.first_frame,
                                                 camera.max_frames):
        for position in wanted.get(frame_index, []):
            crops[position] = crop_xyxy(frame, boxes[position])
        if frame_index >= last:
            break
    run.seconds["decode"] += time.perf_counter() - started
    missing = [i for i, c in enumerate(crops) if c is None or c.size == 0]
    if missing:
        raise RuntimeError(f"camera '{camera.id}': {len(missing)} selected crops lie beyond the decodable video")
    return crops  # type: ignore[return-value]


def _write_thumbnail(crop: np.ndarray, path: Path, height: int) -> None:
    """Resize to `height` px and publish by rename (a reader never sees half a JPEG)."""
    scale = height / max(crop.shape[0], 1)
    thumb = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".jpg.tmp")
    os.close(fd)
    try:
        ok, encoded = cv2.imencode(".jpg", thumb, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise RuntimeError(f"cannot encode thumbnail {path}")
        Path(tmp).write_bytes(encoded.tobytes())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _foot_path(rows: pd.DataFrame) -> list[float]:
    rows = rows.sort_values("frame_index")
    index = np.linspace(0, len(rows) - 1, min(len(rows), FOOT_PATH_POINTS)).round().astype(int)
    feet = np.c_[((rows["x1"] + rows["x2"]) / 2).to_numpy()[index], rows["y2"].to_numpy()[index]]
    return feet.astype(np.float32).reshape(-1).tolist()


def _weighted_mean(vectors: np.ndarray, weights: np.ndarray) -> list[float] | None:
    if len(vectors) == 0:
        return None
    mean = (vectors * weights[:, None]).sum(axis=0) / max(weights.sum(), 1e-9)
    return (mean / max(np.linalg.norm(mean), 1e-9)).astype(np.float32).tolist()


def align_attributes(probs: np.ndarray, model_names: tuple[str, ...] | list[str]) -> np.ndarray:
    """(n, len(model_names)) model outputs -> (n, len(ATTRIBUTE_VOCABULARY)), NaN where the model has no
    output for a name. Names the vocabulary does not know are dropped (they cannot be stored)."""
    probs = np.asarray(probs, dtype=np.float32).reshape(len(probs), -1)
    if probs.shape[1] != len(model_names):
        raise ValueError(f"attribute model gave {probs.shape[1]} outputs for {len(model_names)} names")
    if tuple(model_names) == ATTRIBUTE_VOCABULARY:
        return probs
    out = np.full((len(probs), len(ATTRIBUTE_VOCABULARY)), np.nan, dtype=np.float32)
    position = {name: i for i, name in enumerate(ATTRIBUTE_VOCABULARY)}
    for j, name in enumerate(model_names):
        if name in position:
            out[:, position[name]] = probs[:, j]
    return out


def _weighted_probabilities(probs: np.ndarray, weights: np.ndarray) -> list[float] | None:
    """Quality-weighted mean of per-crop probabilities (not re-normalised: they stay probabilities)."""
    if len(probs) == 0:
        return None
    w = np.asarray(weights, dtype=np.float64)
    w = w if w.sum() > 1e-9 else np.ones_like(w)
    return ((probs.astype(np.float64) * w[:, None]).sum(axis=0) / w.sum()).astype(np.float32).tolist()


def _empty_table() -> pa.Table:
    return TRACKLETS_SCHEMA.empty_table()


def embed_camera(
    camera: CameraConfig,
    tracks: pd.DataFrame,
    config: EmbedConfig,
    run_root: Path,
    reid: ReidEmbedder,
    clip: ClipEmbedder | None,
    attributes: AttributeModel | None = None,
) -> EmbedRun:
    """Build the tracklets table of one camera; thumbnails go under `run_root/thumbnails/<camera>/`.

    `attributes`: the attribute model, or None (no model file): `attribute_probs` stays null.
    """
    run = EmbedRun(table=_empty_table())
    if tracks.empty:
        log.info("camera %s: no tracks, no tracklets (nobody was seen)", camera.id)
        return run
    started = time.perf_counter()
    quality = crop_quality(tracks, _frame_size(camera), config.min_crop_height, config.max_overlap_iou)
    chosen = select_crops(tracks, quality, config.crops_per_tracklet).reset_index(drop=True)
    crops = _cut_crops(camera, chosen, run) if len(chosen) else []
    run.crops = len(crops)
    t0 = time.perf_counter()
    attribute_logits = None
    # One conv1-conv3 pass for both models when the attribute model reads the ReID trunk (it checks).
    if attributes is not None and crops and attributes.shares_trunk_with(reid):
        reid_vectors, attribute_logits, head_s = reid.embed_sharing_trunk(crops, attributes.logits_from_trunk,
                                                                          attributes.shared_variant)  # fmt: skip
        run.seconds["attributes"] += head_s
        t0 += head_s
    else:
        reid_vectors = reid(crops)
    camera_vectors = None
    if config.reid_camera_bn and len(crops) >= config.reid_camera_bn_min_crops:
        # the camera's own BN statistics, plus body-part stripes: for cross-camera matching
        camera_vectors = reid.embed_camera_bn(crops, config.reid_camera_parts, config.reid_camera_parts_weight)
    run.seconds["reid"] += time.perf_counter() - t0
    attribute_probs = None
    if attributes is not None and crops:
        t0 = time.perf_counter()
        if attribute_logits is None:
            attribute_logits = attributes.logits(crops)
        attribute_probs = align_attributes(attributes.probabilities(attribute_logits, config.attribute_calibrated),
                                           tuple(attributes.names))
        run.seconds["attributes"] += time.perf_counter() - t0
    video_path = str(camera_videos(camera.video)[0])
    records = []
    for tracklet_id, rows in tracks.groupby("track_id"):
        positions = np.flatnonzero(chosen["track_id"].to_numpy() == tracklet_id)
        records.append(
            _tracklet_record(camera, int(tracklet_id), rows, chosen, positions, crops, reid_vectors, clip, config,
                             run_root, video_path, run, attribute_probs, camera_vectors)
        )
    run.table = pa.Table.from_pylist(records, schema=TRACKLETS_SCHEMA)
    run.seconds["other"] += time.perf_counter() - started - sum(v for k, v in run.seconds.items() if k != "other")
    log.info(
        "camera %s: %d tracklets, %d crops embedded (%.0f crops/s ReID)",
        camera.id, run.table.num_rows, run.crops, run.crops / max(run.seconds["reid"], 1e-9),
    )
    return run


def _tracklet_record(
    camera: CameraConfig,
    tracklet_id: int,
    rows: pd.DataFrame,
    chosen: pd.DataFrame,
    positions: np.ndarray,
    crops: list[np.ndarray],
    reid_vectors: np.ndarray,
    clip: ClipEmbedder | None,
    config: EmbedConfig,
    run_root: Path,
    video_path: str,
    run: EmbedRun,
    attribute_probs: np.ndarray | None = None,
    camera_vectors: np.ndarray | None = None,
) -> dict:
    """One row of the tracklets table (`camera_vectors`: the crops under the camera's own BN statistics)."""
    detected = rows.loc[~rows["interpolated"]]
    record = {
        "camera_id": camera.id,
        "tracklet_id": tracklet_id,
        "start_frame": int(rows["frame_index"].min()),
        "end_frame": int(rows["frame_index"].max()),
        "start_time_s": float(rows["time_s"].min()),
        "end_time_s": float(rows["time_s"].max()),
        "start_timestamp": rows["timestamp"].min(),
        "end_timestamp": rows["timestamp"].max(),
        "num_boxes": len(detected),
        "mean_box_height": float((detected["y2"] - detected["y1"]).mean()) if len(detected) else 0.0,
        "mean_box_width": float((detected["x2"] - detected["x1"]).mean()) if len(detected) else 0.0,
        "foot_path": _foot_path(rows),
        "video_path": video_path,
        "thumbnail_path": None,
        "best_frame": None,
        "num_crops": len(positions),
        "reid_embedding": None,
        "reid_crop_embeddings": None,
        "reid_camera_embedding": None,
        "clip_embedding": None,
        "upper_color": None,
        "upper_color_conf": None,
        "lower_color": None,
        "lower_color_conf": None,
        "attribute_probs": None,
    }
    if len(positions) == 0:  # every box too small, cut or overlapped: kept, but not searchable by look
        return record
    quality = chosen["quality"].to_numpy()[positions]
    best = positions[int(np.argmax(quality))]
    thumbnail = Path("thumbnails") / camera.id / f"{tracklet_id}.jpg"
    _write_thumbnail(crops[best], run_root / thumbnail, config.thumbnail_height)
    record.update(
        thumbnail_path=str(thumbnail),
        best_frame=int(chosen["frame_index"].iloc[best]),
        reid_embedding=_weighted_mean(reid_vectors[positions], quality),
        reid_crop_embeddings=reid_vectors[positions].tolist(),
        reid_camera_embedding=None if camera_vectors is None else _weighted_mean(camera_vectors[positions], quality),
        attribute_probs=None if attribute_probs is None else _weighted_probabilities(attribute_probs[positions],
                                                                                     quality),
    )
    if clip is not None:
        top = positions[np.argsort(-quality)[: config.clip_crops_per_tracklet]]
        t0 = time.perf_counter()
        vectors = clip.embed_images([crops[i] for i in top])
        run.seconds["clip"] += time.perf_counter() - t0
        record["clip_embedding"] = _weighted_mean(vectors, np.ones(len(vectors)))
    attributes = describe_person(
        [crops[i] for i in positions],
        [chosen[["x1", "y1", "x2", "y2"]].to_numpy()[i] for i in positions],
        [np.asarray(chosen["keypoints"].iloc[i], np.float32).reshape(17, 3) for i in positions],
    )
    record.update(
        upper_color=attributes.upper_color,
        upper_color_conf=attributes.upper_color_conf,
        lower_color=attributes.lower_color,
        lower_color_conf=attributes.lower_color_conf,
    )
    return record
