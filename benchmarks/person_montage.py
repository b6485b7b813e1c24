"""Montage of each ground-truth id's crops, rows grouped by person, to check a person map by eye.

    python benchmarks/person_montage.py [--sequence ../shared/data/PETS09-S2L1] [--fps 7]
        [--persons benchmarks/annotations/PETS09-S2L1.persons.csv] [-o runs/person_montage.png]

One row per GT id (label "gt id -> person"), 8 clear crops spread over the id's life; ids of one person
are adjacent, so a wrong join or a missed one shows at a glance.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tasks.evaluate_reid import build_reid_protocol  # noqa: E402
from tasks.person_map import load_person_map  # noqa: E402

CELL_W, CELL_H, LABEL_W = 64, 144, 110


def montage(sequence: Path, fps: float, persons: dict[int, int], per_row: int = 8) -> np.ndarray:
    """Rows of crops per GT id, ordered by person then first frame."""
    video = next(p for p in sorted(sequence.iterdir()) if p.suffix.lower() in (".avi", ".mp4"))
    protocol = build_reid_protocol(video, sequence / "gt" / "gt.txt", fps, persons=persons)
    rows = []
    def first_seen(track: int) -> tuple[int, int]:
        return persons[int(track)], int(protocol.frames[protocol.tracks == track].min())

    order = sorted(np.unique(protocol.tracks), key=first_seen)
    for track in order:
        own = np.flatnonzero(protocol.tracks == track)
        clear = own[protocol.overlap[own] < 0.1]
        own = clear if clear.size >= per_row else own
        picks = own[np.linspace(0, own.size - 1, per_row).astype(int)]
        label = np.full((CELL_H, LABEL_W, 3), 255, np.uint8)
        cv2.putText(label, f"{int(track)} -> P{persons[int(track)]}", (4, CELL_H // 2), cv2.FONT_HERSHEY_SIMPLEX,
                    0.55, (0, 0, 0), 2)
        rows.append(np.concatenate([label] + [cv2.resize(protocol.crops[i], (CELL_W, CELL_H)) for i in picks], 1))
    return np.concatenate(rows, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequence", type=Path, default=REPO.parent / "shared" / "data" / "PETS09-S2L1")
    parser.add_argument("--fps", type=float, default=7.0)
    parser.add_argument("--persons", type=Path, default=REPO / "benchmarks" / "annotations" / "PETS09-S2L1.persons.csv")
    parser.add_argument("-o", "--output", type=Path, default=REPO / "runs" / "person_montage.png")
    args = parser.parse_args()
    image = montage(args.sequence, args.fps, load_person_map(args.persons))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.output), image)
    print(f"wrote {args.output} ({image.shape[1]}x{image.shape[0]})")


if __name__ == "__main__":
    main()
