"""Clothing colours: canonical palette samples, pose-driven regions, fallbacks, aggregation, real video."""

import cv2
import numpy as np
import pandas as pd
import pytest

from storage.schemas import COLOR_NAMES
from tasks.attributes import Attributes, body_regions, color_histogram, describe_person, dominant_color

# BGR samples we consider canonical for each palette colour (what a person would call it).
CANONICAL_BGR = {
    "black": [(0, 0, 0), (30, 30, 30), (40, 35, 45), (60, 60, 60)],
    "white": [(255, 255, 255), (240, 240, 240), (230, 235, 235)],
    "grey": [(128, 128, 128), (170, 170, 170), (90, 90, 90), (150, 140, 140)],  # mid, light, dark, bluish
    "red": [(0, 0, 255), (40, 40, 200), (0, 0, 128), (60, 20, 220), (30, 30, 150)],  # pure, dull, maroon, crimson
    "orange": [(0, 140, 255), (0, 100, 230), (30, 105, 210), (0, 165, 255)],
    "yellow": [(0, 255, 255), (0, 215, 255), (88, 219, 255)],  # pure, gold, mustard
    "green": [(0, 128, 0), (0, 255, 0), (50, 205, 50), (0, 100, 0), (87, 139, 46)],  # ..., dark, sea green
    "blue": [(255, 0, 0), (128, 0, 0), (80, 30, 20), (160, 110, 70), (180, 150, 120), (225, 105, 65)],
    # pure, navy, dark navy, denim, faded denim, royal blue
    "purple": [(128, 0, 128), (211, 0, 148), (238, 130, 238), (130, 50, 100)],  # ..., violet, plum
    "pink": [(203, 192, 255), (193, 182, 255), (180, 105, 255), (147, 20, 255), (170, 150, 240)],  # light, hot, deep
    "brown": [(19, 69, 139), (33, 67, 101), (45, 82, 120), (30, 60, 90)],  # saddle brown, dark browns
    "beige": [(140, 230, 240), (140, 180, 210), (175, 200, 220), (160, 200, 230)],  # khaki, tan, beige
}

H, W = 160, 64


