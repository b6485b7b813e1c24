"""A video cut mid-file: the frames before the cut are tracked and the run is marked partial."""

from smarttrace.config import CameraConfig, DetectorConfig, PostprocessConfig, TrackerConfig
from tasks.track_camera import track_camera


def test_truncated_video_tracks_frames_before_the_cut_and_is_partial(tmp_path, pets_dir, models_dir):
    source = (pets_dir / "vtest.avi").read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(source[: len(source) // 6])
    camera = CameraConfig(id="pets", video=str(cut), fps=7)
    run = track_camera(camera, DetectorConfig(), TrackerConfig(), PostprocessConfig(link=False))
    assert 50 < run.frames < 795
    assert run.partial and "cut.avi" in run.partial_reason and "truncated" in run.partial_reason
    frames = run.table.column("frame_index").to_pylist()
    assert frames and max(frames) < run.frames and run.table.num_rows > 100
