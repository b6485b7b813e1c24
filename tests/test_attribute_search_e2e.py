"""End to end: train the attribute model on real PETA crops, find it through the registry, run the real
pipeline (embed stage included) on a short real clip, and search the index by description.

The model trained here takes a few optimiser steps (seconds), so its predictions carry little
meaning: that test checks the plumbing (registry, cache key, artifact, payload, scores recomputed
from the artifact). Whether a description finds the right person needs a properly trained model:
`test_trained_model_finds_the_person_in_a_red_jacket` runs when one is present
(`SMARTTRACE_ATTRIBUTE_WEIGHTS`, or `~/.cache/smarttrace/peta_attributes_osnet_x0_25.pt`, where
`smarttrace train attributes` writes it) and skips otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from conftest import need

from storage.artifacts import read_artifact, read_manifest
from storage.schemas import ATTRIBUTE_VOCABULARY

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SMARTTRACE_SHARED_DIR", REPO_ROOT.parent / "shared"))
PETA = SHARED / "data" / "PETA"
PETS = SHARED / "data" / "PETS09-S2L1"
WEIGHTS_NAME = "peta_attributes_osnet_x0_25.pt"
TRAIN_SUBSET = "i-LID"  # the smallest PETA subset here (477 images)
# PETS09-S2L1 frames 430-489: GT person 10 (red jacket, jeans, benchmarks/search.py ANNOTATIONS) walks
# through with people in black and navy.
FIRST_FRAME, FRAMES = 430, 60
RED_JACKET_GT_ID = 10


def _pipeline(tmp_path: Path, attribute_weights: str) -> Path:
    """Run the real flow on the PETS window into `tmp_path/run`; the config path."""
    from flows.process import run_process

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "cameras": [{"id": "pets", "video": str(PETS / "vtest.avi"), "fps": 7, "first_frame": FIRST_FRAME,
                     "max_frames": FRAMES, "start_time": "2009-03-01T09:01:00Z"}],
        "storage": {"run_dir": str(tmp_path / "run")},
        "embed": {"attribute_weights": attribute_weights},
    }))  # fmt: skip
    run_process(config)
    return config


def test_trained_model_goes_through_registry_embed_stage_index_and_search(prefect_harness, tmp_path, monkeypatch):
    need(PETA / TRAIN_SUBSET / "archive" / "Label.txt", PETS / "vtest.avi", SHARED / "models" / "yolo11n-pose.pt")
    from search import load_engine
    from smarttrace.cli import main
    from tasks.attribute_model import AttributeModel
    from tasks.attribute_scoring import score_constraints
    from tasks.text_query import parse_description

    cache = tmp_path / "cache"
    monkeypatch.setenv("SMARTTRACE_CACHE_DIR", str(cache))  # the registry looks here, after the model folder
    assert main(["train", "attributes", "--peta", str(PETA), "--subsets", TRAIN_SUBSET, "--max-steps", "3",
                 "--max-images-per-person", "2"]) == 0  # fmt: skip
    model = AttributeModel.load(WEIGHTS_NAME)  # by name, through the registry
    assert Path(model.weights_path).parent == cache and len(model.sha256) == 64

    config = _pipeline(tmp_path, WEIGHTS_NAME)
    tracklets_path = tmp_path / "run" / "tracklets" / "pets.parquet"
    manifest = read_manifest(tracklets_path)
    assert manifest["attributes"] == model.sha256 and manifest["attribute_names"] == list(ATTRIBUTE_VOCABULARY)
    assert model.sha256 in {m["sha256"] for m in manifest["models"]}  # in the stage's cache key inputs
    table = read_artifact(tracklets_path, "tracklets").to_pandas()
    embedded = table.loc[table["num_crops"] > 0]
    assert len(embedded) >= 2 and embedded["attribute_probs"].notna().all()
    probs = np.stack(embedded["attribute_probs"].to_numpy()).astype(np.float32)
    assert probs.shape[1] == len(ATTRIBUTE_VOCABULARY) and ((probs >= 0) & (probs <= 1)).all()

    # A description built from one tracklet's own most probable colours: the search must rank the
    # tracklets exactly as their stored probabilities say (payload and scorer aligned with the vocabulary).
    row = int(np.argmax(embedded["num_crops"].to_numpy()))
    upper = max(("black", "white", "grey", "red", "blue"),
                key=lambda c: probs[row, ATTRIBUTE_VOCABULARY.index(f"upperBody{c.capitalize()}")])
    gender = "woman" if probs[row, ATTRIBUTE_VOCABULARY.index("personalFemale")] > 0.5 else "man"
    text = f"{gender} in a {upper} top"
    expected = score_constraints(parse_description(text).constraints, probs).scores
    engine = load_engine(config)
    results = engine.search_text(text, limit=50)
    assert results and not any("indexed without" in note for note in results.notes)
    found = {(t.camera_id, t.tracklet_id): t.score for r in results for t in r.tracklets}
    for i, tracklet_id in enumerate(embedded["tracklet_id"]):
        assert found[("pets", int(tracklet_id))] == pytest.approx(expected[i], abs=2e-3)
    assert results[0].explanation.startswith(f"{gender} ")
    assert f"upper {upper} " in results[0].explanation


def _trained_weights() -> Path | None:
    named = os.environ.get("SMARTTRACE_ATTRIBUTE_WEIGHTS")
    candidates = [Path(named)] if named else [Path.home() / ".cache" / "smarttrace" / WEIGHTS_NAME]
    return next((p for p in candidates if p.is_file()), None)


def test_trained_model_finds_the_person_in_a_red_jacket(prefect_harness, tmp_path):
    weights = _trained_weights()
    if weights is None:
        pytest.skip(f"needs a trained attribute model ({WEIGHTS_NAME}: run `smarttrace train attributes`)")
    need(PETS / "vtest.avi", PETS / "gt" / "gt.txt", SHARED / "models" / "yolo11n-pose.pt")
    from search import load_engine
    from tasks.detections import iou_xyxy

    config = _pipeline(tmp_path, str(weights))
    gt = pd.read_csv(PETS / "gt" / "gt.txt", header=None).iloc[:, :6]
    gt.columns = ["frame", "id", "x", "y", "w", "h"]
    gt = gt.loc[gt["id"] == RED_JACKET_GT_ID]
    tracks = pa.Table.to_pandas(read_artifact(tmp_path / "run" / "tracks" / "pets.parquet", "tracks"))
    overlap: dict[int, int] = {}  # track id -> frames matched to GT person 10
    for frame, boxes in tracks.groupby("frame_index"):
        person = gt.loc[gt["frame"] == frame + 1]
        if person.empty:
            continue
        box = person[["x", "y", "w", "h"]].to_numpy(float)
        box[:, 2:] += box[:, :2]
        iou = iou_xyxy(box, boxes[["x1", "y1", "x2", "y2"]].to_numpy())[0]
        if iou.max() >= 0.5:
            track = int(boxes["track_id"].iloc[int(np.argmax(iou))])
            overlap[track] = overlap.get(track, 0) + 1
    assert overlap, "GT person 10 was not tracked in the window"
    results = load_engine(config).search_text("red jacket and blue jeans", limit=3)
    top = {t.tracklet_id for r in results for t in r.tracklets}
    assert top & set(overlap), f"red-jacket person's tracks {sorted(overlap)} not in the top 3: " + "; ".join(
        r.explanation for r in results
    )
