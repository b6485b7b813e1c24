"""Training inputs of the attribute model: decoded images must reach the net exactly as the product's crops do."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tasks.attribute_inputs import augment, decode_images, images_to_tensor
from tasks.attribute_model import preprocess
from tasks.peta import PetaError

HW = (32, 16)


def _write(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"{i:03d}_a.png"
        cv2.imwrite(str(path), rng.integers(0, 255, (40 + i, 20 + i, 3), dtype=np.uint8))
        paths.append(path)
    return paths


def test_decoded_images_give_the_tensor_the_product_gives(tmp_path: Path) -> None:
    paths = _write(tmp_path, 3)
    bad = tmp_path / "004_a.jpg"
    bad.write_bytes(b"\xff\xd8 torn")
    decoded = decode_images([paths[0], bad, *paths[1:]], HW)
    assert decoded.keep.tolist() == [True, False, True, True] and decoded.skipped == [str(bad)]
    assert decoded.maps.dtype == torch.uint8 and tuple(decoded.maps.shape) == (3, *HW, 3)
    product = preprocess([cv2.imread(str(p)) for p in paths], HW)  # what the embed stage feeds the model
    torch.testing.assert_close(images_to_tensor(decoded.maps), product, atol=1e-5, rtol=0)


def test_no_readable_image_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "001_a.png"
    bad.write_bytes(b"nothing")
    with pytest.raises(PetaError, match="none of the 1 PETA images could be read.*001_a.png"):
        decode_images([bad], HW)


def test_augment_mirrors_and_shifts_without_changing_colours() -> None:
    generator = torch.Generator().manual_seed(0)
    batch = torch.zeros(64, 3, 40, 16)
    batch[:, 0, 18:22, 2:5] = 1.0  # a red patch left of centre
    out = augment(batch, generator)
    assert out.shape == batch.shape
    assert set(torch.unique(out).tolist()) <= {0.0, 1.0}  # pixels move, values never change
    assert torch.equal(out[:, 1:], torch.zeros_like(out[:, 1:]))  # other channels untouched
    rows, cols = [], []
    for image in out[:, 0]:
        ys, xs = torch.nonzero(image, as_tuple=True)
        rows.append(ys.float().mean().item())
        cols.append(xs.float().mean().item())
    assert max(abs(r - 19.5) for r in rows) <= 2 + 1e-6 and len({round(r, 1) for r in rows}) > 1  # shifted +-2 rows
    assert min(cols) < 8 < max(cols)  # mirrored in some images, not in others
