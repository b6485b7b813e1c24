"""Stage 1 benchmark: accuracy and throughput of SmartTrace tracking vs a plain reference loop.

    python benchmarks/tracking.py --sequence ../shared/data/PETS09-S2L1 [--frames N]

DIR holds one video file, `gt/gt.txt` (MOTChallenge) and `seqinfo.ini` (real frame rate).
Runs, in this order and in this process:
  1. SmartTrace's `track_camera` with the product defaults (configs/demo.yaml's detector,
     tracker and postprocess sections), timed per step (decode, detect, track);
  2. the plain reference: ultralytics `predict` (PyTorch, default settings but imgsz 1280,
     the size at which the plain loop reaches comparable accuracy) + boxmot ByteTrack with
     default parameters, same weights, same frames;
  3. the plain reference a user who knows OpenVINO would run: the same weights exported with ONE
     `model.export(format="openvino", imgsz=1280)` call (into a temporary folder: ../shared is
     read-only), then the same predict + default ByteTrack loop.
All three are scored with `tasks.evaluate_tracking`. `speedup` is ours vs loop 2 (PyTorch),
`speedup_vs_openvino_loop` ours vs loop 3. Ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import configparser
import json
import logging
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from smarttrace.assets import resolve  # noqa: E402
from smarttrace.config import CameraConfig, load_config  # noqa: E402
from tasks.evaluate_tracking import evaluate_tracking, load_mot_txt  # noqa: E402
from tasks.export_mot import tracks_to_mot  # noqa: E402
from tasks.track_camera import track_camera  # noqa: E402
from tasks.video import VIDEO_SUFFIXES, DecodeReport, iter_frames  # noqa: E402

REFERENCE_IMGSZ = 1280


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sequence_files(sequence: Path) -> tuple[Path, Path, float]:
    """(video, gt.txt, real fps) of a MOTChallenge-style folder."""
    videos = sorted(p for p in sequence.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if len(videos) != 1:
        raise SystemExit(f"{sequence}: expected exactly one video file, found {[p.name for p in videos]}")
    info = configparser.ConfigParser()
    info.read(sequence / "seqinfo.ini")
    return videos[0], sequence / "gt" / "gt.txt", float(info["Sequence"]["frameRate"])


def gt_for_frames(gt: pd.DataFrame, frames: int) -> pd.DataFrame:
    return gt.loc[gt["frame"] <= frames].reset_index(drop=True)


def run_ours(video: Path, fps: float, frames: int | None, config_path: Path) -> tuple[pd.DataFrame, dict]:
    config = load_config(config_path)
    camera = CameraConfig(id="bench", video=str(video), fps=fps, max_frames=frames)
    started = time.perf_counter()
    run = track_camera(camera, config.detector, config.tracker, config.postprocess)
    wall = time.perf_counter() - started
    figures = {
        "frames": run.frames,
        "wall_s": wall,
        "fps": run.frames / wall,
        **{f"ms_{step}": 1000 * seconds / run.frames for step, seconds in run.seconds.items()},
        "peak_rss_mb": peak_rss_mb(),
        "backend": config.detector.backend,
        "imgsz": config.detector.imgsz,
        "stride": config.detector.stride,
        "between": config.detector.between,
        "detected_share": run.detected_frames / max(run.frames, 1),
        "tracker": config.tracker.name,
    }
    return tracks_to_mot(run.table.to_pandas()), figures


def export_openvino(work: Path) -> Path:
    """The weights exported the way the ultralytics docs show, one call, default options but imgsz."""
    from ultralytics import YOLO

    weights = work / "yolo11n-pose.pt"
    shutil.copy(resolve("yolo11n-pose.pt"), weights)
    return Path(YOLO(str(weights)).export(format="openvino", imgsz=REFERENCE_IMGSZ))


def run_reference(video: Path, fps: float, frames: int | None, weights: Path) -> tuple[pd.DataFrame, dict]:
    """The plain loop a user would write first: predict + ByteTrack.update, nothing else."""
    import boxmot
    from ultralytics import YOLO

    model = YOLO(str(weights), task="pose")
    tracker = boxmot.ByteTrack(frame_rate=round(fps))
    rows = []
    started = time.perf_counter()
    count = 0
    for index, frame in iter_frames(video, "reference", DecodeReport(), max_frames=frames):
        result = model.predict(frame, imgsz=REFERENCE_IMGSZ, classes=[0], verbose=False)[0]
        boxes = result.boxes
        dets = np.hstack([boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy()[:, None], np.zeros((len(boxes), 1))])
        for x1, y1, x2, y2, track_id, *_ in tracker.update(dets.astype(np.float32), frame):
            rows.append((index + 1, int(track_id), x1, y1, x2 - x1, y2 - y1, 1.0))
        count += 1
    wall = time.perf_counter() - started
    table = pd.DataFrame(rows, columns=["frame", "id", "x", "y", "w", "h", "conf"])
    return table, {"frames": count, "wall_s": wall, "fps": count / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequence", type=Path, default=REPO.parent / "shared" / "data" / "PETS09-S2L1")
    parser.add_argument("--frames", type=int, default=None, help="only the first N frames")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "demo.yaml")
    parser.add_argument("--skip-reference", action="store_true", help="ours only (no ratio)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    video, gt_path, fps = sequence_files(args.sequence)
    ours_mot, ours = run_ours(video, fps, args.frames, args.config)
    gt = gt_for_frames(load_mot_txt(gt_path), ours["frames"])
    ours_scores = evaluate_tracking(gt, ours_mot)
    print(f"{args.sequence.name}: {ours['frames']} frames at {fps:g} fps (real rate)")
    print(
        f"  SmartTrace ({ours['backend']}, imgsz {ours['imgsz']}, stride {ours['stride']}, {ours['tracker']}): "
        f"MOTA {ours_scores.mota:.3f} IDF1 {ours_scores.idf1:.3f} HOTA {ours_scores.hota:.3f} "
        f"IDsw {ours_scores.id_switches} | {ours['fps']:.2f} frames/s, ms/frame decode {ours['ms_decode']:.1f} "
        f"detect {ours['ms_detect']:.1f} track {ours['ms_track']:.1f}, peak RSS {ours['peak_rss_mb']:.0f} MB"
    )
    result = {
        "sequence": args.sequence.name,
        "frames": ours["frames"],
        "mota": ours_scores.mota,
        "idf1": ours_scores.idf1,
        "hota": ours_scores.hota,
        "precision": ours_scores.precision,
        "recall": ours_scores.recall,
        "id_switches": ours_scores.id_switches,
        "fps": ours["fps"],
        "ms_decode": ours["ms_decode"],
        "ms_detect": ours["ms_detect"],
        "ms_track": ours["ms_track"],
        "peak_rss_mb": ours["peak_rss_mb"],
    }
    if not args.skip_reference:
        ref_mot, ref = run_reference(video, fps, args.frames, resolve("yolo11n-pose.pt"))
        ref_scores = evaluate_tracking(gt, ref_mot)
        print(
            f"  plain reference (torch, imgsz {REFERENCE_IMGSZ}, ByteTrack defaults): MOTA {ref_scores.mota:.3f} "
            f"IDF1 {ref_scores.idf1:.3f} HOTA {ref_scores.hota:.3f} | {ref['fps']:.2f} frames/s"
        )
        with tempfile.TemporaryDirectory(prefix="bench-openvino-") as work:
            ov_mot, ov = run_reference(video, fps, args.frames, export_openvino(Path(work)))
        ov_scores = evaluate_tracking(gt, ov_mot)
        print(
            f"  plain OpenVINO reference (one export call, imgsz {REFERENCE_IMGSZ}, ByteTrack defaults): "
            f"MOTA {ov_scores.mota:.3f} IDF1 {ov_scores.idf1:.3f} HOTA {ov_scores.hota:.3f} | {ov['fps']:.2f} frames/s"
        )
        result.update(
            ref_fps=ref["fps"],
            speedup=ours["fps"] / ref["fps"],
            ref_mota=ref_scores.mota,
            ref_idf1=ref_scores.idf1,
            ref_hota=ref_scores.hota,
            ref_openvino_fps=ov["fps"],
            speedup_vs_openvino_loop=ours["fps"] / ov["fps"],
            ref_openvino_mota=ov_scores.mota,
            ref_openvino_idf1=ov_scores.idf1,
            ref_openvino_hota=ov_scores.hota,
        )
        print(f"  speedup {result['speedup']:.2f}x vs the PyTorch loop, "
              f"{result['speedup_vs_openvino_loop']:.2f}x vs the plain OpenVINO loop")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
