"""Video decoding errors name the camera and the file; truncated files are flagged partial."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from smarttrace.errors import VideoError
from tasks.video import DecodeReport, camera_videos, iter_frames


def _write_video(path, frames: int, size=(64, 48)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), i * 5 % 255, np.uint8))
    writer.release()


def test_missing_video_names_camera_and_file(tmp_path):
    with pytest.raises(VideoError, match=r"camera 'lobby': video not found: .*lobby\.mp4"):
        list(iter_frames(tmp_path / "lobby.mp4", "lobby", DecodeReport()))


def test_empty_file_and_text_file_are_rejected(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match=r"empty\.mp4: file is empty"):
        list(iter_frames(empty, "c", DecodeReport()))
    text = tmp_path / "text.mp4"
    text.write_text("hello, not a video")
    with pytest.raises(VideoError, match=r"camera 'c'.*text\.mp4"):
        list(iter_frames(text, "c", DecodeReport()))


def test_frames_are_decoded_in_order_and_counted(tmp_path):
    path = tmp_path / "ok.avi"
    _write_video(path, 12)
    report = DecodeReport()
    indices = [index for index, _ in iter_frames(path, "c", report)]
    assert indices == list(range(12)) and report.frames == 12 and not report.partial


def test_truncated_video_keeps_frames_before_the_cut_and_is_marked_partial(tmp_path, pets_dir):
    source = (pets_dir / "vtest.avi").read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(source[: len(source) // 2])
    report = DecodeReport()
    count = sum(1 for _ in iter_frames(cut, "pets", report))
    assert 200 < count < 795
    assert report.partial and "truncated" in report.reason


def test_camera_folder_lists_videos_in_name_order(tmp_path):
    for name in ("b.avi", "a.mp4", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in camera_videos(str(tmp_path))] == ["a.mp4", "b.avi"]
    empty = tmp_path / "empty-camera"
    empty.mkdir()
    with pytest.raises(VideoError, match="empty-camera holds no video files"):
        camera_videos(str(empty))


def test_camera_folder_with_a_bad_file_processes_the_good_ones_and_says_partial(tmp_path):
    from tasks.video import CameraDecode, iter_camera_frames

    _write_video(tmp_path / "a.avi", 5)
    (tmp_path / "b.mp4").write_text("not a video")
    _write_video(tmp_path / "c.avi", 4)
    report = CameraDecode()
    indices = [index for index, _ in iter_camera_frames(str(tmp_path), "lobby", report)]
    assert indices == list(range(9))  # both good files, back to back
    assert report.partial and "b.mp4" in report.reason
    assert [p.name for p in report.videos] == ["a.avi", "c.avi"]


def test_zero_frame_video_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "zero.avi"
    _write_video(path, 0)
    # A header-only container (or none at all): either way the error names the file.
    with pytest.raises(VideoError, match=r"zero\.avi"):
        list(iter_frames(path, "c", DecodeReport()))
