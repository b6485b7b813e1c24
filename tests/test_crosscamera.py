"""Cross-camera levers and metrics on small hand-built arrays whose right answer is known."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import DATA, need

from tasks.evaluate_crosscamera import STANDARD_PROTOCOLS, all_gallery, pair_metrics, score_queries
from tasks.reid_datasets import DatasetError, load_images, load_set
from tasks.reid_rerank import center_by_camera, k_reciprocal_distance, l2_normalise, rerank_similarity

SHARED_DATA = DATA  # ../shared/data, or $SMARTTRACE_SHARED_DIR/data


# ------------------------------------------------------------------------------------------ centering


def test_center_by_camera_removes_a_camera_offset_that_hides_identity() -> None:
    """Two people seen by two cameras; camera 2 adds a big common offset. Raw cosine matches each
    camera-2 image to the wrong person; after per-camera centering each person finds themselves."""
    alice, bob = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    offset = np.array([0.0, 0.0, 3.0])
    camera_1 = l2_normalise(np.stack([alice, bob]))
    camera_2 = l2_normalise(np.stack([alice * 0.2 + bob * 0.1 + offset, bob * 0.2 + alice * 0.15 + offset]))
    features = np.concatenate([camera_1, camera_2])
    cameras = np.array(["1", "1", "2", "2"])
    raw = features @ features.T
    assert raw[2, 0] < raw[2, 1] + 0.1 or raw[3, 1] < raw[3, 0] + 0.1  # the offset blurs the identities
    centred = center_by_camera(features, cameras)
    sim = centred @ centred.T
    assert sim[2, 0] > sim[2, 1] and sim[3, 1] > sim[3, 0]
    np.testing.assert_allclose(np.linalg.norm(centred, axis=1), 1.0, atol=1e-6)


def test_center_by_camera_leaves_a_camera_with_too_few_items_alone() -> None:
    features = l2_normalise(np.array([[1.0, 1.0], [1.0, -1.0], [0.3, 1.0]]))
    out = center_by_camera(features, np.array(["a", "a", "b"]), min_items=2)
    np.testing.assert_allclose(out[2], features[2], atol=1e-6)  # camera b has one item: unchanged
    np.testing.assert_allclose(out[0], [0.0, 1.0], atol=1e-6)  # camera a: mean (x, 0) removed


# ------------------------------------------------------------------------------------------ re-ranking


def _hub_case() -> tuple[np.ndarray, np.ndarray]:
    """Query 0's nearest item is a 'hub' (item 1) whose own nearest neighbours are others (3-5); the true
    match (item 2) is second for the query, but the query is first for item 2: only 2 is reciprocal."""
    sim = np.array(
        [
            [1.00, 0.80, 0.78, 0.30, 0.30, 0.30],
            [0.80, 1.00, 0.50, 0.95, 0.95, 0.95],  # the hub's own nearest are 3-5, not the query
            [0.78, 0.50, 1.00, 0.30, 0.30, 0.30],
            [0.30, 0.95, 0.30, 1.00, 0.90, 0.90],
            [0.30, 0.95, 0.30, 0.90, 1.00, 0.90],
            [0.30, 0.95, 0.30, 0.90, 0.90, 1.00],
        ]
    )
    return sim, np.array([0, 9, 0, 1, 2, 3])


def test_rerank_moves_a_true_match_above_a_hub() -> None:
    sim, _persons = _hub_case()
    assert np.argmax(np.where(np.eye(6, dtype=bool), -np.inf, sim)[0]) == 1  # cosine: the hub first
    reranked = rerank_similarity(sim, k1=3, k2=1, lambda_value=0.3)
    assert np.argmax(np.where(np.eye(6, dtype=bool), -np.inf, reranked)[0]) == 2
    np.testing.assert_allclose(reranked, reranked.T, atol=1e-12)


def test_k_reciprocal_distance_is_zero_on_the_diagonal_and_bounded() -> None:
    rng = np.random.default_rng(0)
    features = l2_normalise(rng.normal(size=(12, 4)))
    distance = np.clip(1 - features @ features.T, 0, None)
    np.fill_diagonal(distance, 0)
    final = k_reciprocal_distance(distance, k1=4, k2=2)
    assert final.shape == (12, 12)
    assert np.all(final >= -1e-9) and np.all(final <= 1 + 1e-9)
    assert np.all(np.diag(final) <= final.min(axis=1) + 1e-9)  # nothing is closer to an item than itself


def test_rerank_handles_tiny_pools() -> None:
    assert rerank_similarity(np.zeros((0, 0))).shape == (0, 0)
    out = rerank_similarity(np.array([[1.0, 0.5], [0.5, 1.0]]))
    assert out.shape == (2, 2) and out[0, 1] < out[0, 0]


# ------------------------------------------------------------------------------------------ protocols


def test_all_gallery_scores_only_other_cameras() -> None:
    """A person's same-camera twin would be rank-1 if same-camera images were in the gallery."""
    persons = np.array(["a", "a", "a", "b"])
    cameras = np.array(["1", "1", "2", "2"])
    sim = np.array(
        [
            [1.0, 0.9, 0.2, 0.5],  # query 0: same-camera twin 0.9 ignored; other camera: b 0.5 > a 0.2
            [0.9, 1.0, 0.6, 0.5],  # query 1: a (0.6) first among camera 2
            [0.2, 0.6, 1.0, 0.1],
            [0.5, 0.5, 0.1, 1.0],  # query 3 (b): no b in camera 1 -> not scored
        ]
    )
    figures = all_gallery(sim, persons, cameras)
    assert figures.queries == 3
    assert figures.rank1 == pytest.approx(2 / 3)  # query 0 misses, queries 1 and 2 hit
    # AP: query 0 ranks a second (0.5 for its two camera-1 matches? no: camera 2 holds one a) -> 1/2
    assert figures.mAP == pytest.approx((0.5 + 1.0 + 1.0) / 3)


