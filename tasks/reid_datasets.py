"""Real cross-camera person re-identification sets: file lists with person and camera per image.

Why these four: VIPeR, PRID 2011, GRID (the PETA copies) and CUHK03 are the only real data here
where one person is seen by two or more *different* cameras; they are evaluation sets, never
training or tuning data (see `../shared/README.md`). 3DPeS (also a PETA subset) is the tuning set:
its people are filmed in several sequences of a multi-camera network, and thresholds may be
derived from it because no figure is reported on it as a result.

Naming, as published (the PETA copies keep the original file stems):

* VIPeR   ``NNN_angle_C.png``          person NNN, camera C in {1, 2}; one image per person and camera.
* PRID    ``NNNN_a.png`` / ``NNNN_b.png`` camera A / B; persons 1-200 are in both cameras, 201-385 only in
  A, 386-934 only in B (PETA's renumbering of PRID's B-only people), one image each.
* GRID    ``PPPP_C_frame_x_y_w_h.jpeg`` person PPPP (1-250 seen twice, 251-1025 one-image distractors),
  camera C (2nd field, 1-8).
* CUHK03  ``PPPP_cC_NNN.jpg``          Market-1501 style: person, camera view C in {1, 2}, image number.
* 3DPeS   ``PPP_S_FRAME_N_RGB.png``    person PPP, sequence S (a sequence is one camera's shot); tuning.

Plain Python: no model, no Prefect. Image decoding happens in :func:`load_images`, which skips and
counts unreadable files instead of failing the whole set.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

log = logging.getLogger("smarttrace.reid_datasets")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class DatasetError(ValueError):
    """A data folder is missing, empty or holds no file of the expected naming."""


@dataclass(frozen=True)
class ReidSet:
    """One set's images: `images` has columns path, person, camera (strings), one row per image."""

    name: str
    root: Path
    images: pd.DataFrame
    skipped: list[str] = field(default_factory=list)  # "file: reason" for files that could not be used

    @property
    def num_people(self) -> int:
        return int(self.images["person"].nunique())


_Parser = Callable[[str], tuple[str, str] | None]


def _viper(stem: str) -> tuple[str, str] | None:
    match = re.fullmatch(r"(\d+)_(\d+)_([12])", stem)
    return (match.group(1), match.group(3)) if match else None


def _prid(stem: str) -> tuple[str, str] | None:
    match = re.fullmatch(r"(\d+)_([ab])", stem)
    return (match.group(1), match.group(2)) if match else None


def _grid(stem: str) -> tuple[str, str] | None:
    match = re.fullmatch(r"(\d+)_(\d+)_\d+_\d+_\d+_\d+_\d+", stem)
    return (match.group(1), match.group(2)) if match else None


def _cuhk03(stem: str) -> tuple[str, str] | None:
    match = re.fullmatch(r"(\d+)_c(\d+)_\d+", stem)
    return (match.group(1), match.group(2)) if match else None


def _3dpes(stem: str) -> tuple[str, str] | None:
    match = re.fullmatch(r"(\d+)_(?:B_)?(\d+)_FRAME_\d+_RGB", stem)
    return (match.group(1), match.group(2)) if match else None


# set name -> (folder below the data root, file-name parser, role)
SETS: dict[str, tuple[str, _Parser, str]] = {
    "viper": ("PETA/VIPeR/archive", _viper, "evaluation"),
    "prid": ("PETA/PRID/archive", _prid, "evaluation"),
    "grid": ("PETA/GRID/archive", _grid, "evaluation"),
    "cuhk03": ("CUHK03/labeled_val", _cuhk03, "evaluation"),
    "3dpes": ("PETA/3DPeS/archive", _3dpes, "tuning"),
}


def load_set(name: str, data_root: str | Path) -> ReidSet:
    """List one set's images; raises DatasetError naming the folder when it is missing or unusable."""
    if name not in SETS:
        raise DatasetError(f"unknown ReID set '{name}': known sets are {', '.join(SETS)}")
    relative, parse, _role = SETS[name]
    root = Path(data_root) / relative
    if not root.is_dir():
        raise DatasetError(f"{name}: data folder {root} does not exist")
    rows, skipped = [], []
    for path in sorted(root.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        parsed = parse(path.stem)
        if parsed is None:
            skipped.append(f"{path}: file name does not follow the {name} naming")
            continue
        if path.stat().st_size == 0:
            skipped.append(f"{path}: empty file")
            continue
        rows.append({"path": str(path), "person": parsed[0].lstrip("0") or "0", "camera": parsed[1]})
    if not rows:
        raise DatasetError(f"{name}: no {name} images in {root} (expected names like those in tasks/reid_datasets.py)")
    for line in skipped:
        log.warning("%s", line)
    return ReidSet(name, root, pd.DataFrame(rows, columns=["path", "person", "camera"]), skipped)


def load_images(reid_set: ReidSet) -> tuple[list[np.ndarray], ReidSet]:
    """Decode every image (BGR uint8); unreadable files are dropped from the set and named in `skipped`."""
    crops, keep, skipped = [], [], list(reid_set.skipped)
    for i, path in enumerate(reid_set.images["path"]):
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None or image.size == 0:
            skipped.append(f"{path}: not a readable image")
            log.warning("%s: not a readable image, skipped", path)
            continue
        crops.append(image)
        keep.append(i)
    images = reid_set.images.iloc[keep].reset_index(drop=True)
    return crops, ReidSet(reid_set.name, reid_set.root, images, skipped)
