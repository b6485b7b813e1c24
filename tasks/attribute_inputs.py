"""What attribute training reads: cached maps of the shared (frozen) layers, or decoded images when none are shared.

Why two kinds: frozen layers' output never changes, so it is computed once per image and cached
(on disk, keyed by the images, input size, shared layers and weights) and the epochs run only the
trained layers; a model that trains every layer must see the pixels every step, so the images are
decoded once, resized to the input size and kept in memory as uint8 (~100 KB each at 256x128).
Either way every batch is augmented afresh.
Unreadable images are skipped and counted either way, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from smarttrace.assets import cache_dir, sha256_of
from tasks.attribute_model import IMAGENET_MEAN, IMAGENET_STD, AttributeNet, preprocess
from tasks.peta import PetaError

log = logging.getLogger("smarttrace.train_attributes")

ENCODE_BATCH = 64  # images per trunk forward pass while caching
# Random shift of a training image, as a fraction of its height / width (replicate padding): people in
# PETA's crops sit at varying offsets, and a colour label must not depend on where the torso falls.
SHIFT_FRACTION = (0.05, 0.0625)


@dataclass
class Encoded:
    """What the epochs read for the images that decoded; `skipped` lists the ones that did not."""

    maps: torch.Tensor  # (n_ok, C, h, w) float16 trunk maps, or (n_ok, H, W, 3) uint8 BGR images (`decode_images`)
    keep: np.ndarray  # (n_records,) bool: record decoded and is in `maps`, in order
    skipped: list[str]


def read_image(path: Path) -> np.ndarray | None:
    """BGR image, or None when the file cannot be decoded (the caller skips and counts it)."""
    try:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error:
        return None
    return image if image is not None and image.size else None


def _readable(paths: Sequence[Path], keep: np.ndarray, skipped: list[str]) -> Iterator[np.ndarray]:
    """The images of `paths` that decode, in order; each is marked in `keep`, the others logged and listed in
    `skipped` (skipped and counted, never fatal)."""
    for i, path in enumerate(paths):
        image = read_image(path)
        if image is None:
            log.warning("%s: unreadable image, skipped", path)
            skipped.append(str(path))
            continue
        keep[i] = True
        yield image


def _nothing_readable(paths: Sequence[Path]) -> PetaError:
    return PetaError(f"none of the {len(paths)} PETA images could be read (first: {paths[0] if paths else '-'})")


def encode_trunk(net: AttributeNet, paths: Sequence[Path], input_hw: tuple[int, int], cache_key: str = "") -> Encoded:
    """Run every image once through the frozen trunk (+ its pool); unreadable images are skipped and counted."""
    cache_file = cache_dir() / "peta_trunk" / f"{cache_key}.npz" if cache_key else None
    if cache_file is not None and cache_file.is_file():
        with np.load(cache_file, allow_pickle=False) as stored:
            log.info("trunk features of %d images from %s", len(paths), cache_file)
            return Encoded(torch.from_numpy(stored["maps"]), stored["keep"], [str(s) for s in stored["skipped"]])
    keep = np.zeros(len(paths), bool)
    chunks: list[torch.Tensor] = []
    skipped: list[str] = []
    net.trunk.eval()
    started = time.monotonic()

    def encode(images: list[np.ndarray]) -> None:
        with torch.inference_mode():
            chunks.append(net.encode(preprocess(images, input_hw)).half())
        done = int(keep.sum()) + len(skipped)
        rate = done / max(time.monotonic() - started, 1e-6)
        log.info("encoded %d/%d images (%.1f img/s, ETA %.0f s)", done, len(paths), rate, (len(paths) - done) / rate)

    batch: list[np.ndarray] = []
    for image in _readable(paths, keep, skipped):
        batch.append(image)
        if len(batch) == ENCODE_BATCH:
            encode(batch)
            batch = []
    if batch:
        encode(batch)
    if not chunks:
        raise _nothing_readable(paths)
    encoded = Encoded(torch.cat(chunks), keep, skipped)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        part = cache_file.with_name(cache_file.name + ".part.npz")
        np.savez(part, maps=encoded.maps.numpy(), keep=keep, skipped=np.array(skipped, dtype=str))
        os.replace(part, cache_file)
    return encoded


def trunk_cache_key(
    paths: Sequence[Path], input_hw: tuple[int, int], backbone: Path, trunk_pool: int = 1, shared: str = "trunk"
) -> str:
    """Content key of a trunk cache: image paths + sizes + mtimes, input size, pool, shared layers, trunk weights."""
    parts: list = [list(input_hw), sha256_of(backbone)] + ([trunk_pool] if trunk_pool != 1 else [])
    parts += [shared] if shared != "trunk" else []
    digest = hashlib.sha256(json.dumps(parts).encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def decode_images(paths: Sequence[Path], input_hw: tuple[int, int]) -> Encoded:
    """Every image decoded once and resized to `input_hw` (as `preprocess` does), uint8 BGR in memory."""
    keep = np.zeros(len(paths), bool)
    images: list[np.ndarray] = []
    skipped: list[str] = []
    started = time.monotonic()
    for image in _readable(paths, keep, skipped):
        images.append(cv2.resize(image, (input_hw[1], input_hw[0]), interpolation=cv2.INTER_LINEAR))
        if len(images) % 1000 == 0:
            done = len(images) + len(skipped)
            rate = done / max(time.monotonic() - started, 1e-6)
            eta = (len(paths) - done) / rate
            log.info("decoded %d/%d images (%.0f img/s, ETA %.0f s)", done, len(paths), rate, eta)
    if not images:
        raise _nothing_readable(paths)
    return Encoded(torch.from_numpy(np.stack(images)), keep, skipped)


_MEAN = torch.from_numpy(IMAGENET_MEAN).view(1, 3, 1, 1)
_STD = torch.from_numpy(IMAGENET_STD).view(1, 3, 1, 1)


def images_to_tensor(images: torch.Tensor) -> torch.Tensor:
    """(n, H, W, 3) uint8 BGR, already at the input size -> what `preprocess` gives: normalised RGB NCHW."""
    rgb = images.flip(3).permute(0, 3, 1, 2).float() / 255.0
    return ((rgb - _MEAN) / _STD).contiguous()


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random mirror and shift (replicate padding) of each normalised image: no colour change (colours are labels)."""
    n, _, height, width = batch.shape
    flip = torch.rand(n, generator=generator) < 0.5
    batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
    pad_y, pad_x = round(height * SHIFT_FRACTION[0]), round(width * SHIFT_FRACTION[1])
    padded = F.pad(batch, (pad_x, pad_x, pad_y, pad_y), mode="replicate")
    dy = torch.randint(0, 2 * pad_y + 1, (n,), generator=generator).tolist()
    dx = torch.randint(0, 2 * pad_x + 1, (n,), generator=generator).tolist()
    shifts = enumerate(zip(dy, dx, strict=True))
    return torch.stack([padded[i, :, y : y + height, x : x + width] for i, (y, x) in shifts])
