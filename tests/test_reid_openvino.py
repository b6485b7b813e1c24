"""OSNet on OpenVINO: the same vectors as PyTorch for every pass the pipeline makes, and a sound export cache."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import DATA, MODELS, need

import tasks.reid_openvino as reid_openvino
from smarttrace.config import EmbedConfig
from tasks.embed_reid import ReidEmbedder, resolve_backend
from tasks.reid_openvino import BatchStatNorm, with_batch_statistics

MSMT, MARKET = "osnet_x0_25_msmt17.pt", "osnet_x0_25_market1501.pt"
pytest.importorskip("openvino", reason="OpenVINO is not installed: only the PyTorch backend exists")


@pytest.mark.parametrize("norm", [torch.nn.BatchNorm2d(5), torch.nn.BatchNorm1d(5)])
def test_batch_statistics_layer_equals_torch_training_mode(norm: torch.nn.modules.batchnorm._BatchNorm) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
        norm.running_mean.fill_(3.0)  # trained statistics far from the batch's: using them would show
        norm.running_var.fill_(9.0)
    x = torch.randn(6, 5, 4, 3) * 2 + 1 if isinstance(norm, torch.nn.BatchNorm2d) else torch.randn(6, 5) * 2 + 1
    expected = torch.nn.functional.batch_norm(x, None, None, norm.weight, norm.bias, training=True, eps=norm.eps)
    torch.testing.assert_close(BatchStatNorm(norm)(x), expected, atol=1e-5, rtol=1e-5)


def test_batch_statistics_copy_replaces_every_norm_and_leaves_the_model_alone() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.Sequential(torch.nn.Conv2d(4, 4, 1), torch.nn.BatchNorm2d(4)))  # fmt: skip
    copy = with_batch_statistics(model)
    assert sum(isinstance(m, BatchStatNorm) for m in copy.modules()) == 2
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in copy.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 2  # the original is untouched


def test_backend_choice_is_validated() -> None:
    assert resolve_backend("auto", torch.device("cpu")) == "openvino"
    assert resolve_backend("torch", torch.device("cpu")) == "torch"
    with pytest.raises(ValueError, match="unknown ReID backend"):
        resolve_backend("tensorrt", torch.device("cpu"))
    with pytest.raises(ValueError, match="runs on the CPU"):
        resolve_backend("openvino", torch.device("cuda"))
    with pytest.raises(ValueError):
        EmbedConfig(reid_backend="onnx")


@pytest.fixture(scope="module")
def crops() -> list[np.ndarray]:
    """Real crops of VIPeR people, both cameras (enough for camera BN chunks)."""
    folder = DATA / "PETA" / "VIPeR" / "archive"
    need(MODELS / MSMT, MODELS / MARKET, folder)
    return [cv2.imread(str(path)) for path in sorted(folder.glob("*.png"))[:40]]


@pytest.fixture(scope="module")
def embedders() -> tuple[ReidEmbedder, ReidEmbedder]:
    need(MODELS / MSMT, MODELS / MARKET)
    return (ReidEmbedder([MSMT, MARKET], batch_size=16, backend="torch"),
            ReidEmbedder([MSMT, MARKET], batch_size=16, backend="openvino"))  # fmt: skip


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum(axis=1).min())


def test_openvino_gives_the_torch_vectors_for_plain_camera_bn_and_shared_trunk_passes(
    crops: list[np.ndarray], embedders: tuple[ReidEmbedder, ReidEmbedder]
) -> None:
    torch_side, ov_side = embedders
    assert (torch_side.backend, ov_side.backend) == ("torch", "openvino")
    plain = ov_side(crops)
    assert plain.shape == (len(crops), 1024)
    assert _min_cosine(plain, torch_side(crops)) > 0.9999
    camera = ov_side.embed_camera_bn(crops)
    assert _min_cosine(camera, torch_side.embed_camera_bn(crops)) > 0.9999
    assert _min_cosine(camera, plain) < 0.99  # batch statistics really are used, not folded into trained ones
    head = lambda maps: maps.mean(dim=(2, 3)).numpy()  # noqa: E731 - a stand-in attribute head on conv3 maps
    vectors, heads, _ = ov_side.embed_sharing_trunk(crops, head)
    ref_vectors, ref_heads, _ = torch_side.embed_sharing_trunk(crops, head)
    assert _min_cosine(vectors, ref_vectors) > 0.9999
    np.testing.assert_allclose(heads, ref_heads, atol=1e-4)
    np.testing.assert_allclose(ov_side(crops[:1]), plain[:1], atol=1e-5)  # a batch of one works, same vector


def test_a_corrupt_cached_export_is_rebuilt(
    crops: list[np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SMARTTRACE_CACHE_DIR", str(tmp_path))
    first = ReidEmbedder(MSMT, backend="openvino")
    expected = first(crops[:4])
    folder = reid_openvino._export_folder(first.weights_path, "plain")
    assert (folder / "model.xml").is_file()  # converted once into the cache
    (folder / "model.xml").write_text("<net>torn")
    with caplog.at_level(logging.WARNING, logger="smarttrace.reid"):
        again = ReidEmbedder(MSMT, backend="openvino")(crops[:4])
    assert "does not load" in caplog.text
    np.testing.assert_allclose(again, expected, atol=1e-5)
    assert "torn" not in (folder / "model.xml").read_text()


def test_flip_tta_makes_a_crop_and_its_mirror_one_vector(crops: list[np.ndarray]) -> None:
    flipping = ReidEmbedder([MSMT, MARKET], batch_size=16, flip=True)
    mirrored = [np.ascontiguousarray(c[:, ::-1]) for c in crops[:12]]
    plain = ReidEmbedder([MSMT, MARKET], batch_size=16)(crops[:12])
    both = flipping(crops[:12])
    np.testing.assert_allclose(both, flipping(mirrored), atol=1e-5)  # symmetric by construction
    assert _min_cosine(both, plain) < 0.9999  # and not the plain vector
    np.testing.assert_allclose(np.linalg.norm(both, axis=1), 1.0, atol=1e-5)
    camera = flipping.embed_camera_bn(crops[:12])
    np.testing.assert_allclose(camera, flipping.embed_camera_bn(mirrored), atol=1e-5)


def test_camera_vectors_with_body_part_stripes(crops: list[np.ndarray],
                                               embedders: tuple[ReidEmbedder, ReidEmbedder]) -> None:  # fmt: skip
    torch_side, ov_side = embedders
    whole = ov_side.embed_camera_bn(crops)
    striped = ov_side.embed_camera_bn(crops, parts=2, parts_weight=0.5)
    assert striped.shape == (len(crops), ov_side.camera_dim(2)) == (len(crops), 1024 + 2 * 2 * 128)
    np.testing.assert_allclose(np.linalg.norm(striped, axis=1), 1.0, atol=1e-5)
    # the embedding block is the whole-body camera vector, scaled by 1 / sqrt(1 + w)
    np.testing.assert_allclose(striped[:, :1024], whole / 1.5**0.5, atol=1e-5)
    # the dot product is (embedding cosine + w * mean stripe cosine) / (1 + w): each stripe block is unit / sqrt(2)
    stripes = striped[:, 1024:].reshape(len(crops), 2, 256) * (1.5 / 0.25) ** 0.5
    np.testing.assert_allclose(np.linalg.norm(stripes, axis=2), 1.0, atol=1e-4)
    expected = (whole @ whole.T + 0.5 * np.mean([s @ s.T for s in stripes.transpose(1, 0, 2)], axis=0)) / 1.5
    np.testing.assert_allclose(striped @ striped.T, expected, atol=1e-4)
    assert not np.allclose(stripes[:, 0], stripes[:, 1], atol=1e-2)  # upper and lower body differ
    assert _min_cosine(torch_side.embed_camera_bn(crops, parts=2, parts_weight=0.5), striped) > 0.9999
    with pytest.raises(ValueError, match="must not be negative"):
        ov_side.embed_camera_bn(crops, parts=-1)
