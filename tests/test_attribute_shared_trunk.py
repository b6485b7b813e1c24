"""The attribute model reads the ReID pass's own trunk: one conv1-conv3 pass, the same outputs.

Real weights (OSNet x0.25 MSMT17) and real PETA crops. The attribute head is randomly initialised
(seeded): what is tested is that the shared path computes exactly what the model computes alone,
and that it is refused whenever the ReID trunk is not the model's (other input size, other
weights, camera-BN statistics), since the head was trained on that trunk's maps only.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import need
from test_reid_adaptation import ADAPT_FRAMES, short_pets_run  # noqa: F401 - the cached 80-frame PETS09 run

SHARED = Path(os.environ.get("SMARTTRACE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
MSMT = SHARED / "models" / "osnet_x0_25_msmt17.pt"
MARKET = SHARED / "models" / "osnet_x0_25_market1501.pt"
ILID = SHARED / "data" / "PETA" / "i-LID" / "archive"


def _model(input_hw: tuple[int, int], trunk_pool: int, trunk_weights: Path = MSMT):
    from tasks.attribute_model import AttributeModel, AttributeNet, region_mask
    from tasks.attribute_vocab import ATTRIBUTE_NAMES

    torch.manual_seed(0)
    net = AttributeNet(len(ATTRIBUTE_NAMES), region_mask(ATTRIBUTE_NAMES), trunk_pool=trunk_pool)
    net.load_reid_weights(trunk_weights)
    torch.nn.init.normal_(net.classifier.weight, std=0.05)  # a head that gives varied logits
    return AttributeModel(net, ATTRIBUTE_NAMES, input_hw, batch_size=16)


@pytest.fixture(scope="module")
def crops() -> list[np.ndarray]:
    need(MSMT, ILID / "Label.txt")
    files = sorted(p for p in ILID.iterdir() if p.suffix.lower() in (".jpg", ".png"))[:40]
    images = [cv2.imread(str(p)) for p in files]
    assert all(i is not None for i in images) and len({i.shape for i in images}) > 1  # real crops of varied sizes
    return images


@pytest.fixture(scope="module")
def reid():
    need(MSMT)
    from tasks.embed_reid import ReidEmbedder

    return ReidEmbedder(batch_size=16)


def test_shared_pass_gives_the_models_own_outputs(crops, reid) -> None:
    model = _model((256, 128), trunk_pool=2)
    assert model.shares_trunk_with(reid)
    vectors, logits, head_seconds = reid.embed_sharing_trunk(crops, model.logits_from_trunk)
    np.testing.assert_allclose(vectors, reid(crops), atol=1e-5)  # ReID vectors unchanged by the split
    alone = model.logits(crops)
    assert logits.shape == alone.shape == (len(crops), len(model.names))
    assert alone.std() > 0.05  # the comparison below is between varied outputs, not constants
    np.testing.assert_allclose(logits, alone, atol=1e-4)
    np.testing.assert_allclose(model.probabilities(logits, calibrated=True), model(crops, calibrated=True), atol=1e-5)
    assert head_seconds > 0


def test_pooled_trunk_model_round_trips_through_its_checkpoint(crops, tmp_path) -> None:
    from tasks.attribute_model import AttributeNet

    model = _model((256, 128), trunk_pool=2)
    checkpoint = model.checkpoint()
    assert checkpoint["trunk_pool"] == 2 and checkpoint["input_hw"] == [256, 128]
    again = AttributeNet(len(model.names), trunk_pool=checkpoint["trunk_pool"])
    again.load_state_dict(checkpoint["state_dict"])
    assert again.eval()  # loads without missing keys; outputs identical on real crops
    from tasks.attribute_model import preprocess

    with torch.inference_mode():
        batch = preprocess(crops[:8], (256, 128))
        np.testing.assert_allclose(again(batch).numpy(), model.net(batch).numpy(), atol=1e-6)


def test_sharing_is_refused_when_the_reid_trunk_is_not_the_models(crops, reid) -> None:
    need(MARKET)
    from tasks.embed_reid import ReidEmbedder

    assert not _model((128, 64), trunk_pool=1).shares_trunk_with(reid)  # format 1: its own 128x64 input
    assert not _model((256, 128), trunk_pool=2).shares_trunk_with(ReidEmbedder("osnet_x0_25_market1501.pt"))
    assert _model((256, 128), trunk_pool=2).shares_trunk_with(reid)


def test_embed_stage_stores_the_same_attributes_on_either_path(short_pets_run, pets_dir, reid) -> None:  # noqa: F811
    """The pipeline's embed stage takes the shared path by itself; a 128x64 model takes its own pass."""
    from smarttrace.config import CameraConfig, EmbedConfig
    from storage.artifacts import read_artifact
    from storage.layout import RunLayout
    from tasks.embed_tracklets import embed_camera

    camera = CameraConfig(id="pets", video=str(pets_dir / "vtest.avi"), fps=7, max_frames=ADAPT_FRAMES,
                          start_time="2009-03-01T09:00:00Z")  # fmt: skip
    tracks = read_artifact(RunLayout(short_pets_run).tracks("pets"), "tracks").to_pandas()
    model = _model((256, 128), trunk_pool=2)
    assert model.shares_trunk_with(reid)
    shared = embed_camera(camera, tracks, EmbedConfig(), short_pets_run, reid, None, model)
    model.shares_trunk_with = lambda _reid: False  # the same model through its own trunk pass
    alone = embed_camera(camera, tracks, EmbedConfig(), short_pets_run, reid, None, model)
    a = [p for p in shared.table.column("attribute_probs").to_pylist() if p is not None]
    b = [p for p in alone.table.column("attribute_probs").to_pylist() if p is not None]
    assert len(a) == len(b) > 0
    np.testing.assert_allclose(np.array(a, np.float32), np.array(b, np.float32), atol=1e-4)
    assert shared.seconds["attributes"] > 0 and shared.seconds["reid"] > 0
