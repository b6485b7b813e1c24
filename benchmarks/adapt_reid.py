"""Does adapting OSNet to a run's own tracklets help? ReID on PETS09-S2L1 ground truth, base vs adapted.

    smarttrace process CONFIG      # configs/demo.yaml with `max_frames: 398` (window A) and its own run_dir RUN
    smarttrace adapt-reid RUN      # -> RUN/models/osnet_x0_25_adapted.pt
    python benchmarks/adapt_reid.py --weights osnet_x0_25_msmt17.pt --weights RUN/models/osnet_x0_25_adapted.pt

The adaptation saw tracklets only (no ground-truth labels), so scoring on the person-level GT is
legitimate; it is still the SAME scene (an in-domain check, the case adaptation is for), not a
cross-camera figure. Protocol: tasks/evaluate_reid.py, intra-camera, identities = people (person
map), queries = first appearance and re-entry (only the person's OTHER visits count); multi-crop
templates with flip averaging (unless --no-flip) and overlapped crops left out, as benchmarks/identities.py reports.
The GT crops are cut once and embedded by each model. Ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tasks.embed_reid import ReidEmbedder  # noqa: E402
from tasks.evaluate_reid import build_reid_protocol, embed_crops, evaluate_reid  # noqa: E402
from tasks.person_map import load_person_map  # noqa: E402

PERSONS = REPO / "benchmarks" / "annotations" / "PETS09-S2L1.persons.csv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--weights", action="append", help="ReID weights (repeat); default: the zoo MSMT17 file")
    parser.add_argument("--no-flip", action="store_true", help="no flip averaging (half the cost; say so)")
    parser.add_argument("--frame-step", type=int, default=1,
                        help="keep GT boxes of every N-th frame only (a cheaper protocol variant; say so)")
    parser.add_argument("--after-frame", type=int, default=0,
                        help="keep GT frames > N only (1-based; 398 = window B, footage the adaptation never saw)")
    args = parser.parse_args(argv)
    pets = args.data / "PETS09-S2L1"
    if not (pets / "vtest.avi").is_file() or not (pets / "gt" / "gt.txt").is_file():
        print(f"adapt_reid: {pets} lacks vtest.avi or gt/gt.txt: skipped", file=sys.stderr)
        return 2
    persons = load_person_map(PERSONS)
    gt = pets / "gt" / "gt.txt"
    with tempfile.TemporaryDirectory() as folder:
        if args.frame_step > 1 or args.after_frame:  # every N-th GT frame (1-based) after the given one
            frames = [(int(row.split(",")[0]), row) for row in gt.read_text().splitlines()]
            lines = [row for f, row in frames if (f - 1) % args.frame_step == 0 and f > args.after_frame]
            gt = Path(folder) / "gt.txt"
            gt.write_text("\n".join(lines) + "\n")
        first = build_reid_protocol(pets / "vtest.avi", gt, 7.0, persons=persons)
        reentry = build_reid_protocol(pets / "vtest.avi", gt, 7.0, persons=persons, queries_by="re-entry")
    summary: dict[str, dict] = {}
    for weights in args.weights or ["osnet_x0_25_msmt17.pt"]:
        embedder = ReidEmbedder(weights)
        started = time.perf_counter()
        features = embed_crops(first, embedder, flip=not args.no_flip)  # same GT rows and filters in both sets
        scores = {
            "first_multi": evaluate_reid(first, None, "multi", features=features, max_overlap_iou=0.3),
            "reentry_multi": evaluate_reid(reentry, None, "multi", features=features, max_overlap_iou=0.3),
            "reentry_single": evaluate_reid(reentry, None, "single", features=features),
        }
        print(f"{weights} ({len(first.crops)} crops, {time.perf_counter() - started:.0f} s)", flush=True)
        for name, s in scores.items():
            print(f"  {name:>15}: rank-1 {s.rank1:.3f} mAP {s.map:.3f} rank-5 {s.rank5:.3f} ({s.num_queries} queries)")
        summary[str(weights)] = {f"{name}_{k}": round(getattr(s, k), 4) for name, s in scores.items()
                                 for k in ("rank1", "map")}
    flip = "no flip" if args.no_flip else "flip TTA"
    step = f"; GT every {args.frame_step} frames" if args.frame_step > 1 else ""
    step += f"; GT frames > {args.after_frame}" if args.after_frame else ""
    print(json.dumps({"protocol": f"intra-camera PETS09-S2L1, people; {flip}{step}", "results": summary}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