def _keypoints(visible: bool = True, box_origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """A standing person filling a 64x160 box: shoulders y=35, hips y=80, knees y=115, ankles y=150."""
    ox, oy = box_origin
    kp = np.zeros((17, 3), np.float32)
    xy = {
        0: (32, 15), 1: (30, 12), 2: (34, 12), 3: (28, 14), 4: (36, 14),
        5: (18, 35), 6: (46, 35), 7: (14, 58), 8: (50, 58), 9: (12, 78), 10: (52, 78),
        11: (22, 80), 12: (42, 80), 13: (22, 115), 14: (42, 115), 15: (22, 150), 16: (42, 150),
    }  # fmt: skip
    for i, (x, y) in xy.items():
        kp[i] = (x + ox, y + oy, 0.9 if visible else 0.1)
    return kp


def _person(upper_bgr, lower_bgr, background=(128, 128, 128)) -> np.ndarray:
    """Synthetic crop: grey background, an upper block at the torso, a lower block at the legs."""
    crop = np.full((H, W, 3), background, np.uint8)
    crop[35:80, 16:48] = upper_bgr
    crop[80:150, 18:46] = lower_bgr
    return crop


@pytest.mark.parametrize(
    ("expected", "bgr"), [(name, bgr) for name, samples in CANONICAL_BGR.items() for bgr in samples]
)
def test_canonical_patch_classifies_as_its_colour(expected, bgr):
    patch = np.full((10, 10, 3), bgr, np.uint8)
    name, conf = dominant_color(patch)
    assert (name, conf) == (expected, 1.0)


def test_every_palette_colour_has_canonical_samples():
    assert set(CANONICAL_BGR) == set(COLOR_NAMES)


def test_histogram_shares_sum_to_one_and_cover_the_palette():
    pixels = np.array([(0, 0, 255)] * 3 + [(255, 0, 0)], np.uint8)  # an (n, 3) pixel list works too
    shares = color_histogram(pixels)
    assert set(shares) == set(COLOR_NAMES)
    assert shares["red"] == pytest.approx(0.75) and shares["blue"] == pytest.approx(0.25)
    assert sum(shares.values()) == pytest.approx(1.0)


def test_empty_region_has_no_colour():
    assert dominant_color(np.zeros((0, 3), np.uint8)) == (None, 0.0)
    assert sum(color_histogram(np.zeros((0, 0, 3), np.uint8)).values()) == 0.0


def test_pose_regions_sit_inside_torso_and_legs():
    upper, lower = body_regions((100, 50, 100 + W, 50 + H), _keypoints(box_origin=(100, 50)))
    x1, y1, x2, y2 = upper
    assert 18 <= x1 < x2 <= 46 and 35 <= y1 < y2 <= 80  # shrunk inside the shoulder-hip rectangle
    x1, y1, x2, y2 = lower
    assert 22 <= x1 < x2 <= 42 and 80 <= y1 < y2 <= 115  # hips to knees


def test_red_upper_blue_lower_with_pose():
    crop = _person((0, 0, 200), (160, 90, 40))
    attrs = describe_person([crop], [(0, 0, W, H)], [_keypoints()])
    assert (attrs.upper_color, attrs.lower_color) == ("red", "blue")
    assert attrs.upper_color_conf == pytest.approx(1.0) and attrs.lower_color_conf == pytest.approx(1.0)
    assert attrs.upper_shares["red"] == pytest.approx(1.0)


def test_regions_follow_the_pose_not_the_box_bands():
    """A person crouching in the lower half of a tall box: the fixed bands would miss the torso."""
    crop = np.full((H, W, 3), (128, 128, 128), np.uint8)
    crop[85:115, 16:48] = (0, 200, 0)  # green torso low in the box
    crop[115:150, 18:46] = (0, 0, 0)  # black legs
    kp = _keypoints()
    kp[[5, 6], 1], kp[[11, 12], 1], kp[[13, 14], 1] = 85, 115, 145
    attrs = describe_person([crop], [(0, 0, W, H)], [kp])
    assert (attrs.upper_color, attrs.lower_color) == ("green", "black")


def test_invisible_keypoints_fall_back_to_box_fractions():
    upper, lower = body_regions((0, 0, W, H), _keypoints(visible=False))
    assert upper == (13, 32, 51, 80) and lower == (13, 88, 51, 136)  # 20-50% / 55-85% of H, central 60% of W
    assert body_regions((0, 0, W, H), None) == (upper, lower)
    crop = _person((0, 0, 200), (160, 90, 40))
    attrs = describe_person([crop], [(0, 0, W, H)], [_keypoints(visible=False)])
    assert (attrs.upper_color, attrs.lower_color) == ("red", "blue")
    assert attrs.upper_color_conf > 0.7 and attrs.lower_color_conf > 0.7


def test_side_view_torso_is_widened():
    kp = _keypoints()
    kp[[5, 6, 11, 12], 0] = 32  # both shoulders and hips on one vertical line
    upper, _ = body_regions((0, 0, W, H), kp)
    assert upper[2] - upper[0] >= 10


def test_upside_down_pose_falls_back():
    kp = _keypoints()
    kp[[5, 6], 1], kp[[11, 12], 1] = 80, 35  # hips above shoulders: not a usable torso
    upper, _ = body_regions((0, 0, W, H), kp)
    assert upper == (13, 32, 51, 80)


def test_degenerate_box_has_no_regions():
    assert body_regions((10, 10, 10, 50), None) == (None, None)
    assert body_regions((0, 0, 3, 3), None) == (None, None)
    attrs = describe_person([np.zeros((3, 3, 3), np.uint8)], [(0, 0, 3, 3)], [None])
    assert attrs == Attributes(None, None, None, None, {}, {})


def test_no_crops_gives_no_colours():
    attrs = describe_person([], [], [])
    assert attrs.upper_color is None and attrs.lower_color is None and attrs.upper_color_conf is None


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="differ in length"):
        describe_person([np.zeros((H, W, 3), np.uint8)], [], [])


def test_aggregation_over_crops_picks_the_majority():
    crops = [_person((0, 0, 200), (0, 0, 0))] * 3 + [_person((200, 0, 0), (255, 255, 255))] * 2
    attrs = describe_person(crops, [(0, 0, W, H)] * 5, [_keypoints()] * 5)
    assert (attrs.upper_color, attrs.lower_color) == ("red", "black")
    assert attrs.upper_color_conf == pytest.approx(0.6)
    assert attrs.upper_shares["blue"] == pytest.approx(0.4)


def test_pets_people_in_dark_jackets_and_jeans(pets_dir):
    """PETS09-S2L1 ground-truth people 9 and 13 wear dark jackets and blue jeans (checked by eye)."""
    gt = pd.read_csv(pets_dir / "gt" / "gt.txt", header=None, usecols=range(6), names=["f", "id", "x", "y", "w", "h"])
    cap = cv2.VideoCapture(str(pets_dir / "vtest.avi"))
    samples: dict[int, tuple[list, list]] = {9: ([], []), 13: ([], [])}
    frame_index = 0
    while frame_index < 300:
        ok, frame = cap.read()
        if not ok:
            break
        frame_index += 1  # ground truth counts frames from 1
        if frame_index % 25:
            continue
        rows = gt[(gt.f == frame_index) & gt.id.isin(list(samples))]
        for row in rows.itertuples():
            box = (row.x, row.y, row.x + row.w, row.y + row.h)
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            if x1 < 0 or y1 < 0 or x2 > frame.shape[1] or y2 > frame.shape[0]:
                continue
            samples[row.id][0].append(frame[y1:y2, x1:x2])
            samples[row.id][1].append(box)
    cap.release()
    for person, (crops, boxes) in samples.items():
        assert len(crops) >= 5, person
        attrs = describe_person(crops, boxes, [None] * len(crops))
        assert (attrs.upper_color, attrs.lower_color) == ("black", "blue"), person
