"""Tracklet linking: joins a person across a short gap, refuses impostors and overlaps."""

import numpy as np

from tasks.crop_sampler import CropSampler
from tasks.link_tracklets import LinkParams, TrackletEnds, link_tracklets

FPS = 7.0


def _unit(*values):
    v = np.array(values, np.float64)
    return v / np.linalg.norm(v)


def _t(track_id, first, last, x_first, x_last, look, height=80.0):
    return TrackletEnds(
        track_id, first, last, np.array([x_first, 300.0]), np.array([x_last, 300.0]), height, height, look
    )


def test_reappearance_nearby_and_alike_is_linked():
    a = _t(1, 0, 50, 100, 200, _unit(1, 0, 0))
    b = _t(2, 60, 120, 230, 400, _unit(0.98, 0.2, 0))
    assert link_tracklets([a, b], FPS, LinkParams()) == {1: 1, 2: 1}


def test_lookalike_too_far_away_for_the_gap_is_not_linked():
    a = _t(1, 0, 50, 100, 200, _unit(1, 0, 0))
    b = _t(2, 53, 120, 700, 750, _unit(1, 0, 0))  # 500 px in 3 frames
    assert link_tracklets([a, b], FPS, LinkParams()) == {1: 1, 2: 2}


def test_different_appearance_is_not_linked():
    a = _t(1, 0, 50, 100, 200, _unit(1, 0, 0))
    b = _t(2, 55, 120, 210, 400, _unit(0, 1, 0))
    assert link_tracklets([a, b], FPS, LinkParams()) == {1: 1, 2: 2}


def test_overlapping_tracklets_are_never_linked():
    a = _t(1, 0, 50, 100, 200, _unit(1, 0, 0))
    b = _t(2, 40, 120, 200, 400, _unit(1, 0, 0))
    assert link_tracklets([a, b], FPS, LinkParams()) == {1: 1, 2: 2}


def test_gap_longer_than_limit_is_not_linked():
    a = _t(1, 0, 50, 100, 200, _unit(1, 0, 0))
    b = _t(2, 50 + int(6 * FPS), 200, 200, 400, _unit(1, 0, 0))
    assert link_tracklets([a, b], FPS, LinkParams(max_gap_s=5)) == {1: 1, 2: 2}


def test_each_tracklet_gets_one_successor_the_most_similar_and_chains_follow():
    a = _t(1, 0, 50, 100, 200, _unit(1, 0, 0))
    b_best = _t(2, 55, 80, 210, 260, _unit(1, 0.05, 0))
    b_other = _t(3, 56, 90, 215, 300, _unit(1, 0.5, 0))
    c = _t(4, 85, 150, 265, 400, _unit(1, 0.04, 0))
    mapping = link_tracklets([a, b_best, b_other, c], FPS, LinkParams())
    assert mapping == {1: 1, 2: 1, 3: 3, 4: 1}


def test_crop_sampler_keeps_a_bounded_sample_spread_over_the_track():
    sampler = CropSampler(per_track=4, min_height=10)
    frame = np.zeros((100, 100, 3), np.uint8)
    for index in range(100):
        frame[:] = index
        sampler.offer(7, index, np.array([10, 10, 30, 60]), frame)
    sampled = sampler.sample(7)
    assert len(sampled) == 4
    first_pixels = [int(c[0, 0, 0]) for c in sampled]
    assert first_pixels[0] < 10 and first_pixels[-1] > 50  # spread over the life, not the start
    assert len(sampler.crops[7]) < 8  # memory stays bounded


def test_crop_sampler_skips_edge_cut_and_tiny_boxes():
    sampler = CropSampler(per_track=4, min_height=40)
    frame = np.zeros((100, 100, 3), np.uint8)
    sampler.offer(1, 0, np.array([0, 10, 20, 90]), frame)  # touches the left edge
    sampler.offer(1, 1, np.array([10, 10, 20, 30]), frame)  # 20 px tall
    assert sampler.sample(1) == []
