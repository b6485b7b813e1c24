"""Model resolution: model folder before cache before download; hashes always checked."""

import shutil

import pytest

from smarttrace import assets
from smarttrace.errors import AssetError


def test_resolves_from_model_folder_and_verifies(models_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("SMARTTRACE_MODEL_DIR", str(models_dir))
    monkeypatch.setenv("SMARTTRACE_CACHE_DIR", str(tmp_path / "cache"))
    path = assets.resolve("yolo11n-pose")
    assert path == models_dir / "yolo11n-pose.pt"
    assert assets.resolve("yolo11n-pose.pt") == path


def test_corrupt_weights_are_rejected_naming_the_file(monkeypatch, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "yolo11n-pose.pt").write_bytes(b"not really weights")
    monkeypatch.setenv("SMARTTRACE_MODEL_DIR", str(folder))
    with pytest.raises(AssetError, match=r"yolo11n-pose\.pt is corrupt.*sha256"):
        assets.resolve("yolo11n-pose")


def test_cache_is_used_when_model_folder_lacks_the_file(models_dir, monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(models_dir / "osnet_x0_25_msmt17.pt", cache)
    monkeypatch.setenv("SMARTTRACE_MODEL_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("SMARTTRACE_CACHE_DIR", str(cache))
    assert assets.resolve("osnet_x0_25_msmt17") == cache / "osnet_x0_25_msmt17.pt"


def test_missing_everywhere_without_download_names_places_and_url(monkeypatch, tmp_path):
    monkeypatch.setenv("SMARTTRACE_MODEL_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("SMARTTRACE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(AssetError, match=r"yolo11n-pose\.pt.*not found.*https://"):
        assets.resolve("yolo11n-pose", allow_download=False)


def test_failed_download_is_a_clear_error_and_leaves_no_partial_file(monkeypatch, tmp_path):
    monkeypatch.setenv("SMARTTRACE_MODEL_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("SMARTTRACE_CACHE_DIR", str(tmp_path / "cache"))
    unreachable = assets.Asset("x", "x.pt", "http://127.0.0.1:9/x.pt", "0" * 64, "model")
    monkeypatch.setitem(assets.ASSETS, "x", unreachable)
    with pytest.raises(AssetError, match=r"x\.pt.*downloading http://127\.0\.0\.1:9/x\.pt failed"):
        assets.resolve("x")
    assert list((tmp_path / "cache").iterdir()) == []


def test_unknown_name_lists_known_assets():
    with pytest.raises(AssetError, match="known: .*yolo11n-pose"):
        assets.resolve("no-such-model")
