"""Throughput benchmark: what one machine processes, per detector setting, through the real flow.

    python benchmarks/throughput.py [--data DIR] [--variants fp32+workers=0+stride=1,fp32+stride=1,fp32]
                                    [--repeat N] [--frames N]

A variant is a precision with optional detector overrides (`int8+workers=0`, `fp32+stride=1`); the
rest of the detector section is configs/demo.yaml's. The default reference, `fp32+workers=0+stride=1`,
is the FP32 loop before detector threads and keyframes (every frame detected, one at a time between
decoding and tracking); `fp32+stride=1` adds the detector thread; `fp32` is the product default
(keyframes every 4th frame + optical flow between them, tasks/keyframes.py).

Cameras: PETS09-S2L1 (795 frames, 7 fps), TUD-Campus (71, 25 fps) and TUD-Stadtmitte (179, 25 fps),
each repeated `--repeat` times as separate cameras (more camera-hours per run). For each variant,
in this process and against one temporary Prefect API (started before timing):
  1. warm-up, untimed: the detector's exports (FP32, and INT8 calibrated on each camera's video) are
     built once into the cache, as a user's first run does;
  2. `flows.process.run_process` on a fresh run folder, timed wall-clock (every stage, to the index);
  3. MOTA / IDF1 of the PETS09 and TUD-Campus tracks artifacts against MOT15 ground truth.
The reference (the first variant) is measured in the same run: `speedup` = fps / fps_fp32, where
`fps` is the last variant listed (the product default). Per-stage shares come from the artifacts'
manifests (seconds per step); peak RSS is sampled every 0.2 s. Ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import configparser
import json
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SEQUENCES = ("PETS09-S2L1", "TUD-Campus", "TUD-Stadtmitte")
SCORED = {"PETS09-S2L1": "pets", "TUD-Campus": "tud_campus"}


class PeakRss:
    """Peak resident memory of this process (MB) while the block runs, sampled every 0.2 s."""

    def __enter__(self) -> PeakRss:
        self.peak_mb, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, process.memory_info().rss / 2**20)
            self._stop.wait(0.2)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def sequence(data: Path, name: str) -> tuple[Path, Path, float]:
    """(video, gt.txt, real fps) of a MOTChallenge-style folder."""
    folder = data / name
    video = next(p for p in sorted(folder.iterdir()) if p.suffix.lower() in (".avi", ".mp4"))
    info = configparser.ConfigParser()
    info.read(folder / "seqinfo.ini")
    return video, folder / "gt" / "gt.txt", float(info["Sequence"]["frameRate"])


def safe(spec: str) -> str:
    """A variant spec as a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in spec)


def camera_id(name: str, copy: int) -> str:
    return f"{name.lower()}-{copy}"


def parse_variant(spec: str) -> tuple[str, dict]:
    """'int8' or 'fp32+workers=1+conf=0.11' -> (precision, detector overrides); values parsed as YAML."""
    precision, *overrides = spec.split("+")
    if precision not in ("fp32", "int8"):
        raise SystemExit(f"variant {spec!r}: precision must be fp32 or int8")
    pairs = [item.split("=", 1) for item in overrides]
    if any(len(pair) != 2 for pair in pairs):
        raise SystemExit(f"variant {spec!r}: overrides are key=value")
    return precision, {key: yaml.safe_load(value) for key, value in pairs}


