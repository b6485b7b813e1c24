"""Delta publishing: an upload on top of a published version becomes a small part, and readers see the
same index as a full republish would give (real embedded engine, real local-mode live/ folder)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from storage import index as index_module
from storage.attribute_vectors import attribute_terms
from storage.index import (
    IndexConfig,
    clear_reader_cache,
    count_points,
    current_version,
    delete_camera_points,
    payload_columns,
    point_id,
    scroll_all,
    search_vectors,
    upload_tracklets,
)
from storage.index_parts import (
    PARTS_FILE,
    DeltaPolicy,
    Part,
    exclusions,
    plan_publish,
    version_parts,
)
from storage.schemas import ATTRIBUTE_VOCABULARY
from tasks.text_query import parse_description
from tests.test_index import REID_DIM, _tracklets

POLICY = DeltaPolicy(min_points=10, max_parts=3, max_share=0.5)


@pytest.fixture(autouse=True)
def _fresh_reader_cache():
    yield
    clear_reader_cache()


def _config(path: Path, delta: bool = True, **overrides) -> IndexConfig:
    """delta=False: every upload writes a full version (the reference the delta index must equal). Deltas of
    any size here: the test indexes are far smaller than the product's thresholds."""
    overrides.setdefault("max_delta_share", 100.0)
    return IndexConfig.for_run_dir(path, reid_dim=REID_DIM, delta_min_points=0 if delta else 10**9, **overrides)


def _probs(n: int, seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.02, 0.98, (n, len(ATTRIBUTE_VOCABULARY))).round(3).tolist()


def _cam(camera: str, n: int, seed: int, first_id: int = 0):
    return _tracklets(camera, n=n, seed=seed, first_id=first_id, attribute_probs=_probs(n, seed + 100))


# ---------------------------------------------------------------------------------------- pure rules


def test_plan_publish_rules():
    base = Part("v1", 100)
    assert plan_publish(None, {"a"}, POLICY).kind == "full"
    assert plan_publish([Part("v1", 5)], {"a"}, POLICY).kind == "full"  # base under min_points
    plan = plan_publish([base], {"a", "b"}, POLICY)
    assert (plan.kind, plan.keep, plan.touched) == ("append", (base,), frozenset({"a", "b"}))
    deltas = [Part("p1", 2, frozenset({"a", "b"})), Part("p2", 1, frozenset({"c"}), frozenset({"x"}))]
    assert plan_publish([base, *deltas], {"d"}, POLICY).kind == "append"  # a third delta: max_parts 3 allows it
    more = [*deltas, Part("p3", 1, frozenset({"e"}))]
    merged = plan_publish([base, *more], {"d"}, POLICY)
    assert merged.kind == "merge" and merged.keep == (base,)
    assert merged.touched == frozenset({"a", "b", "c", "x", "e", "d"})  # every id a delta stated, and the new one
    assert plan_publish([base], {str(i) for i in range(51)}, POLICY).kind == "full"  # > half the base


def test_exclusions_hide_ids_only_in_older_parts():
    parts = [Part("v1", 10), Part("p1", 2, frozenset({"a", "b"})), Part("p2", 1, frozenset({"a"}), frozenset({"b"}))]
    assert exclusions(parts) == [frozenset({"a", "b"}), frozenset({"a", "b"}), frozenset()]
    # p1 holds b, but p2 deleted b: p1's copy must be hidden too; p2 (newest) hides nothing
    readded = [Part("v1", 10), Part("p1", 0, frozenset(), frozenset({"a"})), Part("p2", 1, frozenset({"a"}))]
    assert exclusions(readded)[2] == frozenset()  # re-added after a delete: the newest copy is served


# ---------------------------------------------------------------------------------------- end to end


def _uploads(config: IndexConfig) -> None:
    """A sequence a pipeline makes: two cameras, then camera A re-run with fewer, changed tracklets."""
    upload_tracklets(config, _cam("cam-a", 12, seed=1))
    upload_tracklets(config, _cam("cam-b", 6, seed=2))
    upload_tracklets(config, _cam("cam-a", 8, seed=3), prune_orphans=True)  # 4 tracklets gone, 8 changed


def _top(config: IndexConfig, query: np.ndarray, **kwargs) -> list[tuple[str, float]]:
    return [(h.point_id, round(h.score, 5)) for h in search_vectors(config, "reid", query, limit=10, **kwargs)]


def test_delta_versions_serve_what_a_full_republish_serves(tmp_path: Path):
    delta, full = _config(tmp_path / "delta"), _config(tmp_path / "full", delta=False)
    for config in (delta, full):
        _uploads(config)
    parts = version_parts(delta.published_path, str(current_version(delta)))
    assert [p.points is None for p in parts] == [True, False, False]  # base + two deltas, no full rewrite
    assert version_parts(full.published_path, str(current_version(full)))[0].points is None
    assert count_points(delta) == count_points(full) == 14
    ids = [pid for pid, _ in scroll_all(delta)]
    assert len(ids) == len(set(ids)) == 14  # no id served twice after an update
    assert point_id("cam-a", 10) not in ids  # pruned by the re-run
    rng = np.random.default_rng(5)
    for _ in range(5):
        query = rng.standard_normal(REID_DIM).astype(np.float32)
        assert _top(delta, query) == _top(full, query)
        assert _top(delta, query, camera_ids=["cam-a"]) == _top(full, query, camera_ids=["cam-a"])
    terms = attribute_terms(parse_description("woman with a backpack, no hat").constraints)
    for config_pair in ((delta, full),):
        got = [payload_columns(c, attribute_query=terms, candidates=5).ids for c in config_pair]
        assert got[0] == got[1]
    payloads = dict(scroll_all(delta))
    changed = _cam("cam-a", 8, seed=3)
    assert payloads[point_id("cam-a", 0)]["attribute_probs"] == pytest.approx(
        changed.column("attribute_probs")[0].as_py(), abs=1e-3)  # the updated copy, not the base's


