"""Clothing colour attributes (upper / lower body) from person crops and their pose keypoints.

Why colours by rules and not a learned attribute model: the palette is small and fixed
(`COLOR_NAMES`), the rules are explainable in the UI ("upper red 0.62"), and they run on the
CPU at no cost on top of tracking. Why keypoints: a fixed band of the box puts the torso band
on the background for people bending, walking sideways or cut by the box; shoulders and hips
find the shirt, hips and knees the trousers. Plain numpy/OpenCV: no Prefect, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from storage.schemas import COLOR_NAMES, NUM_KEYPOINTS

Roi = tuple[int, int, int, int]  # x1, y1, x2, y2 in crop pixels, half-open

# COCO-17 keypoint indices used here.
L_SHOULDER, R_SHOULDER = 5, 6
L_HIP, R_HIP = 11, 12
L_KNEE, R_KNEE = 13, 14
L_ANKLE, R_ANKLE = 15, 16

TORSO_SHRINK = 0.15  # of the torso rectangle per side: keeps background and arm edges out
LEGS_SHRINK_X = 0.15  # per side: the gap between walking legs is background
LEGS_SHRINK_Y = 0.10  # per side: belt at the top, shoes at the bottom when ankles are used
MIN_WIDTH_FRACTION = 0.30  # side views: shoulders/hips overlap, so widen to this share of the box
MIN_ROI_PIXELS = 16  # a region smaller than this says nothing about colour

# Fallback bands as fractions of the box: (y_from, y_to); x always the central 60%.
UPPER_BAND = (0.20, 0.50)
LOWER_BAND = (0.55, 0.85)
CENTRAL_X = (0.20, 0.80)

# HSV thresholds, OpenCV scale (H 0..179, S and V 0..255). Tuned on canonical clothing colours
# (see tests/test_attributes.py): the order of the rules in `_classify` matters.
ACHROMATIC_S = 40  # below: no usable hue at any brightness
DARK_V, DARK_ACHROMATIC_S = 110, 70  # dark pixels: sensor noise makes hue up, so allow more saturation
BLACK_V = 50  # below: black whatever the hue
BLACK_ACHROMATIC_V = 80  # an achromatic pixel darker than this is black, not grey
WHITE_V = 190  # an achromatic pixel brighter than this is white
WARM_DARK_V = 140  # orange/yellow hues darker than this are brown
WARM_PALE_S = 130  # orange/yellow hues paler than this (and not dark) are beige
PINK_S, PINK_V = 130, 160  # red hues paler and brighter than this are pink
# Hue wedges (OpenCV H): red wraps around 0.
HUE_ORANGE, HUE_YELLOW, HUE_GREEN, HUE_BLUE, HUE_PURPLE, HUE_PINK, HUE_RED = 8, 20, 34, 88, 130, 155, 170

_INDEX = {name: i for i, name in enumerate(COLOR_NAMES)}


@dataclass
class Attributes:
    """Colours of one tracklet; None where no crop had a usable region."""

    upper_color: str | None
    upper_color_conf: float | None  # share of the upper-body pixels voting for the colour, 0..1
    lower_color: str | None
    lower_color_conf: float | None
    upper_shares: dict[str, float] = field(default_factory=dict)  # every palette colour -> share
    lower_shares: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------- regions


def _visible(keypoints: np.ndarray, indices: tuple[int, ...], min_visibility: float) -> np.ndarray:
    """(k, 2) xy of those keypoints that are confidently visible (possibly none)."""
    points = keypoints[list(indices)]
    keep = np.isfinite(points).all(axis=1) & (points[:, 2] >= min_visibility)
    return points[keep, :2]


def _fraction_roi(width: int, height: int, band: tuple[float, float]) -> Roi | None:
    """Fixed band of the box: the fallback when the pose is missing or implausible."""
    roi = (
        int(round(CENTRAL_X[0] * width)),
        int(round(band[0] * height)),
        int(round(CENTRAL_X[1] * width)),
        int(round(band[1] * height)),
    )
    return _valid(roi, width, height)


def _valid(roi: Roi, width: int, height: int) -> Roi | None:
    """Clip to the crop; None when too small to hold a colour."""
    x1, y1 = max(roi[0], 0), max(roi[1], 0)
    x2, y2 = min(roi[2], width), min(roi[3], height)
    if x2 - x1 < 2 or y2 - y1 < 2 or (x2 - x1) * (y2 - y1) < MIN_ROI_PIXELS:
        return None
    return (x1, y1, x2, y2)


def _pose_roi(
    points: np.ndarray, y_top: float, y_bottom: float, shrink_x: float, shrink_y: float, box_width: float
) -> tuple[float, float, float, float] | None:
    """Rectangle spanning `points` in x and [y_top, y_bottom], shrunk inwards; None if upside down."""
    if y_bottom - y_top <= 0:
        return None
    x_lo, x_hi = float(points[:, 0].min()), float(points[:, 0].max())
    min_width = MIN_WIDTH_FRACTION * box_width
    if x_hi - x_lo < min_width:  # side view: the two shoulders (hips) coincide
        centre = (x_lo + x_hi) / 2
        x_lo, x_hi = centre - min_width / 2, centre + min_width / 2
    dx, dy = (x_hi - x_lo) * shrink_x, (y_bottom - y_top) * shrink_y
    return (x_lo + dx, y_top + dy, x_hi - dx, y_bottom - dy)


def _to_crop(rect: tuple[float, float, float, float] | None, x0: float, y0: float, w: int, h: int) -> Roi | None:
    """Frame-pixel rectangle -> integer crop rectangle, or None."""
    if rect is None:
        return None
    roi = (
        int(round(rect[0] - x0)),
        int(round(rect[1] - y0)),
        int(round(rect[2] - x0)),
        int(round(rect[3] - y0)),
    )
    return _valid(roi, w, h)


def body_regions(
    box_xyxy: np.ndarray | tuple[float, float, float, float] | list[float],
    keypoints: np.ndarray | None,
    min_visibility: float = 0.5,
) -> tuple[Roi | None, Roi | None]:
    """(upper_roi, lower_roi) in crop pixels (origin = the box's rounded top-left, as crops are cut).

    Upper: shoulders to hips, shrunk 15% per side. Lower: hips to knees (ankles if no knee).
    Each falls back to a fixed band of the box when its keypoints are not visible enough or
    give a degenerate rectangle. None only when the box itself is too small.
    """
    x1, y1, x2, y2 = (int(round(float(v))) for v in box_xyxy)
    width, height = x2 - x1, y2 - y1
    if width <= 0 or height <= 0:
        return None, None
    upper = lower = None
    kp = None if keypoints is None else np.asarray(keypoints, np.float64)
    if kp is not None and kp.shape == (NUM_KEYPOINTS, 3):
        shoulders = _visible(kp, (L_SHOULDER, R_SHOULDER), min_visibility)
        hips = _visible(kp, (L_HIP, R_HIP), min_visibility)
        knees = _visible(kp, (L_KNEE, R_KNEE), min_visibility)
        ankles = _visible(kp, (L_ANKLE, R_ANKLE), min_visibility)
        if len(shoulders) and len(hips):
            torso = np.vstack([shoulders, hips])
            rect = _pose_roi(torso, shoulders[:, 1].mean(), hips[:, 1].mean(), TORSO_SHRINK, TORSO_SHRINK, width)
            upper = _to_crop(rect, x1, y1, width, height)
        legs_end = knees if len(knees) else ankles
        if len(hips) and len(legs_end):
            legs = np.vstack([hips, legs_end])
            rect = _pose_roi(legs, hips[:, 1].mean(), legs_end[:, 1].mean(), LEGS_SHRINK_X, LEGS_SHRINK_Y, width)
            lower = _to_crop(rect, x1, y1, width, height)
    if upper is None:
        upper = _fraction_roi(width, height, UPPER_BAND)
    if lower is None:
        lower = _fraction_roi(width, height, LOWER_BAND)
    return upper, lower


# ---------------------------------------------------------------- colours


def _classify(hsv: np.ndarray) -> np.ndarray:
    """(n, 3) uint8 HSV -> (n,) palette index per pixel. Later rules overwrite earlier ones."""
    h, s, v = (hsv[:, i].astype(np.int32) for i in range(3))
    out = np.empty(len(hsv), np.int32)
    # Chromatic: hue wedges first.
    out[:] = _INDEX["red"]
    out[(h >= HUE_ORANGE) & (h < HUE_YELLOW)] = _INDEX["orange"]
    out[(h >= HUE_YELLOW) & (h < HUE_GREEN)] = _INDEX["yellow"]
    out[(h >= HUE_GREEN) & (h < HUE_BLUE)] = _INDEX["green"]
    out[(h >= HUE_BLUE) & (h < HUE_PURPLE)] = _INDEX["blue"]
    out[(h >= HUE_PURPLE) & (h < HUE_PINK)] = _INDEX["purple"]
    out[(h >= HUE_PINK) & (h < HUE_RED)] = _INDEX["pink"]
    # Warm hues: pale -> beige, dark -> brown (brown and beige are dark/pale oranges and yellows).
    warm = (h >= HUE_ORANGE) & (h < HUE_GREEN)
    out[warm & (s < WARM_PALE_S)] = _INDEX["beige"]
    out[warm & (v < WARM_DARK_V)] = _INDEX["brown"]
    # Pale, bright reds are pink; dark saturated reds stay red (maroon).
    reds = (h < HUE_ORANGE) | (h >= HUE_RED)
    out[reds & (s < PINK_S) & (v >= PINK_V)] = _INDEX["pink"]
    # Achromatic last: no hue to trust.
    achromatic = (s < ACHROMATIC_S) | ((v < DARK_V) & (s < DARK_ACHROMATIC_S))
    out[achromatic] = _INDEX["grey"]
    out[achromatic & (v >= WHITE_V)] = _INDEX["white"]
    out[(achromatic & (v < BLACK_ACHROMATIC_V)) | (v < BLACK_V)] = _INDEX["black"]
    return out


def _counts(pixels_bgr: np.ndarray) -> np.ndarray:
    """Votes per palette colour (len(COLOR_NAMES),) of an image region or an (n, 3) pixel list."""
    pixels = np.asarray(pixels_bgr)
    if pixels.size == 0:
        return np.zeros(len(COLOR_NAMES), np.int64)
    if pixels.shape[-1] != 3:
        raise ValueError(f"pixels must be BGR with a last axis of 3, got shape {pixels.shape}")
    flat = np.ascontiguousarray(pixels.reshape(-1, 1, 3), dtype=np.uint8)
    hsv = cv2.cvtColor(flat, cv2.COLOR_BGR2HSV).reshape(-1, 3)
    return np.bincount(_classify(hsv), minlength=len(COLOR_NAMES))


def _shares(counts: np.ndarray) -> dict[str, float]:
    total = float(counts.sum())
    if total <= 0:
        return {name: 0.0 for name in COLOR_NAMES}
    return {name: float(c) / total for name, c in zip(COLOR_NAMES, counts, strict=True)}


def color_histogram(pixels_bgr: np.ndarray) -> dict[str, float]:
    """Share of the pixels voting for each palette colour (all zero for an empty region)."""
    return _shares(_counts(pixels_bgr))


def _winner(shares: dict[str, float]) -> tuple[str | None, float]:
    """Most voted colour and its share; (None, 0.0) when nothing voted."""
    name = max(COLOR_NAMES, key=lambda n: shares.get(n, 0.0))
    share = shares.get(name, 0.0)
    return (name, share) if share > 0 else (None, 0.0)


def dominant_color(pixels_bgr: np.ndarray) -> tuple[str | None, float]:
    """(palette colour, confidence = share of the region's pixels voting for it); (None, 0.0) if empty."""
    return _winner(color_histogram(pixels_bgr))


# ---------------------------------------------------------------- per tracklet


def _region(crop: np.ndarray, roi: Roi | None) -> np.ndarray | None:
    """The roi's pixels, clipped to the crop (a crop cut by the frame edge is smaller than its box)."""
    if roi is None:
        return None
    roi = _valid(roi, crop.shape[1], crop.shape[0])
    if roi is None:
        return None
    return crop[roi[1] : roi[3], roi[0] : roi[2]]


def _aggregate(histograms: list[dict[str, float]]) -> tuple[str | None, float | None, dict[str, float]]:
    """Sum of per-crop shares (one vote per crop, so one large crop cannot outvote the rest)."""
    if not histograms:
        return None, None, {}
    total = {name: sum(h[name] for h in histograms) for name in COLOR_NAMES}
    shares = {name: value / len(histograms) for name, value in total.items()}
    name, share = _winner(shares)
    return name, (share if name is not None else None), shares


def describe_person(
    crops: list[np.ndarray],
    boxes: list[np.ndarray] | list[tuple[float, float, float, float]],
    keypoints: list[np.ndarray | None],
    min_visibility: float = 0.5,
) -> Attributes:
    """Upper/lower colours of one tracklet from several of its crops, boxes (frame xyxy) and poses."""
    if not len(crops) == len(boxes) == len(keypoints):
        raise ValueError(f"crops, boxes, keypoints differ in length: {len(crops)}, {len(boxes)}, {len(keypoints)}")
    upper_hists: list[dict[str, float]] = []
    lower_hists: list[dict[str, float]] = []
    for crop, box, kp in zip(crops, boxes, keypoints, strict=True):
        if crop is None or crop.ndim != 3 or crop.size == 0:
            continue
        upper_roi, lower_roi = body_regions(box, kp, min_visibility)
        for roi, hists in ((upper_roi, upper_hists), (lower_roi, lower_hists)):
            pixels = _region(crop, roi)
            if pixels is not None:
                hists.append(color_histogram(pixels))
    upper, upper_conf, upper_shares = _aggregate(upper_hists)
    lower, lower_conf, lower_shares = _aggregate(lower_hists)
    return Attributes(upper, upper_conf, lower, lower_conf, upper_shares, lower_shares)
