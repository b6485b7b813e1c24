"""The command line: interfaces other checks rely on (JSON keys, MOT export, clear errors)."""

from __future__ import annotations

import json
from pathlib import Path

import motmetrics
import numpy as np
import pandas as pd
import pyarrow as pa

from smarttrace.cli import main
from storage.artifacts import write_artifact
from storage.schemas import IDENTITIES_SCHEMA, TRACKS_SCHEMA

MOTMETRICS_DATA = Path(motmetrics.__file__).parent / "data"


def test_evaluate_tracking_json_has_the_promised_keys_and_published_mota(capsys):
    folder = MOTMETRICS_DATA / "TUD-Campus"
    code = main(["evaluate", "tracking", "--pred", str(folder / "test.txt"), "--gt", str(folder / "gt.txt"), "--json"])
    assert code == 0
    scores = json.loads(capsys.readouterr().out)
    assert {"mota", "idf1", "hota", "precision", "recall", "id_switches", "num_frames"} <= set(scores)
    assert abs(scores["mota"] - 0.526462) < 1e-3  # motmetrics' published value for this pair


def _write_run(root: Path, frames_of: dict[int, list[int]]) -> None:
    """Run folder with camera "cam": tracks (track id -> its frames, all on one box), both tracks one
    person (1) and one global id (42)."""
    rows = [(track, f) for track, frames in frames_of.items() for f in frames]
    frames = [f for _, f in rows]
    tracks = pd.DataFrame(
        {
            "camera_id": "cam", "frame_index": frames, "time_s": [f / 7 for f in frames],
            "timestamp": pd.to_datetime([f * 1000 // 7 for f in frames], unit="ms", utc=True),
            "track_id": [track for track, _ in rows], "x1": 10.0, "y1": 20.0, "x2": 40.0, "y2": 100.0,
            "confidence": 0.9, "interpolated": False, "keypoints": [np.zeros(51, np.float32)] * len(rows),
        }
    )
    write_artifact(pa.Table.from_pandas(tracks, schema=TRACKS_SCHEMA, preserve_index=False),
                   root / "tracks" / "cam.parquet", "tracks")
    stamp = pd.Timestamp("2020-01-01", tz="UTC")
    ids = list(frames_of)
    identities = pd.DataFrame({"camera_id": "cam", "tracklet_id": ids, "person_id": [1] * len(ids),
                               "global_id": [42] * len(ids), "start_timestamp": stamp, "end_timestamp": stamp})
    write_artifact(pa.Table.from_pandas(identities, schema=IDENTITIES_SCHEMA, preserve_index=False),
                   root / "identities.parquet", "identities")


def test_export_mot_labels_rows_with_track_person_or_global_ids(tmp_path):
    _write_run(tmp_path, {5: [0, 1, 2], 9: [0, 1, 2]})
    for ids, expected in (("track", {5, 9}), ("person", {1}), ("global", {42})):
        out = tmp_path / f"{ids}.txt"
        assert main(["export", "mot", str(tmp_path), "--camera", "cam", "--ids", ids, "-o", str(out)]) == 0
        rows = [line.split(",") for line in out.read_text().splitlines()]
        assert len(rows) == 6 and {int(r[1]) for r in rows} == expected
        assert {int(r[0]) for r in rows} == {1, 2, 3}  # 1-based frames
        assert rows[0][2:6] == ["10.00", "20.00", "30.00", "80.00"] and rows[0][7:] == ["-1", "-1", "-1"]


def test_user_errors_exit_2_with_one_clear_line(tmp_path, capsys):
    assert main(["process", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert main(["export", "mot", str(tmp_path), "--camera", "nope"]) == 2
    assert "nope.parquet" in capsys.readouterr().err
    (tmp_path / "v.mp4").write_bytes(b"")
    assert main(["evaluate", "reid", "--sequence", str(tmp_path), "--fps", "7", "--queries", "re-entry"]) == 2
    assert "needs --persons" in capsys.readouterr().err
    bad_map = tmp_path / "persons.csv"
    bad_map.write_text("id,who\n1,a\n")
    assert main(["evaluate", "reid", "--sequence", str(tmp_path), "--fps", "7", "--persons", str(bad_map)]) == 2
    assert "persons.csv lacks column" in capsys.readouterr().err


def _write_reentry_run(root: Path) -> Path:
    """One camera, one person seen twice (tracks 5 then 9, one global id); GT labels the visits 1 and 2."""
    _write_run(root, {5: list(range(12)), 9: list(range(12, 24))})
    gt = root / "gt.txt"
    gt.write_text("".join(f"{f + 1},{1 if f < 12 else 2},10,20,30,80,1,-1,-1,-1\n" for f in range(24)))
    return gt


def test_evaluate_identities_scores_people_with_a_person_map(tmp_path, capsys):
    gt = _write_reentry_run(tmp_path)
    base = ["evaluate", "identities", "--run", str(tmp_path), "--camera", f"cam:scene:{gt}", "--json"]
    assert main(base) == 0
    raw = json.loads(capsys.readouterr().out)
    # Against the raw GT ids the correct re-entry join is a false merge...
    assert raw["false_merges"] == 1 and raw["global_idf1"] < 0.75
    persons = tmp_path / "persons.csv"
    persons.write_text("# one person, two visits\ngt_id,person\n1,p\n2,p\n")
    assert main([*base, "--persons", f"scene={persons}"]) == 0
    people = json.loads(capsys.readouterr().out)
    # ...and with the person map it is what it is: one person, one global id.
    assert people["false_merges"] == 0 and people["global_idf1"] == 1.0 and people["num_gt_people"] == 1
    # A map for another scene changes nothing; a bad map is one clear line naming the file.
    assert main([*base, "--persons", f"other={persons}"]) == 0
    assert json.loads(capsys.readouterr().out)["false_merges"] == 1
    persons.write_text("gt_id,person\n1,p\n")
    assert main([*base, "--persons", f"scene={persons}"]) == 2
    assert "persons.csv" in capsys.readouterr().err
    assert main([*base, "--persons", "scene"]) == 2
    assert "SCENE=PERSON_MAP_CSV" in capsys.readouterr().err


def _process_cli(tmp_path: Path, video: Path) -> tuple[int, str]:
    """`smarttrace process` as a user runs it (a subprocess, output not a terminal) on a 20-frame clip."""
    import os
    import subprocess
    import sys

    import yaml

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "cameras": [{"id": "pets", "video": str(video), "fps": 7, "max_frames": 20}],
        "storage": {"run_dir": str(tmp_path / "run")},
        "embed": {"clip_pretrained": ""},
    }))
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PREFECT_HOME": str(tmp_path / "prefect")}
    done = subprocess.run([sys.executable, "-m", "smarttrace.cli", "process", str(config)], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    return done.returncode, done.stdout


def test_process_prints_progress_and_a_summary_without_tracebacks(tmp_path, pets_dir, models_dir):
    code, output = _process_cli(tmp_path, pets_dir / "vtest.avi")
    lines = output.splitlines()
    assert code == 0, output
    assert "Traceback" not in output and len(lines) <= 40, output
    assert any(line.startswith("camera pets, track: done, 20 frames in ") for line in lines), output
    assert any(line.startswith("camera pets, embed: done, ") for line in lines), output
    summary = next(line for line in lines if line.startswith("done in "))
    assert "1 camera (pets)" in summary and "tracklets" in summary and "people" in summary
    assert f"results: {tmp_path / 'run'}" in output and "next: smarttrace dashboard --config config.yaml" in output
    debug_log = Path(next(line for line in lines if line.startswith("debug log: ")).removeprefix("debug log: "))
    chatter = debug_log.read_text()
    assert "Finished in state Completed" in chatter  # Prefect's run states went to the debug log, not the console
    assert "Finished in state" not in output and "Starting temporary server" not in output


def test_process_on_a_missing_video_fails_with_one_clear_line(tmp_path, models_dir):
    code, output = _process_cli(tmp_path, tmp_path / "no-such-video.mp4")
    assert code == 2, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("smarttrace: error:")]
    assert len(errors) == 1 and "video not found" in errors[0] and "no-such-video.mp4" in errors[0], output
    assert len(output.splitlines()) <= 3, output