def write_config(work: Path, run_dir: Path, data: Path, spec: str, repeat: int, frames: int | None,
                 sequences: tuple[str, ...] = SEQUENCES) -> Path:  # fmt: skip
    precision, overrides = parse_variant(spec)
    cameras = []
    for name in sequences:
        video, _, fps = sequence(data, name)
        for copy in range(repeat):
            camera = {"id": camera_id(name, copy), "video": str(video), "fps": fps}
            if frames:
                camera["max_frames"] = frames
            cameras.append(camera)
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    config = {
        "cameras": cameras,
        "detector": {**demo["detector"], "precision": precision, **overrides},
        "tracker": demo["tracker"],
        "postprocess": demo["postprocess"],
        "storage": {"run_dir": str(run_dir)},
        "embed": {"clip_pretrained": ""},  # no CLIP weights exist here; the same for every precision
        "flow": demo["flow"],
    }
    path = work / f"{safe(spec)}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def warm_up(config_path: Path) -> tuple[float, list[str]]:
    """Build the detector exports every camera needs (untimed in the figures); (seconds, precisions)."""
    from smarttrace.config import expand_cameras, load_config
    from tasks.detect import PersonDetector
    from tasks.video import DecodeReport, camera_videos, iter_frames

    config = load_config(config_path)
    started, loaded, seen = time.perf_counter(), [], set()
    for camera in expand_cameras(config.cameras):
        if camera.video in seen:
            continue
        seen.add(camera.video)
        videos = camera_videos(camera.video)
        detector = PersonDetector(config.detector, calibration_videos=videos)
        detector([next(iter_frames(videos[0], camera.id, DecodeReport(), max_frames=1))[1]])
        loaded.append(detector.precision)
    return time.perf_counter() - started, loaded


def score(run_dir: Path, data: Path, frames: int | None, sequences: tuple[str, ...] = SEQUENCES) -> dict[str, float]:
    from storage.artifacts import read_artifact
    from storage.layout import RunLayout
    from tasks.evaluate_tracking import evaluate_tracking, load_mot_txt
    from tasks.export_mot import tracks_to_mot

    figures = {}
    for name, short in SCORED.items():
        if name not in sequences:
            continue
        camera = camera_id(name, 0)
        tracks = read_artifact(RunLayout(run_dir).tracks(camera), "tracks").to_pandas()
        gt = load_mot_txt(sequence(data, name)[1])
        if frames:
            gt = gt.loc[gt["frame"] <= frames]
        scores = evaluate_tracking(gt.reset_index(drop=True), tracks_to_mot(tracks, camera=camera))
        figures[f"mota_{short}"], figures[f"idf1_{short}"] = scores.mota, scores.idf1
    return figures


def stage_seconds(run_dir: Path) -> tuple[dict[str, float], int, float]:
    """Summed step seconds per step over the cameras (tracks.detect, tracklets.reid, ...), frames processed,
    and Stage 1's wall-clock seconds summed over the cameras (each tracks manifest's `wall_s`)."""
    from storage.artifacts import read_manifest

    seconds: dict[str, float] = {}
    frames, tracking_wall = 0, 0.0
    for kind in ("tracks", "tracklets"):
        for path in sorted((run_dir / kind).glob("*.parquet")):
            manifest = read_manifest(path)
            for step, value in (manifest.get("seconds") or {}).items():
                seconds[f"{kind}.{step}"] = seconds.get(f"{kind}.{step}", 0.0) + float(value)
            if kind == "tracks":
                frames += int(manifest.get("frames") or 0)
                tracking_wall += float(manifest.get("wall_s") or 0.0)
    return seconds, frames, tracking_wall


def camera_seconds(config_path: Path, run_dir: Path) -> float:
    """Seconds of video processed: each camera's frames / its real rate."""
    from smarttrace.config import expand_cameras, load_config
    from storage.artifacts import read_manifest
    from storage.layout import RunLayout

    total = 0.0
    for camera in expand_cameras(load_config(config_path).cameras):
        total += int(read_manifest(RunLayout(run_dir).tracks(camera.id)).get("frames") or 0) / camera.fps
    return total


