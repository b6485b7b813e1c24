"""End-to-end: the real `process` flow on short real clips with the real models.

Runs under a real (temporary) Prefect API; nothing of our stack is mocked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.process import run_process
from smarttrace.errors import SmartTraceError
from storage.artifacts import read_artifact, read_manifest
from tasks.evaluate_tracking import evaluate_tracking, load_mot_txt
from tasks.export_mot import tracks_to_mot

FRAMES = 40


def _write_config(tmp_path: Path, cameras: list[dict], **sections) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"cameras": cameras, "storage": {"run_dir": str(tmp_path / "run")}, **sections}))
    return path


@pytest.fixture
def two_cameras(pets_dir, tud_campus_dir, models_dir):
    return [
        {"id": "pets", "video": str(pets_dir / "vtest.avi"), "fps": 7, "max_frames": FRAMES,
         "start_time": "2009-03-01T09:00:00Z", "location": "crossing"},
        {"id": "campus", "video": str(tud_campus_dir / "TUD-Campus.mp4"), "fps": 25, "max_frames": FRAMES},
    ]


def test_process_writes_one_tracks_artifact_per_camera_with_sane_accuracy(
    tmp_path, two_cameras, pets_dir, prefect_harness
):
    artifacts = run_process(_write_config(tmp_path, two_cameras))
    assert {"tracks/pets", "tracks/campus", "tracklets/pets", "persons/campus", "identities"} <= set(artifacts)
    pets = read_artifact(Path(artifacts["tracks/pets"]), "tracks").to_pandas()
    assert set(pets["camera_id"]) == {"pets"}
    assert pets["frame_index"].between(0, FRAMES - 1).all()
    assert pets["time_s"].max() == pytest.approx((FRAMES - 1) / 7, abs=1 / 7)
    assert str(pets["timestamp"].min()).startswith("2009-03-01 09:00:00")
    detected = pets.loc[~pets["interpolated"]]
    assert detected["keypoints"].map(len).eq(51).all()  # pose keypoints kept for later stages
    gt = load_mot_txt(pets_dir / "gt" / "gt.txt")
    scores = evaluate_tracking(gt.loc[gt["frame"] <= FRAMES], tracks_to_mot(pets))
    assert scores.mota > 0.6 and scores.idf1 > 0.6, scores
    manifest = read_manifest(Path(artifacts["tracks/pets"]))
    assert manifest["stage"] == "track" and manifest["frames"] == FRAMES and not manifest["partial"]
    assert manifest["inputs"][0]["sha256"].startswith("45cddc94")
    assert manifest["models"][0]["sha256"].startswith("869e83fc")
    assert manifest["flow_run_id"] and manifest["task_run_id"]
    from storage.index import IndexConfig, count_points

    tracklets = read_artifact(Path(artifacts["tracklets/pets"]), "tracklets").num_rows
    tracklets += read_artifact(Path(artifacts["tracklets/campus"]), "tracklets").num_rows
    assert count_points(IndexConfig.for_run_dir(tmp_path / "run")) == tracklets > 0


def test_one_bad_camera_fails_the_run_by_name_but_the_others_are_written(
    tmp_path, two_cameras, prefect_harness
):
    missing = {"id": "lobby", "video": str(tmp_path / "lobby.mp4"), "fps": 25}
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video")
    renamed = {"id": "gate", "video": str(fake), "fps": 25}
    with pytest.raises(SmartTraceError) as error:
        run_process(_write_config(tmp_path, [two_cameras[1], missing, renamed]))
    message = str(error.value)
    assert "2 of 3 cameras failed" in message
    assert "lobby" in message and "video not found" in message and "lobby.mp4" in message
    assert "gate" in message and "notes.mp4" in message
    run = tmp_path / "run" / "tracks"
    assert sorted(p.name for p in run.iterdir()) == ["campus.parquet"]  # nothing half-written
