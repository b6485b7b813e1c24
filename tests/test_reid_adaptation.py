"""ReID adaptation on a run's own tracklets (tasks/reid_adaptation.py, `smarttrace adapt-reid`).

Hand-built tables whose right answer is known for the adaptation set and the loss; a tiny synthetic
video for the CLI's errors; and the real track + embed stages on 80 PETS09 frames end to end.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from smarttrace.cli import main
from storage.artifacts import write_artifact
from storage.schemas import TRACKLETS_SCHEMA, TRACKS_SCHEMA
from tasks.reid_adaptation import AdaptConfig, batch_hard_triplet_loss, build_adaptation_set
from tasks.select_crops import EDGE_MARGIN_PX

FRAME_HW = (576, 768)


def _track(camera: str, track_id: int, frames: range, x: float, height: float = 100.0,
           detected: set[int] | None = None) -> pd.DataFrame:
    """One track standing at x (pixels), `height` px tall; frames outside `detected` are interpolated."""
    frames = list(frames)
    interpolated = [detected is not None and f not in detected for f in frames]
    return pd.DataFrame({
        "camera_id": camera, "frame_index": frames, "track_id": track_id,
        "x1": x, "y1": 200.0, "x2": x + 40.0, "y2": 200.0 + height,
        "confidence": [0.0 if i else 0.9 for i in interpolated], "interpolated": interpolated,
    })


def _scene() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Camera "cam": 1 and 2 on screen together on frames 5-9 (strangers); 3 later, alone (maybe 1 again);
    7 overlaps 3 on 2 frames only (too few to be sure); 4 too small; 5 mostly interpolated; 9 not a
    tracklet. Camera "cam2": its track 1 is seen at the same time as cam's 1 and 2, but in another camera."""
    tracks = pd.concat([
        _track("cam", 1, range(0, 10), x=100),
        _track("cam", 2, range(5, 15), x=300),
        _track("cam", 3, range(20, 30), x=100),
        _track("cam", 4, range(20, 30), x=500, height=30),
        _track("cam", 5, range(20, 30), x=600, detected={20, 29}),
        _track("cam", 7, range(28, 40), x=300),
        _track("cam", 9, range(0, 10), x=650),
        _track("cam2", 1, range(0, 10), x=100),
    ], ignore_index=True)
    tracklets = pd.DataFrame({"camera_id": ["cam"] * 6 + ["cam2"], "tracklet_id": [1, 2, 3, 4, 5, 7, 1]})
    return tracks, tracklets


def test_adaptation_set_keeps_tracklets_with_enough_good_crops_and_labels_them_contiguously():
    tracks, tracklets = _scene()
    adaptation = build_adaptation_set(tracks, tracklets, {"cam": FRAME_HW, "cam2": FRAME_HW},
                                      AdaptConfig(crops_per_tracklet=16, min_crops=4))
    kept = list(zip(adaptation.tracklets["camera_id"], adaptation.tracklets["tracklet_id"], strict=True))
    assert kept == [("cam", 1), ("cam", 2), ("cam", 3), ("cam", 7), ("cam2", 1)]
    assert adaptation.tracklets["label"].tolist() == [0, 1, 2, 3, 4]
    assert adaptation.skipped == {"no usable crops": 1, "too few usable crops": 1}  # 4 too small; 5 interpolated
    assert adaptation.tracklets["num_crops"].tolist() == [10, 10, 10, 12, 10]  # one per frame: lives < 16 frames
    crops = adaptation.crops
    assert set(crops["label"]) == {0, 1, 2, 3, 4}
    assert crops.groupby("label").size().tolist() == adaptation.tracklets["num_crops"].tolist()
    label_of_cam7 = crops.loc[(crops["camera_id"] == "cam") & (crops["tracklet_id"] == 7), "label"]
    assert set(label_of_cam7) == {3}
    assert crops.loc[crops["label"] == 1, "frame_index"].tolist() == list(range(5, 15))  # spread over its life


def test_only_tracklets_seen_together_in_one_camera_are_negatives():
    tracks, tracklets = _scene()
    adaptation = build_adaptation_set(tracks, tracklets, {"cam": FRAME_HW, "cam2": FRAME_HW})
    # 1 & 2 share 5 frames; 3 & 7 share 2 (< min_cooccur_frames 3); cam2's 1 is in another camera.
    assert adaptation.negative_pairs() == [(0, 1)]
    assert (adaptation.negatives == adaptation.negatives.T).all() and not adaptation.negatives.diagonal().any()
    looser = build_adaptation_set(tracks, tracklets, {"cam": FRAME_HW, "cam2": FRAME_HW},
                                  AdaptConfig(min_cooccur_frames=2))
    assert looser.negative_pairs() == [(0, 1), (2, 3)]


