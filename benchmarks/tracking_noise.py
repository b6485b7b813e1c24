"""Tracking's own noise floor: PETS09-S2L1 MOTA / IDF1 when the frames get invisible input noise.

    python benchmarks/tracking_noise.py [--data DIR] [--sigma 1.0] [--seeds 1,2,3] [--precision fp32]

Why: a detector change (INT8, a new export) is judged by MOTA / IDF1 "within 0.01" of the FP32 path.
Tracking is chaotic: one box a pixel off can swap two identities for the rest of a track. This
measures how far the figures move for the SAME model when each frame gets N(0, sigma) grey-level noise
(sigma 1: invisible), so a change can be told apart from that noise. The reference is the clean run
in the same process; the JSON line gives each noisy run and the spread (max - min) over all runs.
The camera, detector and tracker settings are configs/demo.yaml's; the real `track_camera` runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from smarttrace.config import expand_cameras, load_config  # noqa: E402
from tasks.detect import PersonDetector  # noqa: E402
from tasks.evaluate_tracking import evaluate_tracking, load_mot_txt  # noqa: E402
from tasks.export_mot import tracks_to_mot  # noqa: E402
from tasks.track_camera import track_camera  # noqa: E402


class NoisyDetector(PersonDetector):
    """The product's detector on frames with N(0, sigma) grey-level noise (what the tracker gets is unchanged)."""

    def __init__(self, config, sigma: float, seed: int, **kwargs) -> None:  # noqa: ANN001
        super().__init__(config, **kwargs)
        self.sigma, self.rng = sigma, np.random.default_rng(seed)

    def __call__(self, frames):  # noqa: ANN001, ANN204
        if self.sigma > 0:
            frames = [np.clip(frame + self.rng.normal(0, self.sigma, frame.shape).round(), 0, 255).astype(np.uint8)
                      for frame in frames]
        return super().__call__(frames)


def run(data: Path, precision: str, sigma: float, seed: int) -> dict[str, float]:
    config = load_config(REPO / "configs" / "demo.yaml")
    camera = expand_cameras(config.cameras)[0].model_copy(update={"video": str(data / "PETS09-S2L1" / "vtest.avi")})
    detector_config = config.detector.model_copy(update={"precision": precision, "workers": 0})
    detector = NoisyDetector(detector_config, sigma, seed, calibration_videos=[Path(camera.video)])
    tracks = track_camera(camera, detector_config, config.tracker, config.postprocess, detector=detector)
    scores = evaluate_tracking(load_mot_txt(data / "PETS09-S2L1" / "gt" / "gt.txt"),
                               tracks_to_mot(tracks.table.to_pandas(), camera=camera.id))
    figures = {"sigma": sigma, "seed": seed, "mota": scores.mota, "idf1": scores.idf1}
    print(f"{precision} sigma {sigma} seed {seed}: MOTA {scores.mota:.3f} IDF1 {scores.idf1:.3f}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32")
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--seeds", default="1,2,3")
    args = parser.parse_args()
    if not (args.data / "PETS09-S2L1" / "vtest.avi").is_file():
        raise SystemExit(f"{args.data / 'PETS09-S2L1' / 'vtest.avi'}: not found (pass --data)")
    clean = run(args.data, args.precision, 0.0, 0)
    noisy = [run(args.data, args.precision, args.sigma, int(seed)) for seed in args.seeds.split(",")]
    every = [clean, *noisy]
    print(json.dumps({
        "precision": args.precision, "mota_clean": clean["mota"], "idf1_clean": clean["idf1"], "runs": noisy,
        "mota_spread": max(r["mota"] for r in every) - min(r["mota"] for r in every),
        "idf1_spread": max(r["idf1"] for r in every) - min(r["idf1"] for r in every),
        "idf1_ratio_min": min(r["idf1"] for r in noisy) / clean["idf1"],
    }))


if __name__ == "__main__":
    main()
