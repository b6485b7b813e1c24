"""The tracklet index on a real embedded Qdrant (no mocks), including two real processes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pydantic import ValidationError

from smarttrace.errors import ArtifactError, SmartTraceError
from storage.index import (
    PAYLOAD_INDEXES,
    IndexConfig,
    IndexLockedError,
    IndexSchemaError,
    IndexUnavailableError,
    clear_reader_cache,
    count_points,
    delete_camera_points,
    open_client,
    payload_columns,
    point_id,
    scroll_all,
    search_vectors,
    upload_tracklets,
)
from storage.index_filters import query_filter
from storage.schemas import ATTRIBUTE_VOCABULARY, IDENTITIES_SCHEMA, TRACKLETS_SCHEMA

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
REID_DIM, CLIP_DIM = 16, 8

# Holds an embedded client on a folder for a while, like a second process (a dashboard, an upload).
HOLD = (
    "import sys, time\n"
    "from qdrant_client import QdrantClient\n"
    "client = QdrantClient(path=sys.argv[1])\n"
    "print('ready', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
    "client.close()\n"
)


# Loads the CURRENT published version in the engine and serves from it for a while: a second reader
# process (another dashboard, the API) on the same version.
HOLD_READER = (
    "import sys, time\n"
    "from storage.index import IndexConfig, count_points\n"
    "config = IndexConfig.for_run_dir(sys.argv[1], reid_dim=16)\n"
    "print('ready' if count_points(config) > 0 else 'empty', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
)


@pytest.fixture(autouse=True)
def _fresh_reader_cache():
    yield
    clear_reader_cache()


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _tracklets(
    camera: str = "cam-a",
    n: int = 5,
    seed: int = 0,
    reid_dim: int = REID_DIM,
    clip_dim: int | None = None,
    first_id: int = 0,
    start: datetime = T0,
    null_reid: tuple[int, ...] = (),
    null_clip: tuple[int, ...] = (),
    attribute_probs: list[list[float] | None] | None = None,
) -> pa.Table:
    """`n` tracklets of one camera, tracklet i living [start + 60 i s, start + 60 i + 30 s]."""
    rng = np.random.default_rng(seed)
    reid = _unit(rng, n, reid_dim)
    clip = _unit(rng, n, clip_dim) if clip_dim else None
    starts = [start + timedelta(seconds=60 * i) for i in range(n)]
    return pa.Table.from_pydict(
        {
            "camera_id": [camera] * n,
            "tracklet_id": [first_id + i for i in range(n)],
            "start_frame": [70 * i for i in range(n)],
            "end_frame": [70 * i + 35 for i in range(n)],
            "start_time_s": [60.0 * i for i in range(n)],
            "end_time_s": [60.0 * i + 30 for i in range(n)],
            "start_timestamp": starts,
            "end_timestamp": [s + timedelta(seconds=30) for s in starts],
            "num_boxes": [30] * n,
            "mean_box_height": [120.0] * n,
            "mean_box_width": [40.0] * n,
            "foot_path": [[1.0, 2.0]] * n,
            "video_path": [f"/videos/{camera}.mp4"] * n,
            "thumbnail_path": [f"thumbnails/{camera}/{first_id + i}.jpg" for i in range(n)],
            "best_frame": [70 * i + 10 for i in range(n)],
            "num_crops": [8] * n,
            "reid_embedding": [None if i in null_reid else reid[i] for i in range(n)],
            "reid_crop_embeddings": [None] * n,
            "reid_camera_embedding": [None] * n,
            "clip_embedding": [None if clip is None or i in null_clip else clip[i] for i in range(n)],
            "upper_color": ["red", "blue", "black", "white", "green"][:n] + ["grey"] * max(0, n - 5),
            "upper_color_conf": [0.6] * n,
            "lower_color": ["black"] * n,
            "lower_color_conf": [0.5] * n,
            "attribute_probs": attribute_probs if attribute_probs is not None else [None] * n,
        },
        schema=TRACKLETS_SCHEMA,
    )


def _reid(table: pa.Table, row: int) -> np.ndarray:
    return np.asarray(table.column("reid_embedding")[row].as_py(), dtype=np.float32)


def _config(tmp_path: Path, **overrides) -> IndexConfig:
    return IndexConfig.for_run_dir(tmp_path, reid_dim=overrides.pop("reid_dim", REID_DIM), **overrides)


def _hold(folder: Path, seconds: float) -> subprocess.Popen:
    """Start a process holding `folder`'s qdrant lock; returns once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", f"holder process failed to open {folder}"
    return proc