def test_two_boxes_on_one_spot_are_not_taken_for_two_people():
    """A person detected twice (IoU > max_cooccur_iou) is two tracks, but not surely two people."""
    tracks = pd.concat([_track("cam", 1, range(0, 10), x=100), _track("cam", 2, range(0, 10), x=104),
                        _track("cam", 3, range(0, 10), x=400)], ignore_index=True)
    tracklets = pd.DataFrame({"camera_id": "cam", "tracklet_id": [1, 2, 3]})
    config = AdaptConfig(max_overlap_iou=1.0)  # keep the overlapped crops so 1 and 2 both qualify
    adaptation = build_adaptation_set(tracks, tracklets, {"cam": FRAME_HW}, config)
    assert adaptation.num_labels == 3
    assert adaptation.negative_pairs() == [(0, 2), (1, 2)]


def test_max_tracklets_keeps_the_ones_with_most_usable_crops_and_relabels():
    tracks, tracklets = _scene()
    adaptation = build_adaptation_set(tracks, tracklets, {"cam": FRAME_HW, "cam2": FRAME_HW},
                                      AdaptConfig(max_tracklets=2))
    # cam 7 has 12 usable boxes, the rest 10: 7, then the first in (camera, id) order among ties.
    assert list(zip(adaptation.tracklets["camera_id"], adaptation.tracklets["tracklet_id"], strict=True)) == [
        ("cam", 1), ("cam", 7)]
    assert adaptation.tracklets["label"].tolist() == [0, 1]
    assert adaptation.skipped["over max_tracklets"] == 3
    assert adaptation.negatives.shape == (2, 2)


def test_edge_crops_are_not_usable():
    tracks = _track("cam", 1, range(0, 10), x=EDGE_MARGIN_PX - 1)
    adaptation = build_adaptation_set(tracks, pd.DataFrame({"camera_id": ["cam"], "tracklet_id": [1]}),
                                      {"cam": FRAME_HW})
    assert adaptation.num_labels == 0 and adaptation.skipped == {"no usable crops": 1}
    assert adaptation.crops.empty and adaptation.negatives.shape == (0, 0)


def test_batch_hard_triplet_loss_uses_the_hardest_positive_and_only_known_negatives():
    embeddings = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [0.1, 0.0]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    negatives = torch.tensor([[False, True, False], [True, False, False], [False, False, False]])
    loss, anchors = batch_hard_triplet_loss(embeddings, labels, negatives, margin=0.5)
    # anchor 0: pos 2, neg 1 -> 1.5 (label 2 at 0.1 is NOT a known stranger); anchor 1: 2 - sqrt(5) + 0.5;
    # anchor 2: pos 2, neg 1 -> 1.5; anchor 3: pos 2, neg 3 -> 0; anchor 4: no positive, no negative.
    assert anchors == 4
    assert float(loss) == pytest.approx((1.5 + 2 - math.sqrt(5) + 0.5 + 1.5 + 0.0) / 4, abs=1e-5)
    none, count = batch_hard_triplet_loss(embeddings, labels, torch.zeros(3, 3, dtype=torch.bool), margin=0.5)
    assert count == 0 and float(none) == 0.0


def test_triplet_loss_gradient_pulls_positives_together_and_pushes_negatives_apart():
    embeddings = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    negatives = torch.tensor([[False, True], [True, False]])
    loss, _ = batch_hard_triplet_loss(embeddings, labels, negatives, margin=0.5)
    loss.backward()
    step = embeddings.detach() - 0.1 * embeddings.grad
    after, _ = batch_hard_triplet_loss(step, labels, negatives, margin=0.5)
    assert float(after) < float(loss.detach())


# ------------------------------------------------------------------------------------------- CLI errors


def _write_tiny_run(root: Path, video: Path, tracks: pd.DataFrame) -> None:
    """A run folder with camera "cam": its tracks, one tracklets row per track (no embeddings), a video."""
    from smarttrace.lineage import build_manifest

    tracks = tracks.assign(
        time_s=tracks["frame_index"] / 7.0,
        timestamp=pd.to_datetime(tracks["frame_index"] * 1000 // 7, unit="ms", utc=True),
        keypoints=[np.zeros(51, np.float32)] * len(tracks),
    )
    write_artifact(pa.Table.from_pandas(tracks, schema=TRACKS_SCHEMA, preserve_index=False),
                   root / "tracks" / "cam.parquet", "tracks",
                   build_manifest(stage="track", inputs=[video], config_hash="", models=[]))
    rows = []
    for track_id, group in tracks.groupby("track_id"):
        rows.append({name: None for name in TRACKLETS_SCHEMA.names} | {
            "camera_id": "cam", "tracklet_id": int(track_id), "start_frame": int(group["frame_index"].min()),
            "end_frame": int(group["frame_index"].max()), "start_time_s": 0.0, "end_time_s": 1.0,
            "start_timestamp": group["timestamp"].min(), "end_timestamp": group["timestamp"].max(),
            "num_boxes": len(group), "mean_box_height": 100.0, "mean_box_width": 40.0, "foot_path": [],
            "video_path": str(video), "num_crops": 0,
        })
    write_artifact(pa.Table.from_pylist(rows, schema=TRACKLETS_SCHEMA), root / "tracklets" / "cam.parquet",
                   "tracklets")


def _tiny_video(path: Path, frames: int = 12) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 7, (FRAME_HW[1], FRAME_HW[0]))
    for index in range(frames):
        writer.write(np.full((*FRAME_HW, 3), index * 10, np.uint8))
    writer.release()
    return path