def test_reader_loads_only_the_new_part(tmp_path: Path):
    config = _config(tmp_path)
    upload_tracklets(config, _cam("cam-a", 12, seed=1))
    assert count_points(config) == 12
    reader = index_module._reader(config)
    base = reader.parts[0].folder
    base_reader = reader.readers[base]
    upload_tracklets(config, _cam("cam-b", 3, seed=2))
    assert count_points(config) == 15  # the next query serves the new version
    newer = index_module._reader(config)
    assert newer is not reader and newer.readers[base] is base_reader  # the base was not loaded again
    hit = search_vectors(config, "reid", np.asarray(_cam("cam-b", 3, seed=2).column("reid_embedding")[1].as_py()),
                         limit=1)[0]  # fmt: skip
    assert hit.point_id == point_id("cam-b", 1) and hit.score == pytest.approx(1.0, abs=1e-5)


def test_deletion_only_session_and_merge(tmp_path: Path):
    config = _config(tmp_path, max_delta_parts=2)
    upload_tracklets(config, _cam("cam-a", 12, seed=1))
    upload_tracklets(config, _cam("cam-b", 3, seed=2))
    assert delete_camera_points(config, "cam-a", keep_ids=range(10)) == 2
    assert count_points(config) == 13
    assert point_id("cam-a", 11) not in dict(scroll_all(config))
    parts = version_parts(config.published_path, str(current_version(config)))
    gone = {point_id("cam-a", 10), point_id("cam-a", 11)}
    assert len(parts) == 3 and parts[2].folder == "" and parts[2].removed == gone  # deletions only: no shard
    deleted = np.asarray(_cam("cam-a", 12, seed=1).column("reid_embedding")[11].as_py(), np.float32)
    assert point_id("cam-a", 11) not in [h.point_id for h in search_vectors(config, "reid", deleted, limit=13)]
    terms = attribute_terms(parse_description("woman").constraints)
    assert not gone & set(payload_columns(config, attribute_query=terms, candidates=13).ids)
    upload_tracklets(config, _cam("cam-c", 2, seed=4))  # a third delta would pass max_delta_parts 2: merged
    parts = version_parts(config.published_path, str(current_version(config)))
    assert len(parts) == 2 and gone <= parts[1].removed and point_id("cam-b", 0) in (parts[1].points or ())
    assert count_points(config) == 15 and point_id("cam-a", 11) not in dict(scroll_all(config))
    on_disk = {p.name for p in config.published_path.iterdir() if p.is_dir() and not p.name.startswith(".")}
    current = str(current_version(config))
    assert current in on_disk and {p.folder for p in parts if p.folder} <= on_disk
    # a delta part no kept version reads is removed
    kept = set()
    for version in (v for v in on_disk if v.startswith("v")):
        kept |= {p.folder for p in version_parts(config.published_path, version)}
    assert {d for d in on_disk if d.startswith("p")} <= kept


def test_untracked_change_publishes_a_full_version(tmp_path: Path):
    config = _config(tmp_path)
    upload_tracklets(config, _cam("cam-a", 12, seed=1))
    from storage.index import open_client

    with open_client(config) as client:  # a change outside upload_tracklets: ids unknown, so a full version
        client.delete(config.collection, points_selector=[point_id("cam-a", 0)])
    version = current_version(config)
    assert not (config.published_path / str(version) / PARTS_FILE).exists()
    assert count_points(config) == 11


def test_a_missing_delta_part_is_never_served(tmp_path: Path, caplog, monkeypatch):
    config = _config(tmp_path, lock_timeout_s=0.5)
    upload_tracklets(config, _cam("cam-a", 12, seed=1))
    assert count_points(config) == 12  # a reader serves the base
    import storage.index_versions as versions

    real_point = versions._point_current

    def tear(published: Path, version: str) -> None:  # the delta's folder vanishes before readers load it
        for part in version_parts(published, version)[1:]:
            shutil.rmtree(published / part.folder)
        real_point(published, version)

    monkeypatch.setattr(versions, "_point_current", tear)  # fault injection: the delta torn after its write
    upload_tracklets(config, _cam("cam-b", 3, seed=2))
    monkeypatch.undo()
    assert count_points(config) == 12  # the previous version is still served, whole
    assert "cannot be loaded" in caplog.text
    clear_reader_cache()
    with pytest.raises(Exception, match="cannot load the published index version"):
        count_points(config)  # a fresh reader refuses the torn version instead of serving the base alone


def test_deletions_on_the_base_alone_are_hidden_from_every_query(tmp_path: Path):
    config = _config(tmp_path)
    table = _cam("cam-a", 12, seed=1)
    upload_tracklets(config, table)
    assert delete_camera_points(config, "cam-a", keep_ids=range(11)) == 1
    parts = version_parts(config.published_path, str(current_version(config)))
    assert [p.folder for p in parts][1:] == [""]  # the base and a deletion, no new shard
    gone = point_id("cam-a", 11)
    deleted = np.asarray(table.column("reid_embedding")[11].as_py(), np.float32)
    assert gone not in [h.point_id for h in search_vectors(config, "reid", deleted, limit=12)]
    terms = attribute_terms(parse_description("woman").constraints)
    assert gone not in payload_columns(config, attribute_query=terms, candidates=12).ids
    assert count_points(config) == 11 and gone not in dict(scroll_all(config))