def run_variant(work: Path, data: Path, spec: str, repeat: int, frames: int | None,
                sequences: tuple[str, ...] = SEQUENCES) -> dict:  # fmt: skip
    from flows.process import run_process

    run_dir = work / f"run-{safe(spec)}"
    config = write_config(work, run_dir, data, spec, repeat, frames, sequences)
    warm_s, loaded = warm_up(config)
    with PeakRss() as rss:
        started = time.perf_counter()
        run_process(config)
        wall = time.perf_counter() - started
    seconds, frames_done, tracking_s = stage_seconds(run_dir)
    shares = {step: value / (sum(seconds.values()) or 1.0) for step, value in seconds.items()}
    video_s = camera_seconds(config, run_dir)
    figures = {
        "variant": spec, "precision": parse_variant(spec)[0], "loaded": sorted(set(loaded)),
        "warm_up_s": warm_s, "wall_s": wall,
        "frames": frames_done, "fps": frames_done / wall, "tracking_fps": frames_done / max(tracking_s, 1e-9),
        "camera_hours_per_hour": video_s / wall,
        "peak_rss_mb": rss.peak_mb, "shares": shares, **score(run_dir, data, frames, sequences),
    }
    print(
        f"{spec} (loaded {','.join(figures['loaded'])}): {frames_done} frames in {wall:.1f} s = "
        f"{figures['fps']:.2f} frames/s, {figures['camera_hours_per_hour']:.2f} camera-h/h, peak RSS "
        f"{rss.peak_mb:.0f} MB | Stage 1 alone {figures['tracking_fps']:.2f} frames/s | "
        + "".join(f"{name} MOTA {figures[f'mota_{short}']:.3f} IDF1 {figures[f'idf1_{short}']:.3f} | "
                  for name, short in SCORED.items() if f"mota_{short}" in figures)
        + "shares " + " ".join(f"{k} {v:.0%}" for k, v in sorted(shares.items(), key=lambda kv: -kv[1])),
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--variants", "--precisions", default="fp32+workers=0+stride=1,fp32+stride=1,fp32",
                        help="comma-separated precision[+key=value...] (detector overrides, e.g. int8+workers=0); "
                             "the first is the reference and must be fp32 (default: the inline FP32 loop)")
    parser.add_argument("--repeat", type=int, default=1, help="copies of each video, as separate cameras")
    parser.add_argument("--frames", type=int, default=None, help="only the first N frames of each camera")
    parser.add_argument("--sequences", default=",".join(SEQUENCES),
                        help=f"comma-separated, from {', '.join(SEQUENCES)} (PETS09-S2L1 alone: the issue's 2x target)")
    args = parser.parse_args()
    variants = args.variants.split(",")
    sequences = tuple(args.sequences.split(","))
    if not sequences or not set(sequences) <= set(SEQUENCES):
        raise SystemExit(f"--sequences: choose from {', '.join(SEQUENCES)}")
    for spec in variants:
        parse_variant(spec)
    if parse_variant(variants[0])[0] != "fp32":
        raise SystemExit("--variants must start with an fp32 variant: it is the reference")
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with tempfile.TemporaryDirectory() as work, prefect_test_harness(server_startup_timeout=60):
        runs = {spec: run_variant(Path(work), args.data, spec, args.repeat, args.frames, sequences)
                for spec in variants}  # fmt: skip
    reference, best = runs[variants[0]], runs[variants[-1]]
    result = {
        "variant": best["variant"],
        "precision": best["precision"],
        "fps": best["fps"],
        "fps_fp32": reference["fps"],
        "speedup": best["fps"] / reference["fps"],
        "tracking_fps": best["tracking_fps"],
        "tracking_fps_fp32": reference["tracking_fps"],
        "tracking_speedup": best["tracking_fps"] / reference["tracking_fps"],
        "sequences": list(sequences),
        **{f"{key}{suffix}": run.get(key) for key in ("mota_pets", "idf1_pets", "mota_tud_campus", "idf1_tud_campus")
           for suffix, run in (("", best), ("_fp32", reference))},
        "camera_hours_per_hour": best["camera_hours_per_hour"],
        "camera_hours_per_hour_fp32": reference["camera_hours_per_hour"],
        "peak_rss_mb": best["peak_rss_mb"],
        "frames": best["frames"],
        "shares": {k: round(v, 3) for k, v in best["shares"].items()},
        "loaded": best["loaded"],
        "variants": {spec: {k: round(v, 4) if isinstance(v, float) else v for k, v in run.items() if k != "shares"}
                     for spec, run in runs.items()},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