def test_score_queries_breaks_ties_pessimistically() -> None:
    figures = score_queries(np.array([[0.5, 0.5]]), np.array(["a"]), np.array(["b", "a"]))
    assert figures.rank1 == 0.0 and figures.rank5 == 1.0


def _synthetic(name: str) -> pd.DataFrame:
    rows = []
    if name == "viper":
        rows = [(f"{p:03d}_0_{c}.png", str(p), str(c)) for p in range(632) for c in (1, 2)]
    elif name == "prid":
        rows = [(f"{p:04d}_a.png", str(p), "a") for p in range(1, 386)]
        rows += [(f"{p:04d}_b.png", str(p), "b") for p in list(range(1, 201)) + list(range(386, 935))]
    elif name == "grid":
        rows = [(f"{p:04d}_{c}_1_1_1_1_1.jpeg", str(p), str(c)) for p in range(1, 251) for c in (1, 2)]
        rows += [(f"{p:04d}_3_1_1_1_1_1.jpeg", str(p), "3") for p in range(251, 1026)]
    elif name == "cuhk03":
        rows = [(f"{p:04d}_c{c}_{k}.jpg", str(p), str(c)) for p in range(100) for c in (1, 2) for k in range(4)]
    return pd.DataFrame(rows, columns=["path", "person", "camera"])


@pytest.mark.parametrize(
    ("name", "probes", "gallery"), [("viper", 316, 316), ("prid", 100, 649), ("grid", 125, 900), ("cuhk03", 100, 100)]
)
def test_standard_protocol_sizes_match_the_literature(name: str, probes: int, gallery: int) -> None:
    images = _synthetic(name)
    splitter = STANDARD_PROTOCOLS[name][0]
    probe, gallery_index = splitter(images, np.random.default_rng(1))
    assert (len(probe), len(gallery_index)) == (probes, gallery)
    probe_people = set(images.person[probe])
    assert probe_people <= set(images.person[gallery_index])  # every probe has its match in the gallery
    assert not set(probe) & set(gallery_index)
    assert len(set(images.camera[probe]) & set(images.camera[gallery_index])) == 0 or name == "grid"


# ------------------------------------------------------------------------------------------ identities


