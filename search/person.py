"""Finding the person to search for in an uploaded image: a detection, or the image itself.

Plain functions: the engine hands in its detector, so this knows nothing of models or the index.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from search.errors import SearchInputError
from search.images import letterbox
from search.results import QueryPerson

# The query detector sees the image letterboxed into a fixed square canvas, so the (OpenVINO)
# detector is exported once per size instead of once per upload size. 640 finds people in crops and
# photos in ~60 ms; people ~80 px tall in a CCTV frame need 1280 (measured on PETS09: none found at
# 640, most at 1280), so 1280 is tried only when 640 found nobody.
QUERY_DETECT_SIZES = (640, 1280)
QUERY_MIN_CONFIDENCE = 0.3  # the tracker's 0.1 keeps doubtful boxes; a query needs a real person
# A detected box covering at least this share of the image means the upload already is a person crop:
# the whole image is used, framed like the indexed crops (which are detector boxes too).
TIGHT_CROP_COVERAGE = 0.5
# No detection but the image is shaped like a standing person (height / width; PETS09 boxes are
# 2.2-3.7) and not blank: a small crop the detector missed; it is used whole, with a note.
PERSON_ASPECT_RANGE = (1.4, 5.0)
MIN_TEXTURE_STD = 6.0  # grey-level standard deviation below which an image is blank


def find_person(image: np.ndarray, detect: Callable[[np.ndarray], Any]) -> QueryPerson:
    """The person to search for in a decoded image: the largest confident detection.

    A tight crop is used whole; a person-shaped, non-blank image without any detection is
    used whole with a note; anything else without a person is a SearchInputError. `detect` runs
    the person detector on a square canvas (QUERY_DETECT_SIZES) and returns its detections
    (`xyxy`, `confidence` in canvas pixels).
    """
    height, width = image.shape[:2]
    boxes = np.zeros((0, 4), np.float32)
    confidences = np.zeros(0, np.float32)
    # A crop smaller than the first canvas is already upscaled there; a larger canvas only costs time.
    sizes = QUERY_DETECT_SIZES if max(height, width) > QUERY_DETECT_SIZES[0] else QUERY_DETECT_SIZES[:1]
    for size in sizes:
        canvas, scale = letterbox(image, size)
        detections = detect(canvas)
        keep = detections.confidence >= QUERY_MIN_CONFIDENCE
        if keep.any():
            boxes = detections.xyxy[keep] / scale
            confidences = detections.confidence[keep]
            break
    aspect = height / max(width, 1)
    if len(boxes):
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        best = int(np.argmax(areas * confidences))
        x1, y1, x2, y2 = (int(v) for v in np.round(boxes[best]))
        coverage = float(areas[best]) / float(width * height)
        others = f" (the largest of {len(boxes)} people found)" if len(boxes) > 1 else ""
        if coverage >= TIGHT_CROP_COVERAGE:
            return QueryPerson(image, (0, 0, width, height), float(confidences[best]), len(boxes),
                               f"the image is a person crop: used whole{others}")
        if x2 - x1 < 4 or y2 - y1 < 8:
            raise SearchInputError("the person found in the image is too small to search for")
        return QueryPerson(image[y1:y2, x1:x2].copy(), (x1, y1, x2, y2), float(confidences[best]), len(boxes),
                           f"person detected with confidence {confidences[best]:.2f}{others}")
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if float(grey.std()) < MIN_TEXTURE_STD:
        raise SearchInputError("no person found in the image: it is blank")
    if PERSON_ASPECT_RANGE[0] <= aspect <= PERSON_ASPECT_RANGE[1]:
        return QueryPerson(image, (0, 0, width, height), None, 0,
                           "no person detected, but the image is shaped like a person crop: used whole")
    raise SearchInputError(
        "no person found in the image: upload a photo or a crop in which one person is clearly visible"
    )
