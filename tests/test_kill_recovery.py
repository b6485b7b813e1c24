"""SIGKILL the real `smarttrace process` mid-run, re-run: nothing partial visible, same result.
Two runs on one run folder: the second refuses, naming the folder and the holder's PID.

The full matrix (kills in every stage and in the index publish, disk full, a corrupt artifact,
concurrent runs, a growing video, query load during an upload) is `benchmarks/faults.py`; this
file keeps one mid-pipeline kill and the run-folder lock in CI.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from storage.run_lock import RunFolderBusyError, run_folder_lock

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("faults", REPO / "benchmarks" / "faults.py")
faults = importlib.util.module_from_spec(spec)
spec.loader.exec_module(faults)


def _config(work: Path, data: Path) -> Path:
    import yaml

    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({
        "cameras": [
            {"id": "pets", "video": str(data / "PETS09-S2L1" / "vtest.avi"), "fps": 7, "max_frames": 60},
            {"id": "campus", "video": str(data / "TUD-Campus" / "TUD-Campus.mp4"), "fps": 25, "max_frames": 30},
        ],
        "storage": {"run_dir": str(work / "run")},
        "embed": {"clip_pretrained": ""},
    }))
    return config


def test_sigkill_mid_pipeline_then_rerun_equals_an_uninterrupted_run(tmp_path, pets_dir, models_dir):
    data = pets_dir.parent
    reference = tmp_path / "reference"
    reference.mkdir()
    code, _ = faults.run_cli(_config(reference, data))
    assert code == 0
    killed = tmp_path / "killed"
    killed.mkdir()
    config = _config(killed, data)
    # campus (30 frames) publishes its tracks while pets (60 frames) is still tracking: the kill lands mid-run
    first = killed / "run" / "tracks" / "campus.parquet"
    code, published = faults.kill_when(config, first.exists, timeout_s=300)
    assert published, f"the run published no tracks artifact before it ended (exit code {code}) or 300 s passed"
    assert code == -signal.SIGKILL, f"the run was not killed: it ended by itself with exit code {code}"
    whole, visible = faults.visible_artifacts_whole(killed / "run")
    assert whole, "a partial artifact is visible after SIGKILL"
    assert visible >= 1
    code, _ = faults.run_cli(config)  # also proves the killed run left no stale run-folder lock
    assert code == 0
    lost, duplicates, equal = faults.compare(faults.snapshot(reference / "run"), faults.snapshot(killed / "run"))
    assert (lost, duplicates, equal) == (0, 0, True)


def _hold_lock_in_child(run_dir: Path) -> subprocess.Popen:
    """Another process holding the run folder's lock (the product's own lock), until killed."""
    code = ("import sys, time; from pathlib import Path; from storage.run_lock import run_folder_lock\n"
            f"with run_folder_lock(Path({str(run_dir)!r})):\n    print('held', flush=True); time.sleep(600)")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_run_folder_lock_refuses_a_second_holder_naming_folder_and_pid(tmp_path):
    run_dir = tmp_path / "run"
    child = _hold_lock_in_child(run_dir)
    try:
        with pytest.raises(RunFolderBusyError) as busy, run_folder_lock(run_dir):
            pass
        assert str(run_dir) in str(busy.value) and f"PID {child.pid}" in str(busy.value)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with run_folder_lock(run_dir) as lock:  # the kernel dropped the killed holder's lock
        assert lock.read_text().strip() == str(os.getpid())


def test_second_process_run_on_the_same_folder_refuses_with_a_clear_message(tmp_path, pets_dir):
    config = _config(tmp_path, pets_dir.parent)
    child = _hold_lock_in_child(tmp_path / "run")
    try:
        result = subprocess.run([sys.executable, "-m", "smarttrace.cli", "process", str(config)], cwd=REPO,
                                capture_output=True, text=True, timeout=300)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert result.returncode == 2, result.stderr[-2000:]
    message = next(line for line in result.stderr.splitlines() if line.startswith("smarttrace: error:"))
    assert f"run folder {tmp_path / 'run'} is being processed by another smarttrace process (PID {child.pid}" in message
    assert not (tmp_path / "run" / "tracks").exists(), "the refused run wrote artifacts"
