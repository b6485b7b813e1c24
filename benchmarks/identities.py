"""Identities benchmark: ReID quality, multi-camera global-ID quality, embedding throughput.

    python benchmarks/identities.py [--data DIR]      # DIR defaults to ../shared/data

1. ReID, INTRA-CAMERA protocol on PETS09-S2L1 ground-truth crops (tasks/evaluate_reid.py):
   single-crop query vs multi-crop tracklet embedding, mAP and rank-1/5.
2. PROXY multi-camera scenario (no real multi-camera data set exists here): PETS09-S2L1
   split into two time windows presented as cameras `pets-a` / `pets-b` (same people: must be
   merged), plus TUD-Campus and TUD-Stadtmitte as cameras whose people appear nowhere else
   (any cross-scene merge is an error). The real pipeline runs on all four (detect, track,
   embed, match in camera, match across cameras), then global IDF1, false merges and splits.
3. Embedding throughput (crops/s) and the embed stage's time as a fraction of tracking's.
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
from tasks.evaluate_reid import build_reid_protocol, evaluate_reid  # noqa: E402
from tasks.evaluate_tracking import load_mot_txt  # noqa: E402
from tasks.export_mot import tracks_to_mot  # noqa: E402
from tasks.match_identities import match_cross_camera, match_in_camera  # noqa: E402
from tasks.track_camera import track_camera  # noqa: E402

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


def run_reid(data: Path, embedder: ReidEmbedder) -> dict:
    protocol = build_reid_protocol(data / "PETS09-S2L1" / "vtest.avi", data / "PETS09-S2L1" / "gt" / "gt.txt", 7.0)
    # Multi-crop templates as the embed stage builds them: crops overlapped by another person
    # (IoU > 0.3) left out, plus horizontal-flip averaging. Single crop: the plain baseline.
    multi = evaluate_reid(protocol, embedder, "multi", flip=True, max_overlap_iou=0.3)
    single = evaluate_reid(protocol, embedder, "single")
    print(f"ReID (intra-camera protocol, PETS09-S2L1 GT crops): multi-crop rank-1 {multi.rank1:.3f} "
          f"mAP {multi.map:.3f} rank-5 {multi.rank5:.3f} | single-crop rank-1 {single.rank1:.3f} mAP {single.map:.3f}")
    return {"reid_rank1": multi.rank1, "reid_map": multi.map, "reid_rank5": multi.rank5,
            "reid_single_rank1": single.rank1, "reid_single_map": single.map, "reid_protocol": "intra-camera"}


# The proxy's camera topology: window B starts the moment window A ends, so a person leaving
# `pets-a` appears in `pets-b` within a frame or two. A deployment states such walking times the
# same way (match.transit_windows); without it the sweep gives 0.68 global IDF1 instead of 0.83.
TRANSIT_WINDOWS = {"pets-a->pets-b": (0.0, 3.0)}


def run_scenario(data: Path, config_path: Path, work: Path, dump: Path | None = None) -> dict:
    config = load_config(config_path)
    config = config.model_copy(update={"match": config.match.model_copy(update={"transit_windows": TRANSIT_WINDOWS})})
    detector = PersonDetector(config.detector)
    reid = ReidEmbedder(config.embed.reid_weights, config.embed.reid_batch)
    clip = load_clip(config.embed.clip_model, config.embed.clip_pretrained)
    seconds = {"track": 0.0, "embed": 0.0, "match": 0.0}
    crops = 0
    reid_seconds = 0.0
    tracks, tracklets, cameras = {}, [], scenario(data)
    for camera, _, _ in cameras:
        t0 = time.perf_counter()
        run = track_camera(camera, config.detector, config.tracker, config.postprocess, detector=detector)
        t1 = time.perf_counter()
        embedded = embed_camera(camera, run.table.to_pandas(), config.embed, work, reid, clip)
        t2 = time.perf_counter()
        seconds["track"] += t1 - t0
        seconds["embed"] += t2 - t1
        crops += embedded.crops
        reid_seconds += embedded.seconds["reid"]
        tracks[camera.id] = run.table.to_pandas()
        table = embedded.table.to_pandas()
        table["person_id"] = match_in_camera(table, config.match)
        tracklets.append(table)
        seconds["match"] += time.perf_counter() - t2
    t3 = time.perf_counter()
    joined = pd.concat(tracklets, ignore_index=True)
    if dump is not None:
        pd.to_pickle((tracks, joined, cameras), dump)
    joined["global_id"] = match_cross_camera(joined, config.match)
    seconds["match"] += time.perf_counter() - t3
    truths = []
    for camera, scene, gt_path in cameras:
        labelled = label_tracks(tracks[camera.id], joined, "global_id")
        gt = load_mot_txt(gt_path)
        end = camera.first_frame + (camera.max_frames or 10**9)
        gt = gt.loc[(gt["frame"] > camera.first_frame) & (gt["frame"] <= end)]
        truths.append(CameraTruth(camera.id, scene, gt, tracks_to_mot(labelled)))
    scores = evaluate_identities(truths, PROTOCOL)
    print(f"Identities ({PROTOCOL}): global IDF1 {scores.global_idf1:.3f}, false merges {scores.false_merges}, "
          f"cross-scene merges {scores.cross_scene_merges}, false splits {scores.false_splits}, "
          f"{scores.num_global_ids} global ids for {scores.num_gt_people} people")
    print(f"Time: tracking {seconds['track']:.1f} s, embedding {seconds['embed']:.1f} s "
          f"({crops} crops, {crops / max(reid_seconds, 1e-9):.0f} crops/s OSNet), matching {seconds['match']:.2f} s")
    return {
        "global_idf1": scores.global_idf1,
        "false_merges": scores.false_merges,
        "cross_scene_merges": scores.cross_scene_merges,
        "false_splits": scores.false_splits,
        "num_global_ids": scores.num_global_ids,
        "num_gt_people": scores.num_gt_people,
        "crops_per_s": crops / max(reid_seconds, 1e-9),
        "embed_fraction_of_tracking": seconds["embed"] / max(seconds["track"], 1e-9),
        "tracking_s": seconds["track"],
        "embed_s": seconds["embed"],
        "match_s": seconds["match"],
        "clip": bool(clip),
        "scenario": PROTOCOL,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "demo.yaml")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench-identities")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = run_reid(args.data, ReidEmbedder())
    result.update(run_scenario(args.data, args.config, args.work))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
