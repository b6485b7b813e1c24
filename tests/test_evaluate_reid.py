"""Tests of tasks.evaluate_reid: AP/CMC on hand-computed cases, the intra-camera protocol's invariants on
PETS09-S2L1, aggregation options on a hand-made protocol, and one real OSNet run."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.evaluate_reid import (
    ReidProtocol,
    average_precision,
    build_reid_protocol,
    cmc,
    embed_crops,
    evaluate_reid,
)

PETS_FPS = 7.0


# ------------------------------------------------------------------------------------------ AP and CMC


def test_average_precision_and_cmc_on_hand_computed_rankings():
    # Ranked by similarity: miss, hit, miss, hit -> precisions at the hits 1/2 and 2/4, AP = 0.5.
    sims = np.array([0.6, 0.8, 0.9, 0.7])  # deliberately not in rank order
    matches = np.array([True, True, False, False])
    assert average_precision(sims, matches) == pytest.approx((1 / 2 + 2 / 4) / 2)
    np.testing.assert_array_equal(cmc(sims, matches, max_rank=5), [0, 1, 1, 1, 1])
    # Only the last of three is a match: AP = 1/3, first hit at rank 3.
    assert average_precision([0.3, 0.2, 0.1], [False, False, True]) == pytest.approx(1 / 3)
    np.testing.assert_array_equal(cmc([0.3, 0.2, 0.1], [False, False, True], max_rank=3), [0, 0, 1])
    # Perfect ranking.
    assert average_precision([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    np.testing.assert_array_equal(cmc([0.9, 0.8, 0.1], [True, True, False], max_rank=1), [1])


def test_ties_are_broken_pessimistically_and_missing_matches_raise():
    # A match tied with a non-match must not win the tie (that would inflate scores of a constant embedder).
    assert average_precision([0.5, 0.5], [True, False]) == pytest.approx(0.5)
    np.testing.assert_array_equal(cmc([0.5, 0.5], [True, False], max_rank=2), [0, 1])
    with pytest.raises(ValueError, match="no match"):
        average_precision([0.1, 0.2], [False, False])
    with pytest.raises(ValueError, match="no match"):
        cmc([0.1, 0.2], [False, False])
    with pytest.raises(ValueError, match="differ in length"):
        average_precision([0.1, 0.2], [True])


# --------------------------------------------------------------------------------------------- protocol


def _pets_protocol(pets_dir, **kwargs) -> ReidProtocol:
    return build_reid_protocol(pets_dir / "vtest.avi", pets_dir / "gt" / "gt.txt", PETS_FPS, **kwargs)


def test_protocol_queries_are_first_appearances_and_exclusion_window_is_respected(pets_dir):
    p = _pets_protocol(pets_dir, max_frames=150)
    assert p.protocol == "intra-camera" and p.sequence == "PETS09-S2L1"
    assert p.exclusion_frames == 14  # 2 s at 7 fps
    assert p.frames.max() <= 150 and len(p.crops) == len(p.ids) == len(p.frames)
    assert all(c.shape[0] >= 40 and c.dtype == np.uint8 and c.ndim == 3 for c in p.crops)
    assert set(p.queries).isdisjoint(p.skipped_ids)
    assert set(p.queries) | set(p.skipped_ids) == set(np.unique(p.ids).tolist())
    gallery_ids = p.ids[p.gallery]
    assert len(p.gallery) == len(set(p.gallery.tolist()))  # no crop twice
    for identity, query in p.queries.items():
        assert query.size == 8 and (p.ids[query] == identity).all()
        own = np.flatnonzero(p.ids == identity)
        # The query is the identity's first appearance: its first 8 usable boxes.
        np.testing.assert_array_equal(np.sort(p.frames[query]), np.sort(p.frames[own])[:8])
        assert not set(query.tolist()) & set(p.gallery.tolist())
        first, last = p.query_window(identity)
        own_gallery_frames = p.frames[p.gallery[gallery_ids == identity]]
        # Every positive lies after the exclusion window, and at least one exists (else the id is skipped).
        assert own_gallery_frames.size > 0
        assert (own_gallery_frames > last + p.exclusion_frames).all()
        assert identity in p.gallery_tracklet_ids
    for identity in p.skipped_ids:
        assert identity not in gallery_ids
    # Gallery tracklets: one identity each, <= 8 boxes in frame order, together exactly the gallery.
    for members, identity in zip(p.gallery_tracklets, p.gallery_tracklet_ids, strict=True):
        assert 1 <= members.size <= 8 and (p.ids[members] == identity).all()
        assert (np.diff(p.frames[members]) > 0).all()
    np.testing.assert_array_equal(np.sort(np.concatenate(p.gallery_tracklets)), np.sort(p.gallery))


def test_ids_without_gallery_left_are_skipped_and_counted(pets_dir):
    # A 25 s exclusion window is longer than 150 frames (21 s): no identity keeps a positive.
    p = _pets_protocol(pets_dir, max_frames=150, exclusion_s=25.0)
    assert p.skipped_ids and not p.queries
    scores = evaluate_reid(p, None, "multi", features=np.eye(len(p.crops), 4, dtype=np.float32))
    assert scores.num_queries == 0 and scores.num_skipped_ids == len(p.skipped_ids)
    assert np.isnan(scores.rank1)


def test_identity_features_score_perfectly_and_random_ones_do_not(pets_dir):
    p = _pets_protocol(pets_dir, max_frames=150)
    ids = np.unique(p.ids)
    oracle = (p.ids[:, None] == ids[None]).astype(np.float32)  # one-hot identity "embedding"
    for mode in ("single", "multi"):
        scores = evaluate_reid(p, None, mode, features=oracle)
        assert (scores.map, scores.rank1, scores.rank5) == (1.0, 1.0, 1.0)
        assert scores.num_queries == len(p.queries)
        assert scores.num_gallery == (len(p.gallery) if mode == "single" else len(p.gallery_tracklets))
        assert scores.to_dict()["protocol"] == "intra-camera" and scores.to_dict()["mode"] == mode
    noise = np.random.default_rng(0).normal(size=(len(p.crops), 32)).astype(np.float32)
    assert evaluate_reid(p, None, "multi", features=noise).map < 0.4  # about 0.17 by chance
    with pytest.raises(ValueError, match="mode"):
        evaluate_reid(p, None, "pairs", features=oracle)


# ------------------------------------------------------------------------------ aggregation options


def _hand_protocol() -> tuple[ReidProtocol, np.ndarray]:
    """Query of id 1 = crops 0 (tall, clear, looks like id 1) and 1 (short, overlapped, looks like id 2)."""
    s = 1 / np.sqrt(1.04)
    features = np.array([[1, 0], [0, 1], [0, 1], [0, 1], [s, 0.2 * s], [0.2 * s, s]], np.float32)
    protocol = ReidProtocol(
        sequence="hand",
        fps=10.0,
        crops=[np.zeros((60, 30, 3), np.uint8)] * 6,
        ids=np.array([1, 1, 2, 2, 1, 2]),
        frames=np.array([1, 2, 1, 2, 50, 50]),
        heights=np.array([100.0, 10.0, 50.0, 50.0, 50.0, 50.0]),
        overlap=np.array([0.0, 0.5, 0.0, 0.0, 0.0, 0.0]),
        queries={1: np.array([0, 1]), 2: np.array([2, 3])},
        gallery_tracklets=[np.array([4]), np.array([5])],
        gallery_tracklet_ids=np.array([1, 2]),
        gallery=np.array([4, 5]),
        skipped_ids=(),
        exclusion_frames=20,
    )
    return protocol, features


def test_height_weighting_and_overlap_filter_change_templates_not_the_gallery():
    p, f = _hand_protocol()
    # Plain mean of id 1's query is (1, 1)/sqrt(2): tied between both gallery tracklets, lost pessimistically.
    plain = evaluate_reid(p, None, "multi", features=f)
    assert plain.rank1 == 0.5 and plain.num_gallery == 2
    assert evaluate_reid(p, None, "multi", features=f, height_weighted=True).rank1 == 1.0
    assert evaluate_reid(p, None, "multi", features=f, max_overlap_iou=0.3).rank1 == 1.0
    # Single mode takes the middle crop (index 1 of 2): the overlapped one, unless the filter is on.
    assert evaluate_reid(p, None, "single", features=f).rank1 == 0.5
    filtered = evaluate_reid(p, None, "single", features=f, max_overlap_iou=0.3)
    assert filtered.rank1 == 1.0 and filtered.num_gallery == 2 and "max_overlap_iou=0.3" in filtered.options


def test_flip_augmentation_averages_the_mirrored_crop():
    p, _ = _hand_protocol()
    crop = np.zeros((8, 4, 3), np.uint8)
    crop[:, :2] = 255  # bright left half
    p.crops = [crop] * len(p.crops)

    def left_right(crops):
        return np.array([[c[:, :2].mean() + 1, c[:, 2:].mean() + 1] for c in crops], np.float32)

    plain = embed_crops(p, left_right)
    flipped = embed_crops(p, left_right, flip=True)
    assert plain[0, 0] > 0.99
    np.testing.assert_allclose(flipped[0], [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(flipped, axis=1), 1.0, atol=1e-6)


# ------------------------------------------------------------------------------------------ real run


def test_osnet_on_pets_first_300_frames(pets_dir):
    from tasks.embed_reid import ReidEmbedder

    p = _pets_protocol(pets_dir, max_frames=300)
    features = embed_crops(p, ReidEmbedder())
    single = evaluate_reid(p, None, "single", features=features)
    multi = evaluate_reid(p, None, "multi", features=features)
    assert single.num_queries == multi.num_queries >= 8
    for scores in (single, multi):
        assert 0.0 < scores.map <= 1.0 and scores.rank1 <= scores.rank5 <= 1.0
        # Far above chance (about 1 in 10 identities); a broken crop cut or id mix-up lands near chance.
        assert scores.rank1 >= 0.5 and scores.map >= 0.4
    # Averaging a tracklet must not lose to one crop. Asserted on mAP (every positive counts): rank-1 over
    # ~10 queries moves in steps of 0.1 and is too coarse to compare modes (here single 0.9, multi 0.8).
    assert multi.map >= single.map - 0.05
