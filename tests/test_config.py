"""Config validation: bad values are rejected with the field name and the reason."""

from pathlib import Path

import pytest

from smarttrace.config import load_config, parse_config
from smarttrace.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def _raw(**overrides):
    raw = {"cameras": [{"id": "cam1", "video": "v.mp4", "fps": 7}]}
    raw.update(overrides)
    return raw


def test_demo_config_loads_with_real_rate_and_relative_paths():
    config = load_config(REPO / "configs" / "demo.yaml")
    assert config.cameras[0].fps == 7
    assert config.storage.run_dir == (REPO / "runs" / "demo").resolve()


def test_relative_video_path_is_resolved_against_the_config_folder(tmp_path):
    config = parse_config(_raw(), base=tmp_path, source=tmp_path / "c.yaml")
    assert Path(config.cameras[0].video) == (tmp_path / "v.mp4").resolve()


def test_unknown_key_is_rejected_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"detector\.imgsize"):
        parse_config(_raw(detector={"imgsize": 640}), tmp_path, tmp_path / "c.yaml")


def test_wrong_type_is_rejected_naming_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"cameras\.0\.fps"):
        parse_config({"cameras": [{"id": "a", "video": "v", "fps": "fast"}]}, tmp_path, tmp_path / "c.yaml")


def test_unknown_tracker_is_rejected_with_choices(tmp_path):
    with pytest.raises(ConfigError, match="unknown tracker 'sort'.*bytetrack"):
        parse_config(_raw(tracker={"name": "sort"}), tmp_path, tmp_path / "c.yaml")


def test_duplicate_camera_ids_are_rejected(tmp_path):
    cams = [{"id": "a", "video": "v", "fps": 7}, {"id": "a", "video": "w", "fps": 7}]
    with pytest.raises(ConfigError, match="repeated: a"):
        parse_config({"cameras": cams}, tmp_path, tmp_path / "c.yaml")


def test_missing_and_unparsable_files_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: [unclosed")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)


def test_section_hash_changes_only_with_its_section(tmp_path):
    a = parse_config(_raw(), tmp_path, tmp_path / "c.yaml")
    b = parse_config(_raw(postprocess={"max_gap_frames": 3}), tmp_path, tmp_path / "c.yaml")
    assert a.section_hash("detector") == b.section_hash("detector")
    assert a.section_hash("postprocess") != b.section_hash("postprocess")
