"""End to end: train the attribute model for a few steps on real PETA crops, load it by name, predict.

Uses 12 people of PETA's i-LID subset copied into tmp_path (plus one corrupt image), so the run
takes seconds and also shows that a bad image is skipped and counted, not fatal.
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import need

from smarttrace import assets
from smarttrace.cli import main
from smarttrace.errors import AssetError
from tasks.attribute_model import DEFAULT_ATTRIBUTE_WEIGHTS, AttributeModel, n_features
from tasks.attribute_vocab import ATTRIBUTE_NAMES
from tasks.embed_reid import ReidEmbedder

SHARED = Path(os.environ.get("SMARTTRACE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
DATA = SHARED / "data"
PEOPLE = 12  # of i-LID, one image each: a few seconds of CPU


@pytest.fixture
def small_peta(tmp_path):
    source = DATA / "PETA" / "i-LID" / "archive"
    need(source / "Label.txt", DATA.parent / "models" / "osnet_x0_25_msmt17.pt")  # fails under CI's variable
    archive = tmp_path / "PETA" / "i-LID" / "archive"
    archive.mkdir(parents=True)
    lines = [line for line in (source / "Label.txt").read_text().splitlines() if line.strip()][:PEOPLE]
    ids = {line.split()[0] for line in lines}
    for image in sorted(source.iterdir()):
        if image.name.split("_")[0] in ids:
            shutil.copy(image, archive)
    (archive / "9999_001.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (archive / "Label.txt").write_text("\n".join(lines + ["9999 personalMale"]) + "\n")
    return tmp_path / "PETA"


def test_train_a_few_steps_then_load_by_name_and_predict(small_peta, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SMARTTRACE_CACHE_DIR", str(cache))
    code = main(["train", "attributes", "--peta", str(small_peta), "--subsets", "i-LID", "--max-steps", "3",
                 "--epochs", "1", "--max-images-per-person", "1"])
    assert code == 0
    weights = cache / DEFAULT_ATTRIBUTE_WEIGHTS
    manifest = json.loads(assets.manifest_path(weights).read_text())
    assert manifest["sha256"] == assets.sha256_of(weights)
    assert json.loads(capsys.readouterr().out)["sha256"] == manifest["sha256"]
    assert manifest["data"]["skipped_unreadable"] == [str(small_peta / "i-LID" / "archive" / "9999_001.jpg")]
    assert "research use only" in manifest["licence"] and "Deng" in manifest["licence"]
    assert manifest["data"]["reid_test_sets_seen"] == [] and "may feed ReID" in manifest["data"]["rule"]
    split = json.loads((cache / manifest["split"]["file"]).read_text())
    train, test = set(split["people"]["train"]), set(split["people"].get("test", []))
    assert train and test and not train & test

    model = AttributeModel.load(DEFAULT_ATTRIBUTE_WEIGHTS)
    assert model.weights_path == weights and model.sha256 == manifest["sha256"]
    assert model.names == ATTRIBUTE_NAMES
    crops = [np.random.default_rng(0).integers(0, 255, (120, 50, 3), dtype=np.uint8), np.zeros((64, 32, 3), np.uint8)]
    probabilities = model(crops)
    assert probabilities.shape == (2, len(ATTRIBUTE_NAMES)) and probabilities.dtype == np.float32
    assert (probabilities >= 0).all() and (probabilities <= 1).all()
    assert model([]).shape == (0, len(ATTRIBUTE_NAMES))
    assert model(crops, calibrated=True).shape == probabilities.shape

    # Default: conv1-conv2 stay the ReID model's and conv3 onwards were trained, so the embed stage reads the ReID
    # pass's conv1-conv2 maps; the rest runs on OpenVINO when installed, with the logits PyTorch gives.
    assert manifest["settings"]["shared"] == "stem" and model.shared_variant == "stem"
    assert manifest["settings"]["band_pool"] == model.net.band_pool == "avgmax"  # bands' means and maxima
    reid = ReidEmbedder(batch_size=16)
    assert model.shares_trunk_with(reid)
    on_torch = AttributeModel.load(DEFAULT_ATTRIBUTE_WEIGHTS, backend="torch")
    assert (model.backend, on_torch.backend) == ("openvino", "torch")
    alone = on_torch.logits(crops)
    np.testing.assert_allclose(model.logits(crops), alone, atol=1e-4)
    _, shared, _ = reid.embed_sharing_trunk(crops, model.logits_from_trunk, model.shared_variant)
    np.testing.assert_allclose(shared, alone, atol=1e-4)  # the shared pass gives the model's own logits
    assert not np.allclose(alone, on_torch.probabilities(alone, calibrated=True))  # logits really vary

    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")  # tampered: no longer its manifest's file
    with pytest.raises(AssetError, match="corrupt or a different file.*manifest"):
        AttributeModel.load(DEFAULT_ATTRIBUTE_WEIGHTS)


@pytest.mark.parametrize("shared", ["trunk", "none"])
def test_other_shared_layers(shared, small_peta, tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTTRACE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / f"{shared}.pt"
    code = main(["train", "attributes", "--peta", str(small_peta), "--subsets", "i-LID", "--max-steps", "2",
                 "--epochs", "1", "--max-images-per-person", "1", "--shared", shared, "--out", str(out),
                 "--band-pool", "avg"])  # the bands' means only, as models before 2026-12-06
    assert code == 0
    model = AttributeModel.load(out)
    assert model.net.band_pool == "avg" and model.net.classifier.in_features == n_features("avg")
    checkpoint = torch.load(out, weights_only=True)
    del checkpoint["band_pool"]  # as a model trained before 2026-12-06 (format 3) has it
    torch.save(checkpoint, out)
    manifest = assets.manifest_path(out)
    manifest.write_text(json.dumps(json.loads(manifest.read_text()) | {"sha256": assets.sha256_of(out)}))
    assert AttributeModel.load(out).net.band_pool == "avg"
    reid = ReidEmbedder(batch_size=16)
    crops = [np.random.default_rng(1).integers(0, 255, (150, 60, 3), dtype=np.uint8) for _ in range(3)]
    alone = AttributeModel.load(out, backend="torch").logits(crops)
    np.testing.assert_allclose(model.logits(crops), alone, atol=1e-4)  # OpenVINO own pass == PyTorch
    if shared == "trunk":  # conv1-conv3 untouched: one pass serves both
        assert model.shares_trunk_with(reid) and model.shared_variant == "trunk"
        np.testing.assert_allclose(reid.embed_sharing_trunk(crops, model.logits_from_trunk, "trunk")[1], alone,
                                   atol=1e-4)  # fmt: skip
    else:  # every layer trained: nothing to share, the model runs its own pass
        assert not model.shares_trunk_with(reid) and model.shared_variant is None


def test_missing_model_tells_the_user_to_train_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTTRACE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SMARTTRACE_MODEL_DIR", str(tmp_path / "models"))
    with pytest.raises(AssetError, match="smarttrace train attributes"):
        AttributeModel.load(DEFAULT_ATTRIBUTE_WEIGHTS)


def test_the_manifest_says_which_reid_test_sets_the_model_saw():
    from tasks.train_attributes import _data_rule

    assert "must never feed a ReID or cross-camera figure" in _data_rule(("MIT", "VIPeR", "GRID"))
    assert "VIPeR, GRID" in _data_rule(("MIT", "VIPeR", "GRID"))
    assert "may feed ReID" in _data_rule(("3DPeS", "MIT", "TownCentre", "i-LID"))


def test_weights_without_a_manifest_are_refused(tmp_path):
    weights = tmp_path / "mystery.pt"
    weights.write_bytes(b"weights of unknown origin")
    with pytest.raises(AssetError, match=r"mystery\.pt has no manifest .*mystery\.manifest\.json"):
        AttributeModel.load(weights)
