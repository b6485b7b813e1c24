"""Re-runs skip up-to-date stages; changed config re-runs only that stage and its dependents;
lineage walks every artifact back to its video and flags stale or missing inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from flows.process import run_process
from smarttrace.cli import main
from storage.artifacts import read_manifest
from storage.lineage import lineage_tree


@pytest.fixture
def campus_copy(tmp_path, tud_campus_dir, models_dir) -> Path:
    video = tmp_path / "videos" / "campus.mp4"
    video.parent.mkdir()
    shutil.copy(tud_campus_dir / "TUD-Campus.mp4", video)
    return video


def _config(tmp_path: Path, video: Path, **match) -> Path:
    path = tmp_path / "config.yaml"
    raw = {
        "cameras": [{"id": "campus", "video": str(video), "fps": 25, "max_frames": 30}],
        "storage": {"run_dir": str(tmp_path / "run")},
        "embed": {"clip_pretrained": ""},
        "match": match,
    }
    path.write_text(yaml.safe_dump(raw))
    return path


def _created(artifacts: dict[str, str]) -> dict[str, str]:
    return {name: read_manifest(Path(p))["created"] for name, p in artifacts.items()}


def test_rerun_skips_finished_stages_and_config_change_reruns_only_dependents(
    tmp_path, campus_copy, prefect_harness
):
    first = run_process(_config(tmp_path, campus_copy))
    stamps = _created(first)
    second = run_process(_config(tmp_path, campus_copy))
    assert _created(second) == stamps  # nothing recomputed
    third = run_process(_config(tmp_path, campus_copy, cross_camera_min_similarity=0.9))
    after = _created(third)
    assert after["tracks/campus"] == stamps["tracks/campus"]
    assert after["tracklets/campus"] == stamps["tracklets/campus"]
    assert after["persons/campus"] != stamps["persons/campus"]
    assert after["identities"] != stamps["identities"]
    forced = _created(run_process(_config(tmp_path, campus_copy, cross_camera_min_similarity=0.9), from_stage="embed"))
    assert forced["tracks/campus"] == after["tracks/campus"]
    assert all(forced[name] != after[name] for name in ("tracklets/campus", "persons/campus", "identities"))


def test_lineage_reaches_the_video_and_flags_changed_or_missing_inputs(
    tmp_path, campus_copy, prefect_harness, capsys
):
    artifacts = run_process(_config(tmp_path, campus_copy))
    tree = lineage_tree(artifacts["identities"])
    assert tree["status"] == "ok" and tree["stage"] == "match_cross_camera" and tree["flow_run_id"]
    stages, node = [], tree
    while node["inputs"]:
        stages.append(node["stage"])
        node = node["inputs"][0]
    assert stages == ["match_cross_camera", "embed", "track"]
    assert node["artifact"] == str(campus_copy) and node["stage"] == "source"
    for name in ("tracks/campus", "tracklets/campus", "persons/campus"):
        assert main(["lineage", artifacts[name], "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["status"] == "ok"

    with open(campus_copy, "ab") as handle:
        handle.write(b"\0")
    assert lineage_tree(artifacts["tracks/campus"])["status"] == "stale"
    assert lineage_tree(artifacts["tracks/campus"])["inputs"][0]["status"] == "stale"
    campus_copy.unlink()
    tree = lineage_tree(artifacts["identities"])
    assert tree["status"] == "stale"
    assert json.dumps(tree).count('"missing"') >= 1


def test_watched_folder_processes_new_files_and_skips_processed_ones(tmp_path, campus_copy, prefect_harness):
    folder = tmp_path / "incoming"
    folder.mkdir()
    shutil.copy(campus_copy, folder / "0900.mp4")
    config = tmp_path / "watch.yaml"
    config.write_text(yaml.safe_dump({
        "cameras": [{"id": "lobby", "video": str(folder), "fps": 25, "per_file": True, "max_frames": 20}],
        "storage": {"run_dir": str(tmp_path / "run")},
        "embed": {"clip_pretrained": ""},
    }))
    first = _created(run_process(config))
    assert "tracks/lobby.0900" in first
    shutil.copy(campus_copy, folder / "0905.mp4")
    second = _created(run_process(config))
    assert second["tracks/lobby.0900"] == first["tracks/lobby.0900"]  # not reprocessed
    assert "tracks/lobby.0905" in second


def test_git_state_says_when_tracked_files_differ_from_the_commit(tmp_path):
    """A manifest's commit alone would pass uncommitted edits off as that commit's code."""
    import subprocess

    from smarttrace.lineage import git_state

    assert git_state(tmp_path) == {"git_commit": "", "git_dirty": None}  # no checkout: nothing claimed

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip

    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("commit", "-q", "-m", "one")
    clean = git_state(tmp_path)
    assert clean == {"git_commit": git("rev-parse", "HEAD"), "git_dirty": False}
    (tmp_path / "untracked.txt").write_text("scratch")  # untracked files are not the code that ran
    assert git_state(tmp_path)["git_dirty"] is False
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_state(tmp_path) == {"git_commit": clean["git_commit"], "git_dirty": True}