def test_pair_metrics_on_a_known_assignment() -> None:
    # people: p1 in cams A,B; p2 in A,B; p3 only in A. Global ids: p1 whole; p2 split; p3 merged into p1.
    persons = np.array(["p1", "p1", "p2", "p2", "p3"])
    cameras = np.array(["A", "B", "A", "B", "A"])
    global_ids = np.array([1, 1, 2, 3, 1])
    m = pair_metrics(persons, cameras, global_ids)
    # cross-camera pairs predicted same: (0,1) ok, (1,4) stranger -> 2 predicted, 1 correct; true pairs: 2
    assert (m.predicted_pairs, m.correct_pairs, m.true_pairs) == (2, 1, 2)
    assert m.precision == pytest.approx(0.5) and m.recall == pytest.approx(0.5) and m.f1 == pytest.approx(0.5)
    assert m.people_multi_camera == 2 and m.people_whole == 0  # p1's id also holds p3; p2 is split
    assert m.false_merges == 1 and m.global_ids == 3


def test_pair_metrics_perfect_assignment() -> None:
    m = pair_metrics(np.array(["a", "a", "b", "b"]), np.array(["1", "2", "1", "2"]), np.array([5, 5, 7, 7]))
    assert (m.precision, m.recall, m.f1, m.whole_share, m.false_merges) == (1.0, 1.0, 1.0, 1.0, 0)


# ------------------------------------------------------------------------------------------ data sets


def test_load_set_parses_names_and_skips_bad_files(tmp_path: Path) -> None:
    folder = tmp_path / "CUHK03" / "labeled_val"
    folder.mkdir(parents=True)
    image = np.full((32, 16, 3), 128, np.uint8)
    for name in ("0001_c1_001.jpg", "0001_c2_001.jpg", "0002_c1_001.jpg"):
        cv2.imwrite(str(folder / name), image)
    (folder / "notes.jpg").write_bytes(b"x")  # wrong naming
    (folder / "0003_c1_001.jpg").write_bytes(b"")  # empty
    (folder / "0004_c2_001.jpg").write_bytes(b"not a jpeg")  # unreadable
    reid_set = load_set("cuhk03", tmp_path)
    assert list(reid_set.images.person) == ["1", "1", "2", "4"]
    assert list(reid_set.images.camera) == ["1", "2", "1", "2"]
    assert any("notes.jpg" in s and "naming" in s for s in reid_set.skipped)
    assert any("0003_c1_001.jpg" in s and "empty" in s for s in reid_set.skipped)
    crops, reid_set = load_images(reid_set)
    assert len(crops) == 3 and len(reid_set.images) == 3
    assert any("0004_c2_001.jpg" in s and "readable" in s for s in reid_set.skipped)


def test_load_set_names_a_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="VIPeR.*does not exist"):
        load_set("viper", tmp_path)
    (tmp_path / "PETA" / "PRID" / "archive").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no prid images"):
        load_set("prid", tmp_path)
    with pytest.raises(DatasetError, match="unknown ReID set"):
        load_set("market", tmp_path)


@pytest.mark.parametrize(
    ("name", "images", "people"), [("viper", 1264, 632), ("prid", 1134, 934), ("grid", 1275, 1025)]
)
def test_real_sets_have_their_published_sizes(name: str, images: int, people: int) -> None:
    need(SHARED_DATA / "PETA")  # fails instead of skipping under CI's SMARTTRACE_REQUIRE_DATA=1
    reid_set = load_set(name, SHARED_DATA)
    assert (len(reid_set.images), reid_set.num_people) == (images, people)
    assert reid_set.skipped == []


# ------------------------------------------------------------------------------------------ matcher


def _two_camera_table(offset_scale: float) -> pd.DataFrame:
    """6 people seen once by camera A and once by camera B, B with a shared colour-cast offset."""
    rng = np.random.default_rng(3)
    people = l2_normalise(rng.normal(size=(6, 16)))
    offset = l2_normalise(rng.normal(size=(1, 16)))[0] * offset_scale
    seen_b = l2_normalise(people + 0.15 * l2_normalise(rng.normal(size=(6, 16))) + offset)
    stamp = pd.Timestamp("2026-01-01", tz="UTC")
    rows = [
        {"camera_id": camera, "person_id": i + 1, "reid_embedding": vector.tolist(), "num_crops": 1,
         "start_timestamp": stamp, "end_timestamp": stamp, "who": i}
        for camera, vectors in (("A", people), ("B", seen_b))
        for i, vector in enumerate(vectors)
    ]
    return pd.DataFrame(rows)


