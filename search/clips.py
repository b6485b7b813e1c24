"""Video clips of a tracklet: its frames with its box drawn, as browser-playable H.264 MP4.

Why PyAV: OpenCV's bundled ffmpeg has no H.264 encoder, and browsers play H.264 (yuv420p) only.
Clips are cached per (camera, tracklet, tracks artifact version) and written to a temp file
renamed into place, so two front ends asking at once never see half a file.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from search.errors import SearchInputError
from search.results import TrackletHit
from smarttrace.config import CameraConfig
from storage.layout import RunLayout

log = logging.getLogger("smarttrace.search")

CLIP_MAX_WIDTH = 960  # pixels; larger frames are scaled down: a dashboard tile is smaller
MAX_CLIP_FRAMES = 900  # longer tracklets are subsampled in time (the clip keeps its real duration)
CLIP_CRF = "23"  # libx264 quality: visually clean, ~1 MB per minute at 768x576
_CAMERA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # = CameraConfig.id: safe in file names
BOX_DETECTED_BGR = (60, 220, 60)
BOX_INTERPOLATED_BGR = (0, 170, 255)


class ClipRenderer:
    """Renders and caches one run's clips; one render at a time per process (each is CPU-bound)."""

    def __init__(self, run_dir: Path, cameras: Mapping[str, CameraConfig]) -> None:
        self.run_dir = Path(run_dir)
        self.layout = RunLayout(self.run_dir)
        self._cameras = dict(cameras)
        self._render_lock = threading.Lock()

    def default_clip_dir(self) -> Path:
        """Where clips are cached: `<run_dir>/clips`, or a temp folder when the run folder is read-only."""
        folder = self.run_dir / "clips"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
        except OSError:
            pass
        digest = hashlib.sha1(str(self.run_dir).encode()).hexdigest()[:12]
        fallback = Path(tempfile.gettempdir()) / f"smarttrace-clips-{digest}"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback

    def render_clip(self, tracklet: TrackletHit, out_dir: Path | None = None) -> Path:
        """An H.264 MP4 (yuv420p, browser-playable) of the tracklet's frames with its box drawn.

        Cached per (camera, tracklet, tracks artifact version): rendered once, reused until the
        pipeline rewrites that camera's tracks. Written to a temp file and renamed into place.
        """
        camera_id = str(tracklet.camera_id)
        if not _CAMERA_ID.match(camera_id):
            raise SearchInputError(f"invalid camera id '{camera_id[:40]}'")
        tracks_path = self.layout.tracks(camera_id)
        if not tracks_path.is_file():
            raise SearchInputError(f"no tracks artifact for camera '{camera_id}' at {tracks_path}: re-run the pipeline")
        stat = tracks_path.stat()
        stamp = hashlib.sha1(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
        folder = Path(out_dir) if out_dir is not None else self.default_clip_dir()
        target = folder / f"{camera_id}-{int(tracklet.tracklet_id)}-{stamp}.mp4"
        if target.is_file():
            return target
        with self._render_lock:  # one render per process at a time: each one is CPU-bound anyway
            if target.is_file():
                return target
            folder.mkdir(parents=True, exist_ok=True)
            self._render(tracklet, tracks_path, target)
        return target

    def _videos_of(self, tracklet: TrackletHit) -> tuple[list[Path], float]:
        """The camera's video files (from the config) and real frame rate."""
        from tasks.video import camera_videos

        camera = self._cameras.get(tracklet.camera_id)
        if camera is not None:
            return camera_videos(camera.video), camera.fps
        video = Path(tracklet.video_path)
        if not video.is_file():
            raise SearchInputError(
                f"camera '{tracklet.camera_id}' is not in the config and its video {video} is missing"
            )
        span = 0.0
        if tracklet.start_time and tracklet.end_time:
            span = (tracklet.end_time - tracklet.start_time).total_seconds()
        frames = tracklet.end_frame - tracklet.start_frame
        return [video], (frames / span if span > 0 and frames > 0 else 25.0)

    def _render(self, tracklet: TrackletHit, tracks_path: Path, target: Path) -> None:
        import av
        import pyarrow.compute as pc

        from storage.artifacts import read_artifact

        table = read_artifact(tracks_path, "tracks")
        rows = table.filter(pc.equal(table.column("track_id"), int(tracklet.tracklet_id))).to_pandas()
        if rows.empty:
            raise SearchInputError(
                f"tracklet {tracklet.camera_id} #{tracklet.tracklet_id} has no boxes in {tracks_path} "
                "(the pipeline re-ran since the index was built?)"
            )
        boxes = {
            int(r.frame_index): (float(r.x1), float(r.y1), float(r.x2), float(r.y2), bool(r.interpolated))
            for r in rows.itertuples()
        }
        start, end = min(boxes), max(boxes)
        videos, fps = self._videos_of(tracklet)
        step = max(1, math.ceil((end - start + 1) / MAX_CLIP_FRAMES))
        rate = Fraction(fps / step).limit_denominator(1001)
        label = f"{tracklet.camera_id} #{tracklet.tracklet_id}  person {tracklet.global_id}"
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".mp4.tmp")
        os.close(fd)
        written = 0
        try:
            with av.open(tmp_name, mode="w", format="mp4", container_options={"movflags": "+faststart"}) as output:
                stream = None
                for index, frame in _timeline_frames(videos, tracklet.camera_id, start, end):
                    if (index - start) % step:
                        continue
                    source_width = frame.shape[1]
                    frame = _fit_width(frame)
                    scale = frame.shape[1] / source_width
                    if stream is None:
                        stream = output.add_stream("libx264", rate=rate)
                        # yuv420p halves the chroma planes: both sides must be even
                        stream.width = frame.shape[1] - frame.shape[1] % 2
                        stream.height = frame.shape[0] - frame.shape[0] % 2
                        stream.pix_fmt = "yuv420p"
                        stream.options = {"crf": CLIP_CRF, "preset": "veryfast"}
                    frame = np.ascontiguousarray(frame[: stream.height, : stream.width])
                    _draw(frame, boxes.get(index), scale, label, _caption(tracklet, index, start, fps))
                    for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                        output.mux(packet)
                    written += 1
                if stream is not None:
                    for packet in stream.encode():
                        output.mux(packet)
            if written == 0:
                raise SearchInputError(
                    f"frames {start}-{end} of camera '{tracklet.camera_id}' could not be decoded from {videos[0]}"
                )
            os.replace(tmp_name, target)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        log.info("rendered %s (%d frames at %.2f fps)", target, written, float(rate))



