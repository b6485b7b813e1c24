"""Stage 1 for one camera: decode -> detect (keyframes; optical flow between) -> track -> clean up.

Plain function, no Prefect: the flow wraps it in a task; tests and benchmarks call it
directly. Returns the tracks table (schema `storage.schemas.TRACKS_SCHEMA`) and timings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from smarttrace.config import CameraConfig, DetectorConfig, PostprocessConfig, TrackerConfig
from smarttrace.progress import progress_for
from storage.schemas import TRACKS_SCHEMA
from tasks.crop_sampler import CropSampler
from tasks.detect import PersonDetector
from tasks.detections import Detections
from tasks.embed_reid import ReidEmbedder
from tasks.keyframes import KeyframeItem, KeyframePlan, keyframe_stream
from tasks.link_tracklets import LinkParams, TrackletEnds, link_tracklets
from tasks.postprocess_tracks import drop_short_tracks, drop_small_boxes, interpolate_gaps
from tasks.track import build_tracker, tracker_config_for, update_tracker
from tasks.video import CameraDecode, camera_frame_count, camera_videos, iter_camera_frames

log = logging.getLogger("smarttrace.track")
PROGRESS_EVERY_FRAMES = 100


@dataclass
class TrackingRun:
    """What one camera's tracking produced, with where the time went (seconds)."""

    table: pa.Table
    frames: int = 0
    detected_frames: int = 0
    partial: bool = False
    partial_reason: str = ""
    seconds: dict[str, float] = field(
        default_factory=lambda: {"decode": 0.0, "detect": 0.0, "flow": 0.0, "track": 0.0, "link": 0.0}
    )
    links: int = 0
    videos: list[Path] = field(default_factory=list)
    wall_s: float = 0.0  # the whole of `track_camera` (the steps above overlap when the detector runs ahead)


def _rows_for_frame(frame_index: int, tracked: Detections) -> list[dict]:
    """Rows of the tracks table for one frame's tracked detections."""
    assert tracked.tracker_id is not None
    return [
        {
            "frame_index": frame_index,
            "track_id": int(tracked.tracker_id[i]),
            "x1": float(tracked.xyxy[i, 0]),
            "y1": float(tracked.xyxy[i, 1]),
            "x2": float(tracked.xyxy[i, 2]),
            "y2": float(tracked.xyxy[i, 3]),
            "confidence": float(tracked.confidence[i]),
            "interpolated": False,
            "keypoints": tracked.keypoints[i].reshape(-1),
        }
        for i in range(len(tracked))
    ]


def _to_table(rows: pd.DataFrame, camera: CameraConfig) -> pa.Table:
    """Attach camera, times and wall-clock timestamps; cast to the tracks schema."""
    rows = rows.copy()
    rows["camera_id"] = camera.id
    rows["time_s"] = rows["frame_index"].astype(np.float64) / camera.fps
    start = pd.Timestamp(camera.start_time).tz_convert("UTC")
    rows["timestamp"] = (start + pd.to_timedelta(rows["time_s"], unit="s")).dt.round("ms")
    rows["keypoints"] = [None if k is None else np.asarray(k, np.float32) for k in rows["keypoints"]]
    return pa.Table.from_pandas(rows[TRACKS_SCHEMA.names], schema=TRACKS_SCHEMA, preserve_index=False)


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "frame_index": pd.Series(dtype="int64"),
            "track_id": pd.Series(dtype="int64"),
            **{c: pd.Series(dtype="float64") for c in ("x1", "y1", "x2", "y2", "confidence")},
            "interpolated": pd.Series(dtype="bool"),
            "keypoints": pd.Series(dtype="object"),
        }
    )


def _tracklet_ends(rows: pd.DataFrame, sampler: CropSampler, embedder: ReidEmbedder) -> list[TrackletEnds]:
    """Ends and mean appearance of each track, from its detected (not interpolated) boxes."""
    ends = []
    for track_id, track in rows.loc[~rows["interpolated"]].groupby("track_id"):
        track = track.sort_values("frame_index")
        first, last = track.iloc[0], track.iloc[-1]
        vectors = embedder(sampler.sample(int(track_id)))
        mean = vectors.mean(axis=0) if len(vectors) else np.zeros(embedder.dim, np.float32)
        norm = float(np.linalg.norm(mean))
        ends.append(
            TrackletEnds(
                track_id=int(track_id),
                first_frame=int(first.frame_index),
                last_frame=int(last.frame_index),
                first_foot=np.array([(first.x1 + first.x2) / 2, first.y2]),
                last_foot=np.array([(last.x1 + last.x2) / 2, last.y2]),
                first_height=float(first.y2 - first.y1),
                last_height=float(last.y2 - last.y1),
                embedding=mean / norm if norm > 0 else mean,
            )
        )
    return ends


def _link(rows: pd.DataFrame, sampler: CropSampler, camera: CameraConfig, postprocess: PostprocessConfig) -> int:
    """Relabel linked tracklets in place with their chain's first id; returns links made."""
    if rows.empty:
        return 0
    params = LinkParams(
        max_gap_s=postprocess.link_max_gap_s,
        max_speed_heights_per_s=postprocess.link_max_speed_heights_per_s,
        min_similarity=postprocess.link_min_similarity,
    )
    embedder = ReidEmbedder(postprocess.link_reid_weights)
    mapping = link_tracklets(_tracklet_ends(rows, sampler, embedder), camera.fps, params)
    rows["track_id"] = rows["track_id"].map(mapping).fillna(rows["track_id"]).astype(np.int64)
    return sum(1 for source, head in mapping.items() if source != head)


