"""Artifacts: schema enforced on write and read, published atomically."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smarttrace.errors import ArtifactError
from storage.artifacts import META_KEY, read_artifact, read_manifest, write_artifact
from storage.schemas import TRACKS_SCHEMA


def _tracks(n=3):
    return pa.Table.from_pydict(
        {
            "camera_id": ["c"] * n,
            "frame_index": list(range(n)),
            "time_s": [i / 7 for i in range(n)],
            "timestamp": pa.array([i * 1000 for i in range(n)], pa.timestamp("ms", tz="UTC")),
            "track_id": [1] * n,
            "x1": [1.0] * n, "y1": [2.0] * n, "x2": [3.0] * n, "y2": [4.0] * n,
            "confidence": [0.9] * n,
            "interpolated": [False] * n,
            "keypoints": [np.zeros(51, np.float32)] + [None] * (n - 1),
        },
        schema=TRACKS_SCHEMA,
    )


def test_roundtrip_keeps_rows_schema_and_manifest(tmp_path):
    path = write_artifact(_tracks(), tmp_path / "t.parquet", "tracks", {"stage": "track"})
    table = read_artifact(path, "tracks")
    assert table.schema.equals(TRACKS_SCHEMA)
    assert table.num_rows == 3
    manifest = read_manifest(path)
    assert manifest["stage"] == "track" and manifest["rows"] == 3 and manifest["schema_version"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]  # no temp file left


def test_rows_missing_a_field_are_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(ArtifactError, match="do not fit the schema"):
        write_artifact(_tracks().drop_columns(["x1"]), tmp_path / "t.parquet", "tracks")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_artifact(tmp_path, monkeypatch):
    path = write_artifact(_tracks(3), tmp_path / "t.parquet", "tracks")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(ArtifactError, match=r"t\.parquet: disk full.*previous version is intact"):
        write_artifact(_tracks(5), path, "tracks")
    assert read_artifact(path, "tracks").num_rows == 3
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_older_schema_version_is_a_clear_error(tmp_path):
    path = tmp_path / "old.parquet"
    table = _tracks().replace_schema_metadata(
        {META_KEY: json.dumps({"kind": "tracks", "schema_version": 0}).encode()}
    )
    pq.write_table(table, path)
    with pytest.raises(ArtifactError, match=r"old\.parquet was written with tracks schema v0"):
        read_artifact(path, "tracks")


def test_foreign_parquet_and_garbage_are_rejected_naming_the_file(tmp_path):
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"a": [1]}), plain)
    with pytest.raises(ArtifactError, match="plain.parquet is not a SmartTrace artifact"):
        read_artifact(plain, "tracks")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("hello")
    with pytest.raises(ArtifactError, match="garbage.parquet is not a readable Parquet"):
        read_artifact(garbage, "tracks")
    with pytest.raises(ArtifactError, match="not found"):
        read_artifact(tmp_path / "missing.parquet", "tracks")


def test_temp_files_of_a_killed_writer_are_cleaned_on_the_next_write(tmp_path):
    stale = tmp_path / ".t.parquet.abc123.tmp"
    stale.write_bytes(b"half a parquet file")
    write_artifact(_tracks(), tmp_path / "t.parquet", "tracks")
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_disk_full_on_a_real_small_filesystem_keeps_the_previous_artifact(tmp_path):
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        path = write_artifact(_tracks(3), mount / "t.parquet", "tracks")
        rng = np.random.default_rng(0)
        big = _tracks(5000).set_column(
            11, "keypoints", pa.array(list(rng.random((5000, 51), dtype=np.float32)), pa.list_(pa.float32()))
        )
        with pytest.raises(ArtifactError, match="disk full"):
            write_artifact(big, path, "tracks")
        assert read_artifact(path, "tracks").num_rows == 3
        assert [p.name for p in mount.iterdir()] == ["t.parquet"]
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