def test_adapt_reid_cli_names_a_missing_or_empty_run_folder(tmp_path, capsys):
    assert main(["adapt-reid", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "does not exist" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    assert main(["adapt-reid", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "empty" in err and "no tracks artifacts" in err and len(err.strip().splitlines()) == 1


def test_adapt_reid_cli_says_when_a_run_has_too_few_usable_tracklets(tmp_path, capsys):
    video = _tiny_video(tmp_path / "cam.avi")
    run = tmp_path / "run"
    # two tracklets, never on screen together, one of them too small: nothing to learn from
    _write_tiny_run(run, video, pd.concat([_track("cam", 1, range(0, 6), x=100),
                                           _track("cam", 2, range(6, 12), x=300, height=20)], ignore_index=True))
    assert main(["adapt-reid", str(run)]) == 2
    err = capsys.readouterr().err
    assert str(run) in err and "too few usable tracklets" in err and "1 no usable crops" in err
    assert not (run / "models").exists()


def test_adapt_reid_cli_refuses_an_output_name_the_product_cannot_load(tmp_path, capsys):
    video = _tiny_video(tmp_path / "cam.avi")
    _write_tiny_run(tmp_path / "run", video, _track("cam", 1, range(0, 6), x=100))
    assert main(["adapt-reid", str(tmp_path / "run"), "--out", str(tmp_path / "mine.pt")]) == 2
    assert "must start with 'osnet_x0_25'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ end to end


ADAPT_RUN = Path(__file__).resolve().parent.parent / "runs" / ".test-cache" / "adapt-run"
ADAPT_FRAMES = 80


@pytest.fixture
def short_pets_run(pets_dir, models_dir) -> Path:
    """A run folder of the real track and embed stages on PETS09-S2L1's first 80 frames, cached between
    sessions (no Prefect: its temporary server is what times out on a loaded machine, and the stages are
    the same functions the flow calls). Rebuilt when an artifact is missing or of another schema."""
    from smarttrace.config import CameraConfig, DetectorConfig, EmbedConfig, PostprocessConfig, TrackerConfig
    from smarttrace.errors import ArtifactError
    from smarttrace.lineage import build_manifest
    from storage.artifacts import read_artifact
    from storage.layout import RunLayout
    from tasks.embed_reid import ReidEmbedder
    from tasks.embed_tracklets import embed_camera
    from tasks.track_camera import track_camera

    layout = RunLayout(ADAPT_RUN)
    try:
        read_artifact(layout.tracks("pets"), "tracks")
        read_artifact(layout.tracklets("pets"), "tracklets")
        return ADAPT_RUN
    except ArtifactError:
        pass
    camera = CameraConfig(id="pets", video=str(pets_dir / "vtest.avi"), fps=7, max_frames=ADAPT_FRAMES,
                          start_time="2009-03-01T09:00:00Z")
    tracked = track_camera(camera, DetectorConfig(), TrackerConfig(), PostprocessConfig())
    write_artifact(tracked.table, layout.tracks("pets"), "tracks",
                   build_manifest(stage="track", inputs=tracked.videos, config_hash="", models=[]))
    embedded = embed_camera(camera, tracked.table.to_pandas(), EmbedConfig(), ADAPT_RUN, ReidEmbedder(), None)
    write_artifact(embedded.table, layout.tracklets("pets"), "tracklets",
                   build_manifest(stage="embed", inputs=[layout.tracks("pets")], config_hash="", models=[]))
    return ADAPT_RUN


def test_adapted_weights_load_in_the_product_and_change_its_embeddings(short_pets_run, tmp_path):
    """Real short run (PETS09-S2L1, 80 frames), 3 training steps; the product's embedder loads the result."""
    from smarttrace.cli_adapt import adapt_run
    from storage.artifacts import read_artifact, read_manifest
    from tasks.embed_reid import ReidEmbedder, model_name_of
    from tasks.reid_adaptation import cut_crops

    run = short_pets_run
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # seen here: on a 2-core box shared with other jobs, 2 OpenMP threads ran ~10x slower
    try:
        out = adapt_run(run, tmp_path / "osnet_x0_25_adapted.pt", steps=3)
    finally:
        torch.set_num_threads(threads)
    assert model_name_of(out) == "osnet_x0_25"
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["stage"] == "adapt_reid" and manifest["source_run"] == str(run.resolve())
    assert manifest["base_weights_sha256"].startswith("6f57607f") and manifest["steps"] == 3
    assert manifest["tracklets"] >= 3 and manifest["negative_pairs"] >= 1 and manifest["code"]["package"]
    assert torch.load(out, map_location="cpu")["smarttrace"]["crops"] == manifest["crops"]

    tracks = read_artifact(run / "tracks" / "pets.parquet", "tracks").to_pandas()
    detected = tracks.loc[~tracks["interpolated"] & ((tracks["y2"] - tracks["y1"]) > 60)].head(16)
    video = Path(read_manifest(run / "tracks" / "pets.parquet")["inputs"][0]["path"])
    crops = cut_crops(detected.assign(camera_id="pets"), {"pets": [video]})
    base = ReidEmbedder()(crops)
    adapted_embedder = ReidEmbedder(weights=str(out))
    assert adapted_embedder.weights_path == out
    adapted = adapted_embedder(crops)
    assert adapted.shape == base.shape == (len(crops), 512)
    assert np.allclose(np.linalg.norm(adapted, axis=1), 1.0, atol=1e-4)
    cosine = (base * adapted).sum(axis=1)
    assert (cosine < 0.9999).all(), cosine  # the weights changed what the model sees
    assert (cosine > 0.5).all(), cosine  # but a few low-rate steps only nudge it


def test_camera_bn_adds_a_camera_vector_and_leaves_the_search_vector_alone(short_pets_run, pets_dir):
    """embed.reid_camera_bn writes `reid_camera_embedding` (the camera's own BN statistics: vectors move, stay unit
    length) while `reid_embedding`, which an uploaded photo is compared with, keeps the trained statistics."""
    from smarttrace.config import CameraConfig, EmbedConfig
    from storage.artifacts import read_artifact
    from storage.layout import RunLayout
    from tasks.embed_reid import ReidEmbedder
    from tasks.embed_tracklets import embed_camera

    camera = CameraConfig(id="pets", video=str(pets_dir / "vtest.avi"), fps=7, max_frames=ADAPT_FRAMES,
                          start_time="2009-03-01T09:00:00Z")
    tracks = read_artifact(RunLayout(short_pets_run).tracks("pets"), "tracks").to_pandas()
    reid = ReidEmbedder()

    def vectors(run, column: str) -> np.ndarray:
        return np.array([v for v in run.table.column(column).to_pylist() if v is not None])

    off = embed_camera(camera, tracks, EmbedConfig(attribute_weights="", reid_camera_bn=False), short_pets_run, reid,
                       None)
    on = embed_camera(camera, tracks, EmbedConfig(attribute_weights="", reid_camera_bn=True,
                                                  reid_camera_bn_min_crops=2), short_pets_run, reid, None)
    assert off.table.column("reid_camera_embedding").null_count == off.table.num_rows
    plain, own = vectors(on, "reid_embedding"), vectors(on, "reid_camera_embedding")
    parts = EmbedConfig().reid_camera_parts  # the camera vector also carries body-part stripes
    assert own.shape == (len(plain), reid.camera_dim(parts)) and len(plain) > 0 and own.shape[1] > plain.shape[1]
    np.testing.assert_allclose(plain, vectors(off, "reid_embedding"), atol=1e-5)  # search vector unchanged
    np.testing.assert_allclose(np.linalg.norm(own, axis=1), 1.0, atol=1e-4)
    body = own[:, : plain.shape[1]] / np.linalg.norm(own[:, : plain.shape[1]], axis=1, keepdims=True)
    assert float(np.mean(np.sum(plain * body, axis=1))) < 0.999
    few = embed_camera(camera, tracks, EmbedConfig(attribute_weights="", reid_camera_bn=True,
                                                   reid_camera_bn_min_crops=10**6), short_pets_run, reid, None)
    assert few.table.column("reid_camera_embedding").null_count == few.table.num_rows  # too few crops: none
    again = embed_camera(camera, tracks, EmbedConfig(attribute_weights="", reid_camera_bn=False), short_pets_run,
                         reid, None)
    np.testing.assert_allclose(vectors(again, "reid_embedding"), plain, atol=1e-5)  # trained statistics are back