def _frames_to_detect(frames: Iterator[tuple[int, np.ndarray]], run: TrackingRun, first_frame: int,
                      stride: int) -> Iterator[tuple[int, np.ndarray]]:
    """The decoded frames the detector sees (every `stride`-th), with decode time added to `run`."""
    while True:
        started = time.perf_counter()
        item = next(frames, None)
        run.seconds["decode"] += time.perf_counter() - started
        if item is None:
            return
        if (item[0] - first_frame) % stride == 0:
            yield item


def _frame_stream(detector: PersonDetector, frames: Iterator[tuple[int, np.ndarray]], run: TrackingRun,
                  first_frame: int, config: DetectorConfig) -> Iterator[KeyframeItem]:  # fmt: skip
    """The frames the tracker sees, with their boxes: every frame ("flow", or stride 1), or keyframes only ("skip")."""
    if config.stride > 1 and config.between == "flow":
        plan = KeyframePlan(config.stride, config.redetect_iou)
        decoded = _frames_to_detect(frames, run, first_frame, 1)
        yield from keyframe_stream(decoded, lambda f: detector([f])[0], plan, lookahead=config.workers > 0)
        return
    selected = _frames_to_detect(frames, run, first_frame, config.stride)
    for index, frame, detections, detect_s in detector.stream(selected):
        yield KeyframeItem(index, frame, detections, True, detect_s, 0.0)


def tracker_frame_rate(camera: CameraConfig, config: DetectorConfig) -> float:
    """Frames per second the tracker is fed: all of them, unless keyframes are fed alone ("skip")."""
    return camera.fps / config.stride if config.between == "skip" else camera.fps


def track_camera(
    camera: CameraConfig,
    detector_config: DetectorConfig,
    tracker_config: TrackerConfig,
    postprocess: PostprocessConfig,
    detector: PersonDetector | None = None,
) -> TrackingRun:
    """Track the people of one camera over all its video files (in order, one timeline)."""
    detector = detector or PersonDetector(detector_config, calibration_videos=camera_videos(camera.video))
    stride = detector_config.stride
    tracker_config = tracker_config_for(tracker_config, camera.tracker_params)
    tracker = build_tracker(tracker_config, frame_rate=tracker_frame_rate(camera, detector_config),
                            owner=f"camera {camera.id}")  # fmt: skip
    run = TrackingRun(table=pa.table({}))
    rows: list[dict] = []
    sampler = CropSampler(postprocess.link_crops_per_track, postprocess.link_min_crop_height)
    decode = CameraDecode()
    frames = iter_camera_frames(camera.video, camera.id, decode, camera.first_frame, camera.max_frames)
    progress = progress_for(f"camera {camera.id}, track", camera_frame_count(camera.video, camera.first_frame,
                                                                              camera.max_frames))
    started = time.perf_counter()
    for item in _frame_stream(detector, frames, run, camera.first_frame, detector_config):
        t2 = time.perf_counter()
        tracked = update_tracker(tracker, item.detections, item.frame)
        run.seconds["detect"] += item.detect_s
        run.seconds["flow"] += item.flow_s
        run.seconds["track"] += time.perf_counter() - t2
        if item.detected:  # flow boxes steer the tracker; only measured boxes become rows (and crops)
            run.detected_frames += 1
            rows.extend(_rows_for_frame(item.index, tracked))
            if postprocess.link:
                for box, track_id in zip(tracked.xyxy, tracked.tracker_id, strict=True):
                    sampler.offer(int(track_id), item.index, box, item.frame)
        progress.update(item.index + 1 - camera.first_frame - progress.done, boxes=len(rows))
        if (item.index + 1 - camera.first_frame) % PROGRESS_EVERY_FRAMES == 0:
            log.debug("camera %s: %s", camera.id, progress.line())
    progress.close()
    run.videos = decode.videos or []
    if decode.partial:
        run.partial, run.partial_reason = True, decode.reason
        log.warning("camera %s: %s", camera.id, run.partial_reason)
    run.frames = max(0, decode.frames - camera.first_frame)  # frames processed
    last_frame = decode.frames
    table = pd.DataFrame(rows) if rows else _empty_rows()
    table = drop_small_boxes(table, postprocess.min_box_height)
    table = drop_short_tracks(table, postprocess.min_track_detections)
    if postprocess.link:
        t3 = time.perf_counter()
        run.links = _link(table, sampler, camera, postprocess)
        run.seconds["link"] += time.perf_counter() - t3
    # With a stride, gaps of `stride` frames are the normal case and always filled.
    table = interpolate_gaps(table, max(postprocess.max_gap_frames, stride - 1))
    table = table[table["frame_index"] < last_frame] if not table.empty else table
    run.table = _to_table(table, camera)
    elapsed = run.wall_s = time.perf_counter() - started
    log.info(
        "camera %s: done, %d frames in %.1f s (%.2f frames/s), %d links, %d tracks, %d boxes",
        camera.id, run.frames, elapsed, run.frames / max(elapsed, 1e-9), run.links,
        len(set(run.table.column("track_id").to_pylist())), run.table.num_rows,
    )
    return run


__all__ = ["TrackingRun", "track_camera"]
