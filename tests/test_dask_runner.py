"""The same flow on a Dask cluster (2 worker processes): the task runner is configuration only.

The cluster is started here and handed to the flow by address (`flow.dask_address`), the way a
deployment points at a remote scheduler; the scheduler's task stream then shows which worker ran
each of the flow's tasks, so the test proves the work ran on Dask workers, not in the flow's thread.
"""

from pathlib import Path

import pytest
import yaml

from flows.process import run_process
from storage.artifacts import read_artifact

pytest.importorskip("prefect_dask", reason="flow.task_runner 'dask' needs prefect-dask")


def test_process_runs_its_tasks_on_dask_workers(tmp_path, tud_campus_dir, models_dir, prefect_harness):
    from distributed import Client, LocalCluster, get_task_stream

    config = tmp_path / "config.yaml"
    video = str(tud_campus_dir / "TUD-Campus.mp4")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        config.write_text(yaml.safe_dump({
            "cameras": [
                {"id": "a", "video": video, "fps": 25, "max_frames": 15},
                {"id": "b", "video": video, "fps": 25, "first_frame": 15, "max_frames": 15},
            ],
            "storage": {"run_dir": str(tmp_path / "run")},
            "embed": {"clip_pretrained": ""},
            "flow": {"task_runner": "dask", "dask_address": cluster.scheduler_address},
        }))  # fmt: skip
        with Client(cluster) as client, get_task_stream(client) as stream:
            artifacts = run_process(config)
            workers = set(cluster.workers[name].worker_address for name in cluster.workers)
    ran = [(task["key"], task["worker"]) for task in stream.data]
    assert ran, "the Dask scheduler ran no task of the flow"
    assert {worker for _key, worker in ran} <= workers
    names = " ".join(str(key) for key, _worker in ran)
    assert "track" in names, f"the per-camera tracking tasks did not run on Dask: {names[:300]}"
    a = read_artifact(Path(artifacts["tracks/a"]), "tracks").to_pandas()
    b = read_artifact(Path(artifacts["tracks/b"]), "tracks").to_pandas()
    assert len(a) > 0 and len(b) > 0
    assert a["frame_index"].max() < 15 <= b["frame_index"].min()
    assert read_artifact(Path(artifacts["identities"]), "identities").num_rows > 0