def _fit_width(frame: np.ndarray) -> np.ndarray:
    """Scale a frame down to CLIP_MAX_WIDTH (aspect kept); smaller frames are returned as they are."""
    if frame.shape[1] <= CLIP_MAX_WIDTH:
        return frame
    scale = CLIP_MAX_WIDTH / frame.shape[1]
    return cv2.resize(frame, (CLIP_MAX_WIDTH, round(frame.shape[0] * scale)), interpolation=cv2.INTER_AREA)


def _caption(tracklet: TrackletHit, index: int, start: int, fps: float) -> str:
    """Wall-clock time of a frame (UTC) when known, else its frame number."""
    if tracklet.start_time is None:
        return f"frame {index}"
    moment = tracklet.start_time + timedelta(seconds=(index - start) / fps)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 100_000} UTC  frame {index}"


def _draw(frame: np.ndarray, box: tuple[float, float, float, float, bool] | None, scale: float, label: str,
          caption: str) -> None:
    """The tracklet's box (green detected, orange interpolated) with its label, and a time caption, in place."""
    thickness = max(1, round(frame.shape[0] / 400))
    if box is not None:
        x1, y1, x2, y2, interpolated = box
        colour = BOX_INTERPOLATED_BGR if interpolated else BOX_DETECTED_BGR
        p1 = (round(x1 * scale), round(y1 * scale))
        cv2.rectangle(frame, p1, (round(x2 * scale), round(y2 * scale)), colour, thickness + 1)
        _text(frame, label, p1[0], p1[1] - 4, 0.4 * thickness, colour, thickness)
    _text(frame, caption, 6, frame.shape[0] - 8, 0.45 * thickness, (255, 255, 255), thickness)


def _text(frame: np.ndarray, text: str, x: int, y: int, font_scale: float, colour: tuple[int, int, int],
          thickness: int) -> None:
    """Text on a dark backing box, shifted to stay inside the frame."""
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
    x = int(min(max(x, 0), max(frame.shape[1] - width - 2, 0)))
    y = int(min(max(y, height + 2), frame.shape[0] - baseline - 1))
    cv2.rectangle(frame, (x - 2, y - height - 2), (x + width + 2, y + baseline), (0, 0, 0), cv2.FILLED)
    cv2.putText(frame, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour, thickness, cv2.LINE_AA)


def _timeline_frames(videos: list[Path], camera_id: str, start: int, end: int) -> Iterator[tuple[int, np.ndarray]]:
    """Frames [start, end] of a camera's timeline (its files back to back, as the pipeline numbers them).

    Frames before `start` are only grabbed, not converted: cheaper than decoding them fully,
    and unlike seeking it is exact for every codec.
    """
    from tasks.video import open_video

    offset = 0
    for path in videos:
        capture, _info = open_video(path, camera_id)
        local = 0
        try:
            while offset + local <= end:
                index = offset + local
                if index < start:
                    if not capture.grab():
                        break
                else:
                    ok, frame = capture.read()
                    if not ok or frame is None:
                        break
                    yield index, frame
                local += 1
        finally:
            capture.release()
        if offset + local > end:
            return
        offset += local

