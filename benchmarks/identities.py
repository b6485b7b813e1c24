"""Identities benchmark: ReID quality, multi-camera global-ID quality, embedding throughput.

    python benchmarks/identities.py [--data DIR]      # DIR defaults to ../shared/data

Ground truth at PERSON level: MOT15 starts a new id when someone re-enters the view, so
PETS09-S2L1's 19 ids are 10 people (benchmarks/annotations/PETS09-S2L1.persons.csv, checked
against the GT by tasks/person_map.py). Scores against the raw ids are printed too.

1. ReID, INTRA-CAMERA protocol on PETS09-S2L1 ground-truth crops (tasks/evaluate_reid.py):
   query = a person's first appearance (headline), and the harder re-entry set (only the person's
   OTHER visits count); multi-crop tracklet embedding vs single crop; mAP and rank-1/5.
2. PROXY multi-camera scenario (no real multi-camera data set exists here): PETS09-S2L1
   split into two time windows presented as cameras `pets-a` / `pets-b` (same people: must be
   merged), plus TUD-Campus and TUD-Stadtmitte as cameras whose people appear nowhere else
   (any cross-scene merge is an error). The real pipeline runs on all four (detect, track,
   embed, match in camera, match across cameras) with the default config, then global IDF1,
   false merges and splits, against the plain reference of the same run: every tracklet its
   own identity (no matching).
3. Embedding throughput (crops/s) and the embed stage's time as a fraction of tracking's, with the same stage
   run with one model, no camera BN, on PyTorch (the product before the ensemble and OpenVINO) as the cost
   reference.
Ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from smarttrace.config import CameraConfig, load_config  # noqa: E402
from tasks.detect import PersonDetector  # noqa: E402
from tasks.embed_clip import load_clip  # noqa: E402
from tasks.embed_reid import ReidEmbedder  # noqa: E402
from tasks.embed_tracklets import embed_camera  # noqa: E402
from tasks.evaluate_identities import CameraTruth, evaluate_identities, label_tracks  # noqa: E402
from tasks.evaluate_reid import build_reid_protocol, embed_crops, evaluate_reid  # noqa: E402
from tasks.evaluate_tracking import load_mot_txt  # noqa: E402
from tasks.export_mot import tracks_to_mot  # noqa: E402
from tasks.match_identities import match_cross_camera, match_in_camera  # noqa: E402
from tasks.person_map import apply_person_map, load_person_map  # noqa: E402
from tasks.track_camera import track_camera  # noqa: E402

SINGLE_MODEL = "osnet_x0_25_msmt17.pt"  # the product's only ReID model before the ensemble (cost reference)
PROTOCOL = "proxy: PETS09-S2L1 split in 2 time windows as 2 cameras + TUD-Campus + TUD-Stadtmitte (disjoint)"


def scenario(data: Path) -> list[tuple[CameraConfig, str, Path]]:
    """(camera, scene, gt.txt) of the proxy scenario."""
    pets = data / "PETS09-S2L1"
    return [
        (CameraConfig(id="pets-a", video=str(pets / "vtest.avi"), fps=7, first_frame=0, max_frames=398,
                      start_time="2009-03-01T09:00:00Z", location="PETS view 001 (window A)"), "pets",
         pets / "gt" / "gt.txt"),
        (CameraConfig(id="pets-b", video=str(pets / "vtest.avi"), fps=7, first_frame=398,
                      start_time="2009-03-01T09:00:00Z", location="PETS view 001 (window B)"), "pets",
         pets / "gt" / "gt.txt"),
        (CameraConfig(id="campus", video=str(data / "TUD-Campus" / "TUD-Campus.mp4"), fps=25,
                      start_time="2009-06-01T10:00:00Z"), "campus", data / "TUD-Campus" / "gt" / "gt.txt"),
        (CameraConfig(id="stadtmitte", video=str(data / "TUD-Stadtmitte" / "TUD-Stadtmitte.mp4"), fps=25,
                      start_time="2009-06-02T11:00:00Z"), "stadtmitte", data / "TUD-Stadtmitte" / "gt" / "gt.txt"),
    ]


PERSONS = REPO / "benchmarks" / "annotations" / "PETS09-S2L1.persons.csv"


def _reid_line(label: str, scores) -> str:
    return (f"  {label}: rank-1 {scores.rank1:.3f} mAP {scores.map:.3f} rank-5 {scores.rank5:.3f} "
            f"({scores.num_queries} queries, {scores.num_gallery} gallery entries)")


def run_reid(data: Path, embedder: ReidEmbedder) -> dict:
    """ReID on PETS09-S2L1 GT crops, intra-camera protocol, three ways (embeddings computed once).

    MOT15 gives a new id each time someone re-enters the view (19 ids, 10 people; see
    benchmarks/annotations/PETS09-S2L1.persons.csv), so the headline scores people: query = a
    person's first appearance. The re-entry query set (only OTHER visits count) is the harder test;
    the raw-id figure is printed for continuity with earlier reports.
    """
    pets = data / "PETS09-S2L1"
    persons = load_person_map(PERSONS)
    first = build_reid_protocol(pets / "vtest.avi", pets / "gt" / "gt.txt", 7.0, persons=persons)
    features = embed_crops(first, embedder, flip=True)
    plain = embed_crops(first, embedder)
    # The same crops in every protocol (same GT rows, same filters), so the features are reused.
    reentry = build_reid_protocol(pets / "vtest.avi", pets / "gt" / "gt.txt", 7.0, persons=persons,
                                  queries_by="re-entry")
    raw = build_reid_protocol(pets / "vtest.avi", pets / "gt" / "gt.txt", 7.0)
    # Multi-crop templates as the embed stage builds them: crops overlapped by another person
    # (IoU > 0.3) left out, plus horizontal-flip averaging. Single crop: the plain baseline.
    multi = evaluate_reid(first, None, "multi", features=features, max_overlap_iou=0.3)
    single = evaluate_reid(first, None, "single", features=plain)
    multi_reentry = evaluate_reid(reentry, None, "multi", features=features, max_overlap_iou=0.3)
    single_reentry = evaluate_reid(reentry, None, "single", features=plain)
    multi_raw = evaluate_reid(raw, None, "multi", features=features, max_overlap_iou=0.3)
    single_raw = evaluate_reid(raw, None, "single", features=plain)
    models = " + ".join(path.name for path in embedder.weights_paths)
    print(f"ReID, INTRA-CAMERA protocol, PETS09-S2L1 GT crops (OSNet {models}, the product's embed.reid_weights):")
    print(_reid_line("people, first appearance, multi-crop", multi))
    print(_reid_line("people, first appearance, single crop", single))
    print(_reid_line("people, re-entry (other visits only), multi-crop", multi_reentry))
    print(_reid_line("people, re-entry (other visits only), single crop", single_reentry))
    print(_reid_line("raw MOT15 ids (a re-entry counts as a miss), multi-crop", multi_raw))
    print(_reid_line("raw MOT15 ids, single crop", single_raw))
    return {
        "reid_rank1": multi.rank1, "reid_map": multi.map, "reid_rank5": multi.rank5,
        "reid_single_rank1": single.rank1, "reid_single_map": single.map,
        "reid_rank1_reentry": multi_reentry.rank1, "reid_map_reentry": multi_reentry.map,
        "reid_single_rank1_reentry": single_reentry.rank1,
        "reid_rank1_mot15_ids": multi_raw.rank1, "reid_map_mot15_ids": multi_raw.map,
        "reid_single_rank1_mot15_ids": single_raw.rank1,
        "reid_protocol": "intra-camera; identities = people (person map); queries = first appearance",
    }


def _truths(cameras, tracks: dict, labels: pd.DataFrame, column: str, persons: dict | None) -> list[CameraTruth]:
    """Per camera: its GT window (person-level for the pets scene when ``persons``) and labelled boxes."""
    truths = []
    for camera, scene, gt_path in cameras:
        labelled = label_tracks(tracks[camera.id], labels, column)
        gt = load_mot_txt(gt_path)
        end = camera.first_frame + (camera.max_frames or 10**9)
        gt = gt.loc[(gt["frame"] > camera.first_frame) & (gt["frame"] <= end)]
        if persons is not None and scene == "pets":
            gt = apply_person_map(gt, persons, source=str(PERSONS))
        truths.append(CameraTruth(camera.id, scene, gt, tracks_to_mot(labelled)))
    return truths


def _single_model_embed_seconds(camera: CameraConfig, tracks: pd.DataFrame, config, work: Path, single: ReidEmbedder,
                                clip) -> float:  # noqa: ANN001 - the config and CLIP types of run_scenario
    """Seconds the same embed stage takes as the product did before (one model, no camera BN): the cost reference."""
    plain = config.embed.model_copy(update={"reid_weights": (SINGLE_MODEL,), "reid_camera_bn": False})
    started = time.perf_counter()
    embed_camera(camera, tracks, plain, work / "single-model", single, clip)
    return time.perf_counter() - started


def run_scenario(data: Path, config_path: Path, work: Path, dump: Path | None = None) -> dict:
    config = load_config(config_path)
    detector = PersonDetector(config.detector)
    reid = ReidEmbedder(config.embed.reid_weights, config.embed.reid_batch, backend=config.embed.reid_backend,
                        flip=config.embed.reid_flip)
    clip = load_clip(config.embed.clip_model, config.embed.clip_pretrained)
    single = ReidEmbedder(SINGLE_MODEL, config.embed.reid_batch, backend="torch")  # the product before: PyTorch
    seconds = {"track": 0.0, "embed": 0.0, "match": 0.0, "embed_single": 0.0}
    crops = 0
    reid_seconds = 0.0
    tracks, tracklets, cameras = {}, [], scenario(data)
    for camera, _, _ in cameras:
        t0 = time.perf_counter()
        run = track_camera(camera, config.detector, config.tracker, config.postprocess, detector=detector)
        t1 = time.perf_counter()
        embedded = embed_camera(camera, run.table.to_pandas(), config.embed, work, reid, clip)
        t2 = time.perf_counter()
        seconds["embed_single"] += _single_model_embed_seconds(camera, run.table.to_pandas(), config, work, single,
                                                               clip)
        t2b = time.perf_counter()
        seconds["track"] += t1 - t0
        seconds["embed"] += t2 - t1
        crops += embedded.crops
        reid_seconds += embedded.seconds["reid"]
        tracks[camera.id] = run.table.to_pandas()
        table = embedded.table.to_pandas()
        table["person_id"] = match_in_camera(table, config.match)
        tracklets.append(table)
        seconds["match"] += time.perf_counter() - t2b
    t3 = time.perf_counter()
    joined = pd.concat(tracklets, ignore_index=True)
    if dump is not None:
        pd.to_pickle((tracks, joined, cameras), dump)
    joined["global_id"] = match_cross_camera(joined, config.match)
    seconds["match"] += time.perf_counter() - t3
    # Plain reference, same run: every tracklet its own identity (no in-camera or cross-camera matching).
    joined["unmatched_id"] = joined.groupby(["camera_id", "tracklet_id"]).ngroup() + 1
    persons = load_person_map(PERSONS)
    scores = evaluate_identities(_truths(cameras, tracks, joined, "global_id", persons), PROTOCOL)
    reference = evaluate_identities(_truths(cameras, tracks, joined, "unmatched_id", persons), PROTOCOL)
    raw = evaluate_identities(_truths(cameras, tracks, joined, "global_id", None), PROTOCOL)
    print(f"Identities ({PROTOCOL}; PETS ground truth at person level):")
    print(f"  global IDF1 {scores.global_idf1:.3f} vs {reference.global_idf1:.3f} with no matching "
          f"(tracklets as identities): ratio {scores.global_idf1 / max(reference.global_idf1, 1e-9):.2f}")
    print(f"  false merges {scores.false_merges} (no matching: {reference.false_merges}), cross-scene merges "
          f"{scores.cross_scene_merges}, false splits {scores.false_splits} (no matching: {reference.false_splits}), "
          f"{scores.num_global_ids} global ids for {scores.num_gt_people} people")
    print(f"  against raw MOT15 ids (each re-entry a different 'person'): global IDF1 {raw.global_idf1:.3f}, "
          f"false merges {raw.false_merges}")
    print(f"Time: tracking {seconds['track']:.1f} s, embedding {seconds['embed']:.1f} s "
          f"({crops} crops, {crops / max(reid_seconds, 1e-9):.0f} crops/s OSNet), matching {seconds['match']:.2f} s; "
          f"the same embed stage with {SINGLE_MODEL} alone, no camera BN, PyTorch (the product before): "
          f"{seconds['embed_single']:.1f} s")
    return {
        "global_idf1": scores.global_idf1,
        "global_idf1_no_matching": reference.global_idf1,
        "global_idf1_ratio_vs_no_matching": scores.global_idf1 / max(reference.global_idf1, 1e-9),
        "false_merges": scores.false_merges,
        "cross_scene_merges": scores.cross_scene_merges,
        "false_splits": scores.false_splits,
        "num_global_ids": scores.num_global_ids,
        "num_gt_people": scores.num_gt_people,
        "global_idf1_mot15_ids": raw.global_idf1,
        "crops_per_s": crops / max(reid_seconds, 1e-9),
        "embed_fraction_of_tracking": seconds["embed"] / max(seconds["track"], 1e-9),
        "embed_fraction_of_tracking_single_model": seconds["embed_single"] / max(seconds["track"], 1e-9),
        "embed_ratio_vs_single_model": seconds["embed"] / max(seconds["embed_single"], 1e-9),
        "tracking_s": seconds["track"],
        "embed_s": seconds["embed"],
        "match_s": seconds["match"],
        "clip": bool(clip),
        "scenario": PROTOCOL + "; PETS identities = people (person map)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "demo.yaml")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench-identities")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = load_config(args.config)
    result = run_reid(args.data, ReidEmbedder(config.embed.reid_weights, config.embed.reid_batch))
    result.update(run_scenario(args.data, args.config, args.work))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
