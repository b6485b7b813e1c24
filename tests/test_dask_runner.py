"""The same flow on a local Dask cluster (2 workers): the task runner is configuration only."""

from pathlib import Path

import pytest
import yaml

from flows.process import run_process
from storage.artifacts import read_artifact

pytest.importorskip("prefect_dask", reason="flow.task_runner 'dask' needs prefect-dask")


def test_process_runs_on_a_local_dask_cluster(tmp_path, tud_campus_dir, models_dir, prefect_harness):
    config = tmp_path / "config.yaml"
    video = str(tud_campus_dir / "TUD-Campus.mp4")
    config.write_text(yaml.safe_dump({
        "cameras": [
            {"id": "a", "video": video, "fps": 25, "max_frames": 15},
            {"id": "b", "video": video, "fps": 25, "first_frame": 15, "max_frames": 15},
        ],
        "storage": {"run_dir": str(tmp_path / "run")},
        "embed": {"clip_pretrained": ""},
        "flow": {"task_runner": "dask", "max_workers": 2},
    }))
    artifacts = run_process(config)
    a = read_artifact(Path(artifacts["tracks/a"]), "tracks").to_pandas()
    b = read_artifact(Path(artifacts["tracks/b"]), "tracks").to_pandas()
    assert len(a) > 0 and len(b) > 0
    assert a["frame_index"].max() < 15 <= b["frame_index"].min()
    assert read_artifact(Path(artifacts["identities"]), "identities").num_rows > 0
