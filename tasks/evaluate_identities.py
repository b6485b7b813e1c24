"""Global-identity evaluation over several cameras (multi-camera IDF1, merges, splits).

No real multi-camera data set with cross-camera ground truth exists on our machines, so
scenarios are PROXIES built from real single-camera videos: e.g. two time windows of
PETS09-S2L1 presented as two cameras (the same people, so they must be merged), plus
TUD-Campus and TUD-Stadtmitte as cameras whose people appear nowhere else (any merge across
scenes is an error). Every report names its scenario a proxy.

Ground-truth identities are namespaced by scene: (scene, gt id). Cameras of one scene share
its ids. Global IDF1 is IDF1 over all cameras' frames concatenated, predicted ids = global ids.
MOT ground truth labels tracks: a person re-entering the view gets a new id. Relabel such a
scene's GT with a person map first (tasks/person_map.py), or correct re-entry joins count as
false merges.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from tasks.evaluate_tracking import box_iou, evaluate_tracking

FRAME_OFFSET = 1_000_000  # per camera, so frames of different cameras never collide


@dataclass(frozen=True)
class CameraTruth:
    """One camera of a scenario: its scene, MOT ground truth and predictions (MOT rows, id = global id)."""

    camera_id: str
    scene: str
    gt: pd.DataFrame
    pred: pd.DataFrame


@dataclass(frozen=True)
class IdentityScores:
    """Multi-camera identity quality. `protocol` names the scenario as a proxy."""

    global_idf1: float
    global_idp: float
    global_idr: float
    false_merges: int  # extra ground-truth people inside predicted identities
    cross_scene_merges: int  # predicted identities spanning cameras of different scenes
    false_splits: int  # extra predicted identities per ground-truth person
    num_global_ids: int
    num_gt_people: int
    protocol: str

    def to_dict(self) -> dict:
        return asdict(self)


def _match_frame(gt: pd.DataFrame, pred: pd.DataFrame, iou_threshold: float) -> list[tuple[int, int]]:
    """(gt row, pred row) positional pairs matched by IoU >= threshold (Hungarian)."""
    if gt.empty or pred.empty:
        return []
    iou = box_iou(gt[["x", "y", "w", "h"]].to_numpy(float), pred[["x", "y", "w", "h"]].to_numpy(float))
    rows, cols = linear_sum_assignment(-iou)
    return [(r, c) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= iou_threshold]


def _matched_pairs(cameras: list[CameraTruth], iou_threshold: float) -> pd.DataFrame:
    """One row per matched box: camera, scene, gt id, predicted global id."""
    records = []
    for camera in cameras:
        pred_by_frame = dict(tuple(camera.pred.groupby("frame")))
        for frame, gt_rows in camera.gt.groupby("frame"):
            pred_rows = pred_by_frame.get(frame)
            if pred_rows is None:
                continue
            for r, c in _match_frame(gt_rows, pred_rows, iou_threshold):
                gt_id, global_id = int(gt_rows["id"].iloc[r]), int(pred_rows["id"].iloc[c])
                records.append((camera.camera_id, camera.scene, gt_id, global_id))
    return pd.DataFrame(records, columns=["camera_id", "scene", "gt_id", "global_id"])


def _count_extra(pairs: pd.DataFrame, by: list[str], other: list[str], min_boxes: int) -> int:
    """Sum over groups of (number of distinct `other` with >= min_boxes matched boxes) - 1."""
    if pairs.empty:
        return 0
    counts = pairs.groupby(by + other).size()
    counts = counts[counts >= min_boxes].reset_index()
    return int((counts.groupby(by).size() - 1).clip(lower=0).sum())


def evaluate_identities(
    cameras: list[CameraTruth], protocol: str, iou_threshold: float = 0.5, min_boxes: int = 10
) -> IdentityScores:
    """Score predicted global ids against scene-namespaced ground truth over all cameras."""
    gt_ids: dict[tuple[str, int], int] = {}
    gts, preds = [], []
    for k, camera in enumerate(cameras):
        gt = camera.gt.copy()
        gt["id"] = [gt_ids.setdefault((camera.scene, int(i)), len(gt_ids) + 1) for i in gt["id"]]
        gt["frame"] += k * FRAME_OFFSET
        pred = camera.pred.copy()
        pred["frame"] += k * FRAME_OFFSET
        gts.append(gt)
        preds.append(pred)
    scores = evaluate_tracking(pd.concat(gts, ignore_index=True), pd.concat(preds, ignore_index=True), iou_threshold)
    pairs = _matched_pairs(cameras, iou_threshold)
    pairs["gt_key"] = pairs["scene"] + ":" + pairs["gt_id"].astype(str)
    scene_of = {c.camera_id: c.scene for c in cameras}
    pred_scenes = pd.concat(
        [pd.DataFrame({"global_id": c.pred["id"].unique(), "scene": scene_of[c.camera_id]}) for c in cameras]
    ).drop_duplicates()
    cross_scene = int((pred_scenes.groupby("global_id")["scene"].nunique() > 1).sum())
    return IdentityScores(
        global_idf1=scores.idf1,
        global_idp=scores.idp,
        global_idr=scores.idr,
        false_merges=_count_extra(pairs, ["global_id"], ["gt_key"], min_boxes),
        cross_scene_merges=cross_scene,
        false_splits=_count_extra(pairs, ["gt_key"], ["global_id"], min_boxes),
        num_global_ids=int(pd.concat(preds)["id"].nunique()) if preds else 0,
        num_gt_people=len(gt_ids),
        protocol=protocol,
    )


def label_tracks(tracks: pd.DataFrame, identities: pd.DataFrame, column: str) -> pd.DataFrame:
    """Tracks rows with `track_id` replaced by the tracklet's person_id or global_id."""
    key = identities[["camera_id", "tracklet_id", column]].rename(columns={"tracklet_id": "track_id"})
    labelled = tracks.merge(key, on=["camera_id", "track_id"], how="inner")
    return labelled.assign(track_id=labelled[column].astype(np.int64)).drop(columns=[column])