def _hold_reader(run_dir: Path, seconds: float) -> subprocess.Popen:
    """Start a process reading the CURRENT version through the engine; returns once it serves."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_READER, str(run_dir), str(seconds)], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", "reader process failed to load the index"
    return proc


def _current_snapshot(config: IndexConfig) -> Path:
    return config.published_path / (config.published_path / "CURRENT").read_text().strip()


def test_point_ids_are_deterministic_uuids():
    assert point_id("cam-a", 3) == point_id("cam-a", 3)
    assert point_id("cam-a", 3) != point_id("cam-a", 4) != point_id("cam-b", 3)
    assert str(uuid.UUID(point_id("cam-a", 3))) == point_id("cam-a", 3)
    # Pinned: changing the namespace would duplicate every point of existing indexes on re-upload.
    assert point_id("cam-a", 3) == str(uuid.uuid5(uuid.UUID("6f1c2b0e-8d4a-5c3e-9b7f-2a4d6e8f1c3b"), "cam-a/3"))


def test_config_rejects_unknown_keys_and_bad_urls(tmp_path):
    with pytest.raises(ValidationError, match="extra"):
        IndexConfig(path=tmp_path, colection="x")
    with pytest.raises(ValidationError, match="must start with http"):
        IndexConfig(url="localhost:6333")
    config = IndexConfig.for_run_dir(tmp_path)
    assert config.path == tmp_path / "qdrant" and config.reid_dim == 512 and config.collection == "tracklets"


def test_upload_twice_is_idempotent_and_payload_is_complete(tmp_path):
    config = _config(tmp_path)
    table = _tracklets(n=5)
    identities = pd.DataFrame(
        {
            "camera_id": ["cam-a", "cam-a"],
            "tracklet_id": [0, 1],
            "person_id": [7, 8],
            "global_id": [42, 43],
            "start_timestamp": [T0, T0],
            "end_timestamp": [T0, T0],
        }
    )
    assert pa.Table.from_pandas(identities, preserve_index=False).select(IDENTITIES_SCHEMA.names).num_rows == 2
    assert upload_tracklets(config, table, identities, {"cam-a": "hall"}) == 5
    assert count_points(config) == 5
    assert upload_tracklets(config, table.to_pandas(), identities, {"cam-a": "hall"}) == 5  # DataFrame input too
    assert count_points(config) == 5

    payloads = {p["tracklet_id"]: p for _, p in scroll_all(config)}
    assert (payloads[0]["global_id"], payloads[0]["person_id"]) == (42, 7)
    assert (payloads[4]["global_id"], payloads[4]["person_id"]) == (-1, -1)  # no identity row
    first = payloads[1]
    assert first["camera_id"] == "cam-a" and first["location"] == "hall"
    assert first["start_timestamp"] == "2024-05-01T09:01:00+00:00"
    assert first["start_epoch"] == (T0 + timedelta(seconds=60)).timestamp()
    assert first["end_epoch"] - first["start_epoch"] == 30
    assert (first["start_time_s"], first["end_time_s"], first["start_frame"], first["end_frame"]) == (60, 90, 70, 105)
    assert first["video_path"] == "/videos/cam-a.mp4" and first["thumbnail_path"] == "thumbnails/cam-a/1.jpg"
    assert (first["upper_color"], first["upper_color_conf"], first["lower_color"]) == ("blue", 0.6, "black")
    assert first["has_reid"] is True and first["has_clip"] is False


def test_default_512_d_vectors_search_back_to_the_stored_tracklet(tmp_path):
    config = IndexConfig.for_run_dir(tmp_path, clip_dim=512)
    table = _tracklets(n=20, reid_dim=512, clip_dim=512)
    upload_tracklets(config, table)
    hits = search_vectors(config, "reid", _reid(table, 13), limit=3)
    assert hits[0].point_id == point_id("cam-a", 13)
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].payload["tracklet_id"] == 13 and hits[1].score < hits[0].score
    clip = np.asarray(table.column("clip_embedding")[4].as_py())
    assert search_vectors(config, "clip", clip, limit=1)[0].payload["tracklet_id"] == 4


def test_search_respects_camera_filter_and_time_range(tmp_path):
    config = _config(tmp_path)
    a = _tracklets("cam-a", n=5, seed=1)
    b = _tracklets("cam-b", n=5, seed=2, start=T0 + timedelta(hours=1))
    upload_tracklets(config, a)
    upload_tracklets(config, b)
    query = _reid(a, 2)
    assert search_vectors(config, "reid", query, limit=1)[0].point_id == point_id("cam-a", 2)

    others = search_vectors(config, "reid", query, limit=10, camera_ids=["cam-b"])
    assert len(others) == 5 and {h.payload["camera_id"] for h in others} == {"cam-b"}
    assert search_vectors(config, "reid", query, camera_ids=[]) == []

    # Tracklet 2 of cam-a lives [T0+120 s, T0+150 s]; a range overlapping it keeps it.
    window = (T0 + timedelta(seconds=140), T0 + timedelta(seconds=200))
    around = search_vectors(config, "reid", query, limit=10, time_range=window)
    assert {h.payload["tracklet_id"] for h in around} == {2, 3}
    assert around[0].point_id == point_id("cam-a", 2)
    later = search_vectors(config, "reid", query, limit=10, time_range=(T0 + timedelta(minutes=30), None))
    assert {h.payload["camera_id"] for h in later} == {"cam-b"}
    epoch = (T0 + timedelta(seconds=125)).timestamp()  # epoch seconds work as bounds too
    assert [h.payload["tracklet_id"] for h in search_vectors(config, "reid", query, time_range=(epoch, epoch))] == [2]
    assert {p["camera_id"] for _, p in scroll_all(config, camera_ids=["cam-b"])} == {"cam-b"}


def test_engine_search_ranks_like_qdrant_client_on_the_live_folder(tmp_path):
    """The engine's published version answers like qdrant-client's own filtered query on live/."""
    config = _config(tmp_path)
    upload_tracklets(config, _tracklets("cam-a", n=30, seed=3))
    upload_tracklets(config, _tracklets("cam-b", n=30, seed=4, start=T0 + timedelta(minutes=10)))
    query = np.random.default_rng(9).standard_normal(REID_DIM)
    window = (T0 + timedelta(minutes=12), T0 + timedelta(minutes=20))
    cases = [(None, None), (["cam-b"], None), (["cam-a", "cam-b"], window)]
    for cameras, time_range in cases:
        ours = search_vectors(config, "reid", query, limit=7, camera_ids=cameras, time_range=time_range)
        low, high = (None, None) if time_range is None else (time_range[0].timestamp(), time_range[1].timestamp())
        with open_client(config) as client:  # live/, unchanged: nothing is published again
            theirs = client.query_points(
                config.collection, query=query.tolist(), using="reid", limit=7,
                query_filter=query_filter(cameras, low, high),
            ).points
        assert [h.point_id for h in ours] == [str(p.id) for p in theirs]
        assert [h.score for h in ours] == pytest.approx([p.score for p in theirs], abs=1e-5)


def test_wrong_vector_sizes_are_schema_errors(tmp_path):
    config = _config(tmp_path)
    upload_tracklets(config, _tracklets(n=2))
    expected = "collection 'tracklets' stores 'reid' vectors of size 16, the config expects 32"
    with pytest.raises(IndexSchemaError, match=expected):
        upload_tracklets(config.model_copy(update={"reid_dim": 32}), _tracklets(n=2, reid_dim=32))
    with pytest.raises(IndexSchemaError, match="collection 'tracklets' has no 'clip' vector"):
        upload_tracklets(config.model_copy(update={"clip_dim": CLIP_DIM}), _tracklets(n=2, clip_dim=CLIP_DIM))
    with pytest.raises(IndexSchemaError, match="reid_embedding of tracklet cam-a/0 has 20 values, the index expects"):
        upload_tracklets(config, _tracklets(n=2, reid_dim=20))
    with pytest.raises(IndexSchemaError, match="query 'reid' vector has 3 values"):
        search_vectors(config, "reid", [1.0, 0.0, 0.0])
    with pytest.raises(IndexSchemaError, match="set index.clip_dim"):
        search_vectors(config, "clip", [1.0] * CLIP_DIM)
    bad = _tracklets(n=2)
    vectors = bad.column("reid_embedding").to_pylist()
    vectors[1][0] = float("nan")
    column = bad.schema.get_field_index("reid_embedding")
    bad = bad.set_column(column, "reid_embedding", pa.array(vectors, pa.list_(pa.float32())))
    with pytest.raises(IndexSchemaError, match="cam-a/1 holds NaN"):
        upload_tracklets(config, bad)
    assert count_points(config) == 2  # nothing of the refused uploads reached the index
    assert issubclass(IndexSchemaError, SmartTraceError) and issubclass(IndexLockedError, IndexUnavailableError)


def test_bad_input_rows_are_refused_before_touching_the_index(tmp_path):
    config = _config(tmp_path)
    with pytest.raises(ArtifactError, match="lack the fields reid_embedding"):
        upload_tracklets(config, _tracklets(n=2).drop_columns(["reid_embedding"]))
    with pytest.raises(ArtifactError, match="repeat tracklet cam-a/0"):
        upload_tracklets(config, pa.concat_tables([_tracklets(n=2), _tracklets(n=1)]))
    assert not config.path.exists()


def test_points_without_clip_or_reid_still_upload(tmp_path):
    config = _config(tmp_path, clip_dim=CLIP_DIM)
    table = _tracklets(n=5, clip_dim=CLIP_DIM, null_clip=(1, 3), null_reid=(4,))
    assert upload_tracklets(config, table) == 5
    assert count_points(config) == 5
    clip_hits = search_vectors(config, "clip", np.ones(CLIP_DIM), limit=10)
    assert {h.payload["tracklet_id"] for h in clip_hits} == {0, 2, 4}
    reid_hits = search_vectors(config, "reid", np.ones(REID_DIM), limit=10)
    assert {h.payload["tracklet_id"] for h in reid_hits} == {0, 1, 2, 3}
    no_reid = [p for _, p in scroll_all(config) if p["tracklet_id"] == 4][0]
    assert no_reid["has_reid"] is False and no_reid["has_clip"] is True and no_reid["upper_color"] == "green"


def test_orphans_are_deleted(tmp_path):
    config = _config(tmp_path)
    upload_tracklets(config, _tracklets("cam-a", n=5))
    upload_tracklets(config, _tracklets("cam-b", n=3))
    assert delete_camera_points(config, "cam-a", keep_ids=[0, 1]) == 3
    assert count_points(config) == 5
    assert sorted(p["tracklet_id"] for _, p in scroll_all(config, camera_ids=["cam-a"])) == [0, 1]
    assert delete_camera_points(config, "cam-a", keep_ids=[0, 1]) == 0
    # A re-run of cam-b with renumbered tracklets, pruned in the same upload.
    upload_tracklets(config, _tracklets("cam-b", n=2, first_id=10), prune_orphans=True)
    assert sorted(p["tracklet_id"] for _, p in scroll_all(config, camera_ids=["cam-b"])) == [10, 11]
    assert count_points(config) == 4
    assert delete_camera_points(_config(tmp_path / "empty"), "cam-a", []) == 0


def test_readers_see_each_new_upload_and_only_complete_ones(tmp_path):
    config = _config(tmp_path)
    upload_tracklets(config, _tracklets("cam-a", n=3))
    assert count_points(config) == 3  # loaded into this process's cache
    first_version = _current_snapshot(config)
    upload_tracklets(config, _tracklets("cam-b", n=4))
    assert count_points(config) == 7  # next query sees the new version
    assert _current_snapshot(config) != first_version

    with pytest.raises(IndexSchemaError):  # a failed upload publishes nothing
        upload_tracklets(config.model_copy(update={"reid_dim": 99}), _tracklets(n=1, reid_dim=99))
    assert count_points(config) == 7
    versions = [p for p in config.published_path.iterdir() if p.is_dir() and p.name != ".readers"]
    assert len(versions) <= 2 and not any(p.name.startswith(".tmp") for p in versions)


def test_never_published_live_index_is_published_on_first_read(tmp_path):
    config = _config(tmp_path)
    upload_tracklets(config, _tracklets(n=3))
    shutil.rmtree(config.published_path)
    assert count_points(config) == 3


def test_a_published_version_deleted_by_hand_is_published_again(tmp_path):
    config = _config(tmp_path)
    upload_tracklets(config, _tracklets(n=3))
    shutil.rmtree(_current_snapshot(config))
    assert count_points(config) == 3


def test_threads_read_while_another_thread_uploads(tmp_path):
    config = _config(tmp_path)
    table = _tracklets("cam-a", n=5)
    upload_tracklets(config, table)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(30):
                assert search_vectors(config, "reid", _reid(table, 0), limit=1)[0].point_id == point_id("cam-a", 0)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for thread in readers:
        thread.start()
    for i in range(3):
        upload_tracklets(config, _tracklets(f"cam-{i}", n=3, seed=10 + i))
    for thread in readers:
        thread.join()
    assert errors == []
    assert count_points(config) == 14


def test_missing_index_is_a_clear_error(tmp_path):
    config = _config(tmp_path)
    with pytest.raises(IndexUnavailableError, match=r"no SmartTrace index at .*qdrant: nothing was uploaded"):
        search_vectors(config, "reid", np.ones(REID_DIM))
    assert not config.live_path.exists()  # reading must not create an empty index


def test_two_processes_read_the_same_version_at_once(tmp_path):
    """The engine allows one process per shard folder: readers load private copies (hard links), so a
    second reader (another dashboard, the API) neither waits for nor breaks the first, and no reader
    changes a byte of the published version."""
    config = _config(tmp_path)
    table = _tracklets(n=4)
    upload_tracklets(config, table)
    version = _current_snapshot(config)

    def digest() -> dict[str, str]:
        return {str(f.relative_to(version)): hashlib.sha256(f.read_bytes()).hexdigest()
                for f in version.rglob("*") if f.is_file()}

    before = digest()
    holder = _hold_reader(tmp_path, 5.0)
    try:
        started = time.monotonic()
        hits = search_vectors(config, "reid", _reid(table, 1), limit=1)
        assert time.monotonic() - started < 3.0
    finally:
        holder.wait(timeout=30)
    assert hits[0].point_id == point_id("cam-a", 1)
    assert holder.returncode == 0
    clear_reader_cache()  # closes ours: its private copy goes
    assert count_points(config) == 4  # a new load also removes the copy the exited process left
    assert digest() == before
    copies = list((config.published_path / ".readers").iterdir())
    assert len(copies) == 1 and copies[0].name.startswith(f"{os.getpid()}-")


def test_a_torn_version_is_never_served(tmp_path, caplog):
    config = _config(tmp_path, lock_timeout_s=0.3)
    table = _tracklets(n=3)
    upload_tracklets(config, table)
    assert count_points(config) == 3  # this process serves the complete version
    good = _current_snapshot(config)
    torn = config.published_path / "v99999999999999999999-torn"
    shutil.copytree(good, torn)
    for segment_file in [f for f in torn.rglob("*") if f.is_file() and f.stat().st_size > 0][:50]:
        segment_file.write_bytes(b"\0" * 7)  # a partial copy: every file cut short
    (config.published_path / "CURRENT").write_text(torn.name + "\n")
    with caplog.at_level("WARNING", logger="storage.index"):
        assert search_vectors(config, "reid", _reid(table, 2), limit=1)[0].point_id == point_id("cam-a", 2)
    assert "cannot be loaded" in caplog.text
    clear_reader_cache()  # a fresh process has no previous version to fall back on: a clear error
    with pytest.raises(IndexUnavailableError, match="cannot load the published index version .*torn"):
        count_points(config)


def test_upload_waits_for_the_live_folder_and_is_never_blocked_by_readers(tmp_path):
    config = _config(tmp_path, lock_timeout_s=20)
    upload_tracklets(config, _tracklets("cam-a", n=2))
    # A reader process serving the published version (as a long-lived dashboard does) does not block writers.
    reader = _hold_reader(tmp_path, 20.0)
    try:
        started = time.monotonic()
        upload_tracklets(config.model_copy(update={"lock_timeout_s": 1.0}), _tracklets("cam-b", n=2))
        assert time.monotonic() - started < 5.0
    finally:
        reader.kill()
        reader.wait(timeout=30)
    # A writer process holding live/ makes the upload wait, then it goes through.
    writer = _hold(config.live_path, 1.5)
    try:
        started = time.monotonic()
        upload_tracklets(config, _tracklets("cam-c", n=2))
        assert time.monotonic() - started > 0.5
    finally:
        writer.wait(timeout=30)
    assert count_points(config) == 6


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
def test_server_url_selects_the_remote_client_without_connecting(tmp_path):
    config = IndexConfig(path=tmp_path / "unused", url="http://127.0.0.1:9", api_key="secret")
    with open_client(config) as client:
        assert client.init_options["url"] == "http://127.0.0.1:9" and client.init_options["path"] is None
        assert type(client._client).__name__ == "QdrantRemote"
    assert not (tmp_path / "unused").exists()
    assert "secret" not in repr(config)
    with pytest.raises(IndexUnavailableError, match=r"cannot reach the Qdrant server at http://127.0.0.1:9"):
        count_points(config)


def _probs(**values: float) -> list[float]:
    row = [0.1] * len(ATTRIBUTE_VOCABULARY)
    for name, value in values.items():
        row[ATTRIBUTE_VOCABULARY.index(name)] = value
    return row


def test_attribute_payload_indexes_are_created(tmp_path):
    """Local mode keeps no payload schema, so the calls a server would get are recorded on a real client."""
    from qdrant_client import QdrantClient

    from storage.index import ensure_collection

    created: dict[str, object] = {}

    class Recording(QdrantClient):
        def create_payload_index(self, collection_name, field_name, field_schema=None, **kwargs):
            created[field_name] = field_schema
            return super().create_payload_index(collection_name, field_name, field_schema=field_schema, **kwargs)

    client = Recording(location=":memory:")
    ensure_collection(client, _config(tmp_path))
    for field in ("gender", "age_group", "has_attributes", "p_female", "p_male", "p_bag", "p_backpack", "p_hat"):
        assert created.get(field) == PAYLOAD_INDEXES[field], field
    assert str(created["gender"]).lower().endswith("keyword") and str(created["p_bag"]).lower().endswith("float")


def test_attribute_probabilities_reach_payload_and_the_reader_matrix(tmp_path):
    config = _config(tmp_path)
    woman = _probs(personalFemale=0.9, personalMale=0.1, carryingBackpack=0.8, personalLess30=0.7)
    table = _tracklets(n=3, attribute_probs=[woman, None, _probs(personalMale=0.95, accessoryHat=0.6)])
    upload_tracklets(config, table)
    payloads = {p["tracklet_id"]: p for _, p in scroll_all(config)}
    assert payloads[0]["gender"] == "female" and payloads[0]["age_group"] == "16-30"
    assert payloads[0]["p_backpack"] == 0.8 and payloads[0]["p_bag"] == 0.8 and payloads[0]["has_attributes"] is True
    assert payloads[2]["gender"] == "male" and payloads[2]["p_hat"] == 0.6
    assert payloads[1]["has_attributes"] is False and "gender" not in payloads[1]
    columns = payload_columns(config)
    row = {int(p["tracklet_id"]): i for i, p in enumerate(columns.payloads)}
    assert columns.attribute_probs.shape == (3, len(ATTRIBUTE_VOCABULARY))
    assert list(columns.has_attributes[[row[0], row[1], row[2]]]) == [True, False, True]
    assert np.isnan(columns.attribute_probs[row[1]]).all()
    np.testing.assert_allclose(columns.attribute_probs[row[0]], woman, atol=1e-4)
    assert "attribute_probs" not in columns.payloads[row[0]]  # held once, as the matrix
    only_b = payload_columns(config, camera_ids=["cam-b"])
    assert only_b.ids == [] and only_b.attribute_probs.shape == (0, len(ATTRIBUTE_VOCABULARY))


def test_attribute_probabilities_of_another_vocabulary_are_refused(tmp_path):
    config = _config(tmp_path)
    with pytest.raises(IndexSchemaError, match="attribute_probs of tracklet cam-a/1 has 3 values"):
        upload_tracklets(config, _tracklets(n=2, attribute_probs=[_probs(), [0.5, 0.5, 0.5]]))
    with pytest.raises(IndexSchemaError, match="outside"):
        upload_tracklets(config, _tracklets(n=1, attribute_probs=[_probs(personalMale=1.5)]))


def test_engine_text_candidates_hold_the_exact_top_results(tmp_path):
    """Text search scores only the engine's best candidates by the attribute query: for constraints of one
    attribute each, the engine's dot product orders points exactly like the geometric-mean scorer, so the
    top 10 of 40 candidates are the top 10 of scoring all 300 points (and points without attributes come too)."""
    from storage.attribute_vectors import attribute_terms
    from tasks.attribute_scoring import score_constraints
    from tasks.text_query import Constraint

    rng = np.random.default_rng(5)
    probs = rng.uniform(0.0, 1.0, (300, len(ATTRIBUTE_VOCABULARY)))
    probs[rng.uniform(size=probs.shape) < 0.05] = np.nan  # unknown values are neutral for both
    rows: list[list[float] | None] = [[None if np.isnan(v) else float(v) for v in row] for row in probs]
    rows[7] = None  # indexed without the attribute model
    config = _config(tmp_path)
    upload_tracklets(config, _tracklets(n=300, attribute_probs=rows))
    constraints = [Constraint("woman", ("personalFemale",)), Constraint("backpack", ("carryingBackpack",)),
                   Constraint("hat", ("accessoryHat",), negated=True)]
    query = attribute_terms(constraints)
    assert query is not None
    some = payload_columns(config, attribute_query=query, candidates=40)
    everything = payload_columns(config)
    assert len(everything.ids) == 300 and len(some.ids) == 41  # 40 candidates + the point without attributes
    assert point_id("cam-a", 7) in some.ids and not some.has_attributes[some.ids.index(point_id("cam-a", 7))]

    def top10(columns) -> list[str]:
        has = np.flatnonzero(columns.has_attributes)
        scores = score_constraints(constraints, columns.attribute_probs[has]).scores
        return [columns.ids[has[i]] for i in np.argsort(-scores, kind="stable")[:10]]

    assert top10(some) == top10(everything)
    # Filters run in the engine: only points whose woman probability reaches 0.5.
    women = payload_columns(config, attribute_query=query, candidates=300, attribute_filters={"female": True})
    female = ATTRIBUTE_VOCABULARY.index("personalFemale")
    expected = {point_id("cam-a", i) for i in range(300) if rows[i] is not None and probs[i, female] >= 0.5}
    assert set(women.ids) == expected


def test_engine_ranks_constraints_with_alternatives_exactly(tmp_path):
    """"skirt" (short OR long) scores its more probable alternative and "no bag" 1 - the most probable
    bag: no sum of per-attribute logs ranks that, so the index holds a term per group. With every
    probability known, the engine's top 10 ARE the scorer's top 10 over all 300 points, in order."""
    from storage.attribute_vectors import attribute_terms
    from tasks.attribute_scoring import score_constraints
    from tasks.text_query import parse_description

    rng = np.random.default_rng(11)
    probs = rng.uniform(0.0, 1.0, (300, len(ATTRIBUTE_VOCABULARY)))
    config = _config(tmp_path)
    upload_tracklets(config, _tracklets(n=300, attribute_probs=[row.tolist() for row in probs]))
    everything = payload_columns(config)
    for text in ("woman with a skirt and no bag", "beige clothes, old", "man in red without a suitcase"):
        constraints = parse_description(text).constraints
        assert any(len(c.attributes) > 1 for c in constraints), text
        found = payload_columns(config, attribute_query=attribute_terms(constraints), candidates=10)
        exact = score_constraints(constraints, everything.attribute_probs).scores
        best = [everything.ids[i] for i in np.argsort(-exact, kind="stable")[:10]]
        assert found.ids == best, text  # the engine's own order, not re-scored


def test_a_version_written_before_the_sparse_terms_is_ranked_by_the_dense_vector(tmp_path):
    """A version without `attribute_groups.json` (published by an earlier release) must not be queried
    with this release's column layout: the reader ranks it by the dense log vector, which is exact for
    constraints of one attribute each."""
    import storage.index as index_module
    from storage.attribute_vectors import GROUPS_FILE, attribute_terms
    from storage.index import clear_reader_cache, current_version
    from tasks.attribute_scoring import score_constraints
    from tasks.text_query import parse_description

    rng = np.random.default_rng(12)
    probs = rng.uniform(0.0, 1.0, (120, len(ATTRIBUTE_VOCABULARY)))
    config = _config(tmp_path)
    upload_tracklets(config, _tracklets(n=120, attribute_probs=[row.tolist() for row in probs]))
    (config.published_path / str(current_version(config)) / GROUPS_FILE).unlink()
    clear_reader_cache()
    constraints = parse_description("woman with a backpack and no hat").constraints
    found = payload_columns(config, attribute_query=attribute_terms(constraints), candidates=5)
    everything = payload_columns(config)
    exact = score_constraints(constraints, everything.attribute_probs).scores
    assert found.ids == [everything.ids[i] for i in np.argsort(-exact, kind="stable")[:5]]
    assert index_module._reader(config).groups is None  # it was the dense path that answered


def test_published_attribute_list_is_recovered_exactly_from_the_log_vector():
    """Versions keep the probabilities only in the attr_logp vector: decoding must give back what was
    uploaded, at the extremes the floor clips (0, 1, below the floor) and with unknown values."""
    from storage.attribute_vectors import attribute_log_vector, attribute_matrix_from_log, attribute_probs_from_log

    rng = np.random.default_rng(3)
    rows = []
    for _ in range(50):
        row = [None if rng.random() < 0.1 else round(float(v), 4) for v in rng.random(len(ATTRIBUTE_VOCABULARY))]
        row[:6] = [0.0, 1.0, 0.5, 0.0042, 0.9987, None]
        rows.append(row)
    vectors = np.array([attribute_log_vector(row) for row in rows], dtype=np.float32)  # as the engine stores them
    assert attribute_probs_from_log(vectors) == rows
    # Text search reads the matrix straight (no lists): the same values, NaN where unknown.
    expected = np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float32)
    np.testing.assert_array_equal(attribute_matrix_from_log(vectors), expected)


def test_a_publish_that_would_fill_the_disk_is_refused_before_writing(tmp_path, monkeypatch):
    """The engine writes through sparse memory maps: a full disk kills it with SIGBUS mid-write, so
    the upload checks the room first. Here the disk reports less free space than the room the next
    version needs: a clear disk-full error, nothing
    written, readers keep the previous version, and with space back the same upload succeeds."""
    import storage.index as index

    config = _config(tmp_path)
    upload_tracklets(config, _tracklets("cam-a", n=3))
    before = _current_snapshot(config)
    assert count_points(config) == 3  # a reader holds the version (loading one needs room too: the next test)
    need = index.room_needed(7, {"reid": REID_DIM})
    assert index.room_needed(70, {"reid": REID_DIM}) > need > index.ROOM_FIXED_BYTES  # grows with the points
    real_usage = shutil.disk_usage
    monkeypatch.setattr(index.shutil, "disk_usage",
                        lambda path: real_usage(path)._replace(free=need - 1))  # fmt: skip
    with pytest.raises(IndexUnavailableError, match="disk full.*needs ~.*MB.*free"):
        upload_tracklets(config, _tracklets("cam-b", n=4))
    assert _current_snapshot(config) == before and count_points(config) == 3
    assert not [p for p in config.published_path.iterdir() if p.name.startswith(".tmp")]
    monkeypatch.setattr(index.shutil, "disk_usage", real_usage)
    upload_tracklets(config, _tracklets("cam-b", n=4))
    assert count_points(config) == 7


def test_a_sparse_copy_keeps_the_bytes_and_the_holes(tmp_path):
    """A reader copies each version's WAL: the engine's WAL segments are 32 MB sparse files holding a
    few KB, and a plain copy wrote all 64 MB per reader. The copy must be byte-identical and stay sparse."""
    from storage.reader_copies import copy_sparse

    source, target = tmp_path / "segment", tmp_path / "copy"
    with open(source, "wb") as handle:
        handle.write(b"head" * 1024)
        handle.seek(16 * 2**20)
        handle.write(b"tail" * 1024)
        handle.truncate(32 * 2**20)
    copy_sparse(str(source), str(target))
    assert target.read_bytes() == source.read_bytes()
    assert target.stat().st_blocks * 512 < 4 * 2**20  # holes kept (a filled copy allocates 32 MB)
    empty = tmp_path / "empty"
    with open(empty, "wb") as handle:
        handle.truncate(2**20)
    copy_sparse(str(empty), str(tmp_path / "empty-copy"))
    assert (tmp_path / "empty-copy").read_bytes() == bytes(2**20)


def test_a_reader_on_a_full_disk_is_refused_and_the_loaded_version_kept(tmp_path, monkeypatch, caplog):
    """The engine writes into its private WAL copy on load: on a full disk that was a SIGBUS killing the
    reader process (benchmarks/faults.py diskfull@publish). A reader that has a version keeps serving
    it with a warning; one with none gets a clear disk-full error; with space back, the new version loads."""
    import storage.reader_copies as edge

    config = _config(tmp_path, lock_timeout_s=0.2)
    upload_tracklets(config, _tracklets("cam-a", n=3))
    assert count_points(config) == 3  # this process now holds a reader on the first version
    upload_tracklets(config, _tracklets("cam-b", n=4))
    need = edge.reader_room_needed(_current_snapshot(config))
    assert need >= 2**20  # the WAL's apparent size
    real_usage = shutil.disk_usage
    monkeypatch.setattr(edge.shutil, "disk_usage", lambda path: real_usage(path)._replace(free=need - 1))
    with caplog.at_level("WARNING", logger="storage.index"):
        assert count_points(config) == 3
    assert "cannot be loaded" in caplog.text
    clear_reader_cache()
    with pytest.raises(IndexUnavailableError, match="disk full.*write-ahead log"):
        count_points(config)
    readers = config.published_path / ".readers"
    assert not [p for p in readers.iterdir() if p.name.startswith(f"{os.getpid()}-")]  # nothing left behind
    monkeypatch.setattr(edge.shutil, "disk_usage", real_usage)
    assert count_points(config) == 7


def _bulk(rng: np.random.Generator, start: int, stop: int) -> tuple[list[str], dict[str, np.ndarray], list[dict]]:
    """Points [start, stop) as a bulk load gives them to publish_batches: ids, reid rows, payloads."""
    ids = [point_id("cam-bulk", i) for i in range(start, stop)]
    payloads = [{"camera_id": "cam-bulk", "tracklet_id": i, "start_epoch": float(i), "end_epoch": float(i) + 1}
                for i in range(start, stop)]  # fmt: skip
    return ids, {"reid": _unit(rng, stop - start, REID_DIM)}, payloads


def test_a_version_published_in_batches_equals_one_published_at_once(tmp_path):
    """Bulk loads stream batches so 1M payloads never sit in memory at once: the batches must land
    as the same points, searchable to the same ranking, as one batch holding them all."""
    from storage.index import publish_batches

    rng = np.random.default_rng(11)
    parts = [_bulk(rng, 0, 40), _bulk(rng, 40, 90), _bulk(rng, 90, 97)]
    whole = ([i for p in parts for i in p[0]], {"reid": np.concatenate([p[1]["reid"] for p in parts])},
             [x for p in parts for x in p[2]])  # fmt: skip
    batched, single = _config(tmp_path / "batched"), _config(tmp_path / "single")
    publish_batches(batched, iter(parts), 97, {"reid": REID_DIM})
    publish_batches(single, [whole], 97, {"reid": REID_DIM})
    assert count_points(batched) == count_points(single) == 97
    for row in (3, 45, 96):  # one point of each batch
        query = whole[1]["reid"][row]
        hits = search_vectors(batched, "reid", query, limit=5)
        assert hits[0].point_id == whole[0][row] and hits[0].payload["tracklet_id"] == row
        assert [h.point_id for h in hits] == [h.point_id for h in search_vectors(single, "reid", query, limit=5)]


def test_batches_holding_fewer_points_than_announced_publish_nothing(tmp_path):
    """A bulk source that ends early (a truncated file) must not become the readers' version:
    a clear error, CURRENT unchanged, no half-written temp folder left holding the disk."""
    from storage.index import publish_batches

    rng = np.random.default_rng(12)
    config = _config(tmp_path)
    publish_batches(config, [_bulk(rng, 0, 5)], 5, {"reid": REID_DIM})
    before = _current_snapshot(config)
    with pytest.raises(ValueError, match="held 8 points, 12 announced"):
        publish_batches(config, [_bulk(rng, 0, 4), _bulk(rng, 4, 8)], 12, {"reid": REID_DIM})
    assert _current_snapshot(config) == before and count_points(config) == 5
    assert not [p for p in config.published_path.iterdir() if p.name.startswith(".tmp")]
    with pytest.raises(ValueError, match="one payload and one row"):  # a batch whose columns disagree
        ids, vectors, payloads = _bulk(rng, 0, 4)
        publish_batches(config, [(ids, vectors, payloads[:3])], 4, {"reid": REID_DIM})
    assert _current_snapshot(config) == before


def test_writing_a_big_version_logs_counts_rate_and_eta(caplog):
    """A 1M-point publish runs for many minutes: it must say how far it is, not sit silent."""
    import logging

    from storage.edge_index import _WriteProgress

    caplog.set_level(logging.INFO, logger="smarttrace.index")
    progress = _WriteProgress(200_000)
    for done in range(1024, 200_001, 1024):
        progress.update(done)
    progress.graph()
    progress.done()
    lines = [r.getMessage() for r in caplog.records]
    written = [line for line in lines if "points written" in line]
    assert 9 <= len(written) <= 10 and all("points/s" in line and "ETA" in line for line in written)
    assert written[0].startswith("index version: 20480/200000 points written")
    assert any("building the HNSW graph over 200000" in line for line in lines)
    assert any("graph built in" in line for line in lines)
    caplog.clear()
    small = _WriteProgress(5_000)  # seconds of work: no lines
    small.update(5_000)
    small.graph()
    small.done()
    assert not caplog.records