def test_match_cross_camera_centering_recovers_people_behind_a_camera_offset() -> None:
    from smarttrace.config import MatchConfig
    from tasks.match_identities import match_cross_camera

    table = _two_camera_table(offset_scale=2.0)
    plain = match_cross_camera(table, MatchConfig(cross_camera_centering=False, cross_camera_min_similarity=0.6))
    centred = match_cross_camera(table, MatchConfig(cross_camera_centering=True, cross_camera_min_similarity=0.6))
    def correct_pairs(ids: pd.Series) -> int:
        return sum(ids[(table.camera_id == "A") & (table.who == i)].iloc[0]
                   == ids[(table.camera_id == "B") & (table.who == i)].iloc[0] for i in range(6))
    assert correct_pairs(plain) < 6  # the offset pushes every cross-camera cosine below the threshold
    assert correct_pairs(centred) == 6 and centred.nunique() == 6


def test_match_cross_camera_skips_centering_for_cameras_with_few_persons() -> None:
    from smarttrace.config import MatchConfig
    from tasks.match_identities import match_cross_camera

    table = _two_camera_table(offset_scale=0.0).groupby("camera_id").head(3).reset_index(drop=True)
    on = match_cross_camera(table, MatchConfig(cross_camera_centering=True, cross_camera_centering_min_persons=5))
    off = match_cross_camera(table, MatchConfig(cross_camera_centering=False))
    assert on.tolist() == off.tolist()


def test_camera_bn_vectors_move_with_the_cameras_look_and_leave_the_trained_statistics(models_dir: Path) -> None:
    from tasks.embed_reid import ReidEmbedder

    rng = np.random.default_rng(5)
    # A "camera" with a strong colour cast: its own BN statistics must move the features.
    crops = [np.clip(rng.normal(60, 30, (96, 48, 3)) + [0, 0, 120], 0, 255).astype(np.uint8) for _ in range(24)]
    embedder = ReidEmbedder(str(models_dir / "osnet_x0_25_msmt17.pt"), batch_size=12)
    before = embedder(crops)
    own = embedder.embed_camera_bn(crops)
    np.testing.assert_allclose(embedder(crops), before, atol=1e-5)  # trained statistics untouched
    assert float(np.mean(np.sum(own * before, axis=1))) < 0.999
    np.testing.assert_allclose(np.linalg.norm(own, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.embed_camera_bn(crops), own, atol=1e-6)  # re-runs give the same vectors
    with pytest.raises(ValueError, match="at least 2 crops"):
        embedder.embed_camera_bn(crops[:1])


def test_mutual_best_keeps_only_pairs_that_choose_each_other() -> None:
    from tasks.match_identities import mutual_best

    # camera A: items 0, 1; camera B: items 2, 3. 0's best in B is 2 and 2's best in A is 0 -> kept.
    # 1's best in B is also 2 (a look-alike), but 2 prefers 0 -> (1, 2) dropped; 3's best in A is 1 but
    # 1 prefers 2 -> (1, 3) dropped too. Item 4 has no embedding: never kept.
    sim = np.array(
        [
            [1.0, 0.2, 0.9, 0.1, 0.0],
            [0.2, 1.0, 0.8, 0.7, 0.0],
            [0.9, 0.8, 1.0, 0.3, 0.0],
            [0.1, 0.7, 0.3, 1.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0],
        ]
    )
    cameras = np.array(["A", "A", "B", "B", "B"])
    present = np.array([True, True, True, True, False])
    ok = mutual_best(sim, cameras, present)
    assert {(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(ok)), strict=True)} == {(0, 2)}
    np.testing.assert_array_equal(ok, ok.T)
