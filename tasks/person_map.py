"""Person maps: which ground-truth track ids of a MOT sequence are the same person.

Why: MOTChallenge ground truth labels *tracks*, not people. When someone leaves the view and comes
back, the annotation starts a new id, so PETS09-S2L1's 19 ids are 10 people. Scoring person-level
work (ReID, in-camera re-entry joining, global ids) against track ids counts every correct re-entry
match as a false merge. A person map (CSV ``gt_id,person[,appearance]``, ``#`` comments allowed)
relabels the ground truth at person level; tracking metrics (MOTA, IDF1 per track) keep the raw ids.

A map is checked against the ground truth before use: every GT id must be mapped and two ids of one
person must never share a frame (one person cannot be in two places at once), so a typo in the file
fails loudly instead of quietly inflating a score.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd


def load_person_map(path: str | Path) -> dict[int, int]:
    """Read a person map CSV into {gt id: person number} (persons numbered 1.. in order of first row).

    Raises ``ValueError`` naming the file when it is missing, lacks the ``gt_id``/``person`` columns,
    has a non-integer id or lists an id twice.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"person map {path} does not exist or is not a file")
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    except UnicodeDecodeError as exc:
        raise ValueError(f"person map {path} is not a readable CSV: {exc}") from exc
    rows = list(csv.reader(lines, skipinitialspace=True))
    if not rows or not {"gt_id", "person"} <= set(rows[0]):
        raise ValueError(f"person map {path} lacks column(s) gt_id and/or person; need a gt_id,person header")
    header, body = rows[0], rows[1:]
    if not body:
        raise ValueError(f"person map {path} has no rows")
    numbers: dict[str, int] = {}
    persons: dict[int, int] = {}
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ValueError(f"person map {path} is not a readable CSV: data row {line} has {len(row)} fields, "
                             f"the header {len(header)}")
        record = dict(zip(header, row, strict=True))
        try:
            gt_id = int(record["gt_id"])
        except ValueError:
            raise ValueError(f"person map {path}: gt_id values ['{record['gt_id']}'] are not integers") from None
        if gt_id in persons:
            raise ValueError(f"person map {path}: gt_id [{gt_id}] listed more than once")
        persons[gt_id] = numbers.setdefault(record["person"].strip(), len(numbers) + 1)
    return persons


def apply_person_map(gt: pd.DataFrame, persons: dict[int, int], source: str = "person map") -> pd.DataFrame:
    """``gt`` (MOT rows, column ``id``) with ids replaced by person numbers, after checking the map.

    Raises ``ValueError`` (naming ``source``) when a GT id is not in the map, or when two ids mapped to
    one person appear in the same frame.
    """
    unmapped = sorted(set(gt["id"].astype(int)) - set(persons))
    if unmapped:
        raise ValueError(f"{source}: ground-truth id(s) {unmapped[:10]} are not in the map")
    out = gt.copy()
    out["id"] = out["id"].astype(int).map(persons).astype("int64")
    clash = out.groupby(["frame", "id"]).size()
    clash = clash[clash > 1]
    if not clash.empty:
        frame, person = clash.index[0]
        ids = sorted(gt.loc[(gt["frame"] == frame) & (out["id"] == person), "id"].astype(int))
        raise ValueError(
            f"{source}: ids {ids} are mapped to one person but share frame {frame}; a person cannot be "
            "in two places at once"
        )
    return out
