"""The ReID ensemble (several OSNet weights as one embedder) on real weights and real crops."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import DATA, MODELS, need

from smarttrace.config import EmbedConfig, load_config
from smarttrace.errors import AssetError
from tasks.embed_reid import ReidEmbedder, reid_weight_names

MSMT, MARKET = "osnet_x0_25_msmt17.pt", "osnet_x0_25_market1501.pt"


def test_weight_names_accept_one_name_a_list_or_a_plus_joined_string() -> None:
    assert reid_weight_names(MSMT) == [MSMT]
    assert reid_weight_names(f"{MSMT} + {MARKET}") == [MSMT, MARKET]
    assert reid_weight_names((MSMT, MARKET)) == [MSMT, MARKET]
    with pytest.raises(AssetError, match="no ReID weights"):
        reid_weight_names(" + ")


def test_config_reads_a_yaml_list_or_one_string_and_rejects_none(tmp_path: Path) -> None:
    assert EmbedConfig().reid_weights == (MSMT, MARKET)
    assert EmbedConfig(reid_weights=MSMT).reid_weights == (MSMT,)
    assert EmbedConfig(reid_weights=f"{MSMT}+{MARKET}").reid_weights == (MSMT, MARKET)
    with pytest.raises(ValueError, match="at least one ReID weights"):
        EmbedConfig(reid_weights=[])
    config = tmp_path / "c.yaml"
    config.write_text(
        "cameras:\n  - {id: a, video: a.mp4, fps: 7}\n"
        f"embed:\n  reid_weights:\n    - {MSMT}\n    - {MARKET}\n"
    )
    assert load_config(config).embed.reid_weights == (MSMT, MARKET)


@pytest.fixture(scope="module")
def crops() -> list[np.ndarray]:
    """Six real crops of three VIPeR people, both cameras."""
    folder = DATA / "PETA" / "VIPeR" / "archive"
    need(MODELS / MSMT, MODELS / MARKET, folder)
    paths = sorted(folder.glob("*.png"))[:6]
    return [cv2.imread(str(path)) for path in paths]


def test_an_ensemble_vector_is_the_scaled_concatenation_of_its_models_vectors(crops: list[np.ndarray]) -> None:
    """The ensemble's dot product must be the mean of the two models' cosines: a wrong scale, order or a
    model silently left out would break the cross-camera threshold and every stored vector."""
    msmt, market = ReidEmbedder(MSMT), ReidEmbedder(MARKET)
    both = ReidEmbedder([MSMT, MARKET])
    assert both.dim == msmt.dim + market.dim == 1024
    assert both.weights_paths == [msmt.weights_path, market.weights_path]
    vectors = both(crops)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    a, b = msmt(crops), market(crops)
    np.testing.assert_allclose(vectors, np.concatenate([a, b], axis=1) / np.sqrt(2), atol=1e-5)
    np.testing.assert_allclose(vectors @ vectors.T, (a @ a.T + b @ b.T) / 2, atol=1e-5)
    assert both(crops[:0]).shape == (0, 1024)


def test_the_shared_trunk_path_gives_the_ensembles_own_vectors(crops: list[np.ndarray]) -> None:
    """The attribute model reads the primary model's trunk; the ReID vectors must not change with that path."""
    both = ReidEmbedder([MSMT, MARKET])
    vectors, heads, _ = both.embed_sharing_trunk(crops, lambda maps: maps.mean(dim=(2, 3)).numpy())
    np.testing.assert_allclose(vectors, both(crops), atol=1e-5)
    assert heads.shape[0] == len(crops)


def test_camera_bn_applies_to_every_model_and_leaves_their_statistics(crops: list[np.ndarray]) -> None:
    both = ReidEmbedder([MSMT, MARKET], batch_size=16)
    before = both(crops)
    saved = [m.running_mean.clone() for model in both.models for m in model.modules()
             if isinstance(m, torch.nn.BatchNorm2d)]
    own = both.embed_camera_bn(crops * 6)[: len(crops)]
    # Both halves change under the camera's own statistics (the Market half too).
    assert not np.allclose(own[:, :512], before[:, :512], atol=1e-3)
    assert not np.allclose(own[:, 512:], before[:, 512:], atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(own, axis=1), 1.0, atol=1e-5)
    after = [m.running_mean for model in both.models for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(x, y) for x, y in zip(saved, after, strict=True))
    assert all(not model.training for model in both.models)
    np.testing.assert_allclose(both(crops), before, atol=1e-6)


def test_camera_bn_chunks_are_random_samples_of_the_camera(crops: list[np.ndarray]) -> None:
    """36 crops in camera order (6 copies of each of 6 people in a row), chunks of ~12, each normalised by its own
    statistics: shuffled chunks estimate the whole camera's statistics (measured: mean cosine 0.95 to the vectors of
    one 36-crop batch). Unshuffled chunks would each hold one or two people, whose own statistics erase who they
    are (measured: 0.70)."""
    repeated = [crop for crop in crops for _ in range(6)]
    whole = ReidEmbedder([MSMT, MARKET], batch_size=64).embed_camera_bn(repeated)  # one chunk: the whole camera
    chunked = ReidEmbedder([MSMT, MARKET], batch_size=12).embed_camera_bn(repeated)
    agreement = np.sum(whole * chunked, axis=1)
    assert agreement.mean() > 0.9 and agreement.min() > 0.85, agreement
