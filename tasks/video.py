"""Decoding camera video into frames, with errors that name the camera and the file.

Why a wrapper around cv2.VideoCapture: OpenCV reports nothing useful for a missing,
corrupt or empty file (it just returns no frames), and a file that breaks mid-way looks like
a short video. We turn those into explicit errors or an explicit `partial` flag.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from smarttrace.assets import resolve
from smarttrace.errors import VideoError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".webm")


@dataclass
class VideoInfo:
    """What the container says about a video. `header_fps` is often wrong; config has the real rate."""

    path: Path
    width: int
    height: int
    header_fps: float
    header_frames: int


def camera_videos(video: str) -> list[Path]:
    """Resolve a camera's `video` setting: "sample:<asset>" (verified download/cache) or a path."""
    if video.startswith("sample:"):
        return [resolve(video.removeprefix("sample:"))]
    return list_videos(Path(video))


def existing_videos(video: str, camera_id: str) -> list[Path]:
    """The camera's video files, each checked to exist and be non-empty (errors name camera + file)."""
    paths = camera_videos(video)
    for path in paths:
        _check_file(path, camera_id)
    return paths


def _check_file(path: Path, camera_id: str) -> None:
    """Missing and empty files get their own messages: OpenCV says nothing useful about either."""
    if not path.exists():
        raise VideoError(f"camera '{camera_id}': video not found: {path}")
    if path.stat().st_size == 0:
        raise VideoError(f"camera '{camera_id}': cannot open {path}: file is empty")


def list_videos(video: Path) -> list[Path]:
    """A camera's video files: the file itself, or a folder's videos in name order."""
    if not video.exists():
        return [video]  # reported as "video not found" by whoever opens it
    if video.is_dir():
        files = sorted(p for p in video.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if not files:
            raise VideoError(f"camera folder {video} holds no video files ({', '.join(VIDEO_SUFFIXES)})")
        return files
    return [video]


def open_video(path: Path, camera_id: str) -> tuple[cv2.VideoCapture, VideoInfo]:
    """Open a video, failing with a message naming camera and file when it cannot be decoded."""
    _check_file(path, camera_id)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"camera '{camera_id}': cannot open {path}: not a video OpenCV can decode")
    info = VideoInfo(
        path=path,
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        header_fps=float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
        header_frames=int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
    )
    return capture, info


@dataclass
class DecodeReport:
    """How decoding went: frames read, and whether the file ended before its header said."""

    frames: int = 0
    partial: bool = False
    reason: str = ""


def iter_frames(
    path: Path, camera_id: str, report: DecodeReport, max_frames: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame_index, BGR frame) from 0; sets `report.partial` if the file breaks early.

    A file that decodes zero frames raises VideoError: there is nothing to track and the
    user must know rather than get an empty artifact that looks like "nobody walked by".
    """
    capture, info = open_video(path, camera_id)
    try:
        index = 0
        while max_frames is None or index < max_frames:
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            yield index, frame
            index += 1
        report.frames = index
    finally:
        capture.release()
    if index == 0:
        raise VideoError(f"camera '{camera_id}': {path} has no decodable frames (empty or corrupt video)")
    expected = info.header_frames if max_frames is None else min(info.header_frames, max_frames)
    # Headers of some containers overstate by a frame or two; a real cut loses many more.
    if expected > 0 and index < expected - max(2, int(0.01 * expected)):
        report.partial = True
        report.reason = f"decoded {index} of {expected} frames the header announces: file truncated or corrupt"


@dataclass
class CameraDecode:
    """Decoding of a whole camera (all its files): frames read, files used, partial files."""

    frames: int = 0  # frames on the camera timeline up to the last one decoded
    videos: list[Path] | None = None
    partial: bool = False
    reason: str = ""


def iter_camera_frames(
    video: str, camera_id: str, report: CameraDecode, first_frame: int = 0, max_frames: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame_index, frame) on the camera's timeline: its files back to back, in name order.

    Only frames in [first_frame, first_frame + max_frames) are yielded, but indices stay those
    of the timeline, so they line up with ground truth and with other stages' artifacts.
    """
    end = None if max_frames is None else first_frame + max_frames
    report.videos = []
    paths = camera_videos(video)
    bad: list[str] = []
    offset = 0
    for path in paths:
        if end is not None and offset >= end:
            break
        file_report = DecodeReport()
        limit = None if end is None else end - offset
        try:
            for local_index, frame in iter_frames(path, camera_id, file_report, max_frames=limit):
                if offset + local_index >= first_frame:
                    yield offset + local_index, frame
        except VideoError as exc:
            if len(paths) == 1:
                raise
            bad.append(str(exc))  # one broken recording must not lose the camera's other files
            continue
        report.videos.append(path)
        offset += file_report.frames
        if file_report.partial:
            report.partial, report.reason = True, f"{path}: {file_report.reason}"
    if bad and not report.videos:
        raise VideoError(f"camera '{camera_id}': no readable video in {video}: " + "; ".join(bad))
    if bad:
        report.partial = True
        report.reason = "; ".join(filter(None, [report.reason, *(f"skipped {b}" for b in bad)]))
    report.frames = offset


def camera_frame_count(video: str, first_frame: int = 0, max_frames: int | None = None) -> int | None:
    """Frames a camera will yield, from the container headers (for progress and ETA only).

    None when a header gives no count or a file cannot be opened: decoding reports those properly.
    """
    total = 0
    for path in camera_videos(video):
        capture = cv2.VideoCapture(str(path))
        try:
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if capture.isOpened() else 0
        finally:
            capture.release()
        if count <= 0:
            return None
        total += count
    total = max(0, total - first_frame)
    return min(total, max_frames) if max_frames is not None else total
