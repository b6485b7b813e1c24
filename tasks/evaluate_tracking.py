"""Score a tracker's output against ground truth: CLEAR-MOT, identity (IDF1) and HOTA metrics.

CLEAR-MOT (MOTA, MOTP, ...) and the identity metrics come from motmetrics, whose own test suite publishes
the values it gives on the TUD sequences it ships, so our tests can check we drive it the way its authors
do. HOTA is not in motmetrics 1.4.0; it is implemented here following TrackEval's ``metrics/hota.py``
(Luiten et al. 2020, the code behind the MOTChallenge leaderboard) step by step, so that our HOTA is the
leaderboard's HOTA without making TrackEval a dependency.

Conventions (all taken from motmetrics, so the published numbers are reproduced):

* Frames: every frame that appears in the ground truth *or* in the prediction is evaluated, as
  ``motmetrics.utils.compare_to_groundtruth`` does: a frame only in the prediction yields false positives,
  a frame only in the ground truth yields misses. ``num_frames`` counts these frames; frames in which
  neither has a box are not counted (they would change no score).
* MOTP is motmetrics' MOTP: the mean *distance* ``1 - IoU`` of matched pairs, so lower is better. The
  MOTChallenge web tables print ``1 - motp`` (the mean overlap) instead.
* Confidence: no row is dropped because of its ``conf`` value (motmetrics' ``loadtxt`` keeps every row
  with conf >= -1 by default, and MOT prediction files write conf = -1). Filter ground truth rows with
  conf == 0 (MOT17 "ignore" rows) yourself if the data set uses them.

This module imports neither Prefect, Qdrant nor Streamlit, so it runs in any test or notebook.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

MOT_COLUMNS: tuple[str, ...] = ("frame", "id", "x", "y", "w", "h", "conf")
_REQUIRED_COLUMNS: list[str] = ["frame", "id", "x", "y", "w", "h"]
_BOX_COLUMNS: list[str] = ["x", "y", "w", "h"]
# The separators motmetrics' loadtxt accepts, so any file it reads, we read.
_MOT_SEPARATORS = r"\s+|\t+|,"
# TrackEval's alpha grid, np.arange(0.05, 0.99, 0.05): 0.05, 0.10, ..., 0.95 (19 thresholds).
HOTA_ALPHAS: np.ndarray = np.arange(0.05, 0.99, 0.05)
_EPS = float(np.finfo(float).eps)

# TrackingScores field -> motmetrics metric name.
_MOTMETRICS_FIELDS: dict[str, str] = {
    "mota": "mota",
    "motp": "motp",
    "idf1": "idf1",
    "idp": "idp",
    "idr": "idr",
    "precision": "precision",
    "recall": "recall",
    "id_switches": "num_switches",
    "false_positives": "num_false_positives",
    "misses": "num_misses",
    "fragmentations": "num_fragmentations",
    "mostly_tracked": "mostly_tracked",
    "partially_tracked": "partially_tracked",
    "mostly_lost": "mostly_lost",
    "num_frames": "num_frames",
    "num_gt_ids": "num_unique_objects",
    "num_gt_boxes": "num_objects",
    "num_pred_boxes": "num_predictions",
}


def shim_numpy_for_motmetrics() -> None:
    """Give NumPy 2 back ``np.asfarray``, which motmetrics 1.4.0 calls when computing IoU distances.

    NumPy 2.0 removed the function; motmetrics has no release that stops using it. Installed only when
    missing, so on NumPy 1.x the real function is left alone.
    """
    if not hasattr(np, "asfarray"):
        np.asfarray = lambda a, dtype=np.float64: np.asarray(a, dtype=dtype)


def _motmetrics():
    """Import motmetrics after the NumPy shim, so every caller gets a working module."""
    shim_numpy_for_motmetrics()
    import motmetrics

    return motmetrics


@dataclass(frozen=True)
class TrackingScores:
    """Scores of one prediction against one ground truth (one camera's sequence).

    Ratios are in [0, 1] (MOTA may be negative); they are NaN where motmetrics divides 0 by 0, e.g.
    precision of an empty prediction. ``motp`` is a mean distance 1 - IoU (lower is better).
    """

    mota: float
    motp: float
    idf1: float
    idp: float
    idr: float
    hota: float
    deta: float
    assa: float
    precision: float
    recall: float
    id_switches: int
    false_positives: int
    misses: int
    fragmentations: int
    mostly_tracked: int
    partially_tracked: int
    mostly_lost: int
    num_frames: int
    num_gt_ids: int
    num_pred_ids: int
    num_gt_boxes: int
    num_pred_boxes: int

    def to_dict(self) -> dict[str, float | int]:
        """Plain dict, for JSON reports and DataFrame rows."""
        return asdict(self)


_INT_FIELDS = frozenset(f.name for f in fields(TrackingScores) if f.type == "int")


# --------------------------------------------------------------------------- loading


def load_mot_txt(path: str | Path) -> pd.DataFrame:
    """Read a MOTChallenge text file (``frame,id,x,y,w,h,conf,X,Y,Z``, no header) into a plain DataFrame.

    Returns columns ``frame, id`` (int64) and ``x, y, w, h, conf`` (float64), coordinates exactly as in
    the file (no MATLAB 1-based shift, which motmetrics applies but which does not change any IoU).
    Trailing columns may be missing; a missing ``conf`` reads as 1.0. Raises ``ValueError`` naming the
    file for a missing, empty or unparsable file, so a bad path in a config is reported as such.
    """
    path = Path(path)
    raw = _read_raw_mot(path)
    if raw.shape[1] < len(_REQUIRED_COLUMNS):
        raise ValueError(
            f"MOT file {path} has {raw.shape[1]} column(s); need at least 6: frame,id,x,y,w,h[,conf,...]"
        )
    table = _to_numeric(raw.iloc[:, : len(MOT_COLUMNS)], path)
    table.columns = list(MOT_COLUMNS[: table.shape[1]])
    if "conf" not in table:
        table["conf"] = 1.0
    _check_frame_and_id(table, str(path))
    return _with_mot_dtypes(table)


def _read_raw_mot(path: Path) -> pd.DataFrame:
    """Parse the file with motmetrics' separators, turning pandas' errors into ones naming the file."""
    if not path.is_file():
        raise ValueError(f"MOT file {path} does not exist or is not a file")
    try:
        return pd.read_csv(path, sep=_MOT_SEPARATORS, header=None, engine="python", skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ValueError(f"MOT file {path} is empty; expected rows frame,id,x,y,w,h,conf,...") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"MOT file {path} cannot be parsed as MOTChallenge CSV: {exc}") from exc


def _to_numeric(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Convert every cell to a number; a text cell means the file is not MOT data (or has a header)."""
    try:
        table = raw.apply(pd.to_numeric, errors="raise")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"MOT file {path} holds a non-numeric value: {exc}") from exc
    missing = table.iloc[:, : len(_REQUIRED_COLUMNS)].isna().any(axis=1)
    if missing.any():
        line = int(missing.to_numpy().argmax()) + 1
        raise ValueError(f"MOT file {path} line {line} lacks one of frame,id,x,y,w,h")
    return table


def _check_frame_and_id(table: pd.DataFrame, source: str) -> None:
    """Reject fractional frame/ids and a repeated (frame, id): both break the per-frame matching."""
    for column in ("frame", "id"):
        values = table[column].to_numpy(dtype=float)
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise ValueError(f"{source}: column {column!r} must hold whole numbers")
    duplicated = table.duplicated(["frame", "id"])
    if duplicated.any():
        row = table[duplicated].iloc[0]
        raise ValueError(f"{source}: id {int(row['id'])} appears twice in frame {int(row['frame'])}")


def _with_mot_dtypes(table: pd.DataFrame) -> pd.DataFrame:
    """Fix the dtypes so downstream code (and Parquet) sees the same schema for every file."""
    out = table.loc[:, list(MOT_COLUMNS)].copy()
    out[["frame", "id"]] = out[["frame", "id"]].astype("int64")
    out[["x", "y", "w", "h", "conf"]] = out[["x", "y", "w", "h", "conf"]].astype("float64")
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- evaluation


def evaluate_tracking(gt: pd.DataFrame, pred: pd.DataFrame, iou_threshold: float = 0.5) -> TrackingScores:
    """Score ``pred`` against ``gt`` (both with columns ``frame, id, x, y, w, h``; boxes top-left x,y,w,h).

    A prediction box can match a ground-truth box only when their IoU is >= ``iou_threshold`` (CLEAR-MOT
    and identity metrics; MOTChallenge uses 0.5). HOTA has no such threshold: it averages over its own
    alpha grid 0.05..0.95 by definition.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    gt = _checked_boxes(gt, "ground truth")
    pred = _checked_boxes(pred, "prediction")
    clear = _clear_and_identity_scores(gt, pred, iou_threshold)
    hota, deta, assa = hota_scores(gt, pred)
    return TrackingScores(**clear, hota=hota, deta=deta, assa=assa, num_pred_ids=int(pred["id"].nunique()))


def _checked_boxes(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Validate a box table given in memory, as load_mot_txt validates a file."""
    missing = [c for c in _REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{name} table lacks column(s) {missing}; needs {_REQUIRED_COLUMNS}")
    _check_frame_and_id(df, f"{name} table")
    return df.loc[:, _REQUIRED_COLUMNS]


def _frames(gt: pd.DataFrame, pred: pd.DataFrame) -> list[int]:
    """The frames to evaluate: those in either table (compare_to_groundtruth's choice)."""
    return sorted({int(f) for f in gt["frame"]} | {int(f) for f in pred["frame"]})


def _per_frame(df: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """Rows of each frame, looked up once instead of filtering the table per frame."""
    return {int(frame): rows for frame, rows in df.groupby("frame", sort=False)}


def _clear_and_identity_scores(
    gt: pd.DataFrame, pred: pd.DataFrame, iou_threshold: float
) -> dict[str, float | int]:
    """MOTA, MOTP, IDF1 and the counts behind them, computed by motmetrics."""
    mm = _motmetrics()
    accumulator = mm.MOTAccumulator()
    gt_frames, pred_frames = _per_frame(gt), _per_frame(pred)
    empty = gt.iloc[:0]
    for frame in _frames(gt, pred):
        g, p = gt_frames.get(frame, empty), pred_frames.get(frame, empty)
        distances = mm.distances.iou_matrix(
            g[_BOX_COLUMNS].to_numpy(float), p[_BOX_COLUMNS].to_numpy(float), max_iou=1.0 - iou_threshold
        )
        accumulator.update(g["id"].to_numpy(), p["id"].to_numpy(), distances, frameid=frame)
    summary = mm.metrics.create().compute(
        accumulator, metrics=list(_MOTMETRICS_FIELDS.values()), return_dataframe=False
    )
    # Python numbers, not NumPy scalars, so to_dict() serialises to JSON as is.
    return {
        field: int(summary[name]) if field in _INT_FIELDS else float(summary[name])
        for field, name in _MOTMETRICS_FIELDS.items()
    }


# --------------------------------------------------------------------------- HOTA (TrackEval's definition)


@dataclass(frozen=True)
class _Frame:
    """One frame for HOTA: ids as indices 0..n-1 and the IoU between every gt and pred box."""

    gt_ids: np.ndarray
    pred_ids: np.ndarray
    similarity: np.ndarray


def hota_scores(gt: pd.DataFrame, pred: pd.DataFrame) -> tuple[float, float, float]:
    """HOTA, DetA and AssA, each averaged over the 19 alphas, exactly as TrackEval's HOTA.eval_sequence.

    Like TrackEval, an empty ground truth or prediction scores 0 on all three.
    """
    if gt.empty or pred.empty:
        return 0.0, 0.0, 0.0
    gt_index, n_gt = _id_indices(gt)
    pred_index, n_pred = _id_indices(pred)
    frames = _hota_frames(gt.assign(idx=gt_index), pred.assign(idx=pred_index))
    alignment, gt_count, pred_count = _global_alignment(frames, n_gt, n_pred)
    tp, fn, fp, matched_pairs = _hota_matches(frames, alignment, n_pred)
    det_a = tp / np.maximum(1, tp + fn + fp)
    ass_a = _association_accuracy(matched_pairs, tp, gt_count, pred_count, n_pred)
    hota = np.sqrt(det_a * ass_a)
    return float(hota.mean()), float(det_a.mean()), float(ass_a.mean())


def _id_indices(df: pd.DataFrame) -> tuple[np.ndarray, int]:
    """Map track ids to 0..n-1 so per-id counts can live in arrays."""
    codes, uniques = pd.factorize(df["id"])
    return codes.astype(np.int64), len(uniques)


def _hota_frames(gt: pd.DataFrame, pred: pd.DataFrame) -> list[_Frame]:
    """Per-frame id indices and IoU matrices over the union of frames."""
    gt_frames, pred_frames = _per_frame(gt), _per_frame(pred)
    empty = gt.iloc[:0]
    frames = []
    for frame in _frames(gt, pred):
        g, p = gt_frames.get(frame, empty), pred_frames.get(frame, empty)
        similarity = box_iou(g[_BOX_COLUMNS].to_numpy(float), p[_BOX_COLUMNS].to_numpy(float))
        frames.append(_Frame(g["idx"].to_numpy(), p["idx"].to_numpy(), similarity))
    return frames


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU matrix between (N, 4) and (M, 4) arrays of x, y, w, h boxes.

    Follows TrackEval's ``_calculate_box_ious``: degenerate boxes (area <= eps) overlap nothing.
    """
    a = np.concatenate([boxes1[:, :2], boxes1[:, :2] + boxes1[:, 2:4]], axis=1)
    b = np.concatenate([boxes2[:, :2], boxes2[:, :2] + boxes2[:, 2:4]], axis=1)
    low = np.minimum(a[:, None, :], b[None, :, :])
    high = np.maximum(a[:, None, :], b[None, :, :])
    intersection = np.maximum(low[..., 2] - high[..., 0], 0) * np.maximum(low[..., 3] - high[..., 1], 0)
    area1 = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area2 = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area1[:, None] + area2[None, :] - intersection
    intersection[area1 <= _EPS, :] = 0
    intersection[:, area2 <= _EPS] = 0
    intersection[union <= _EPS] = 0
    union[union <= _EPS] = 1
    return intersection / union


def _global_alignment(frames: list[_Frame], n_gt: int, n_pred: int) -> tuple[np.ndarray, ...]:
    """Jaccard-like alignment between every gt id and pred id over the whole sequence.

    Each frame adds, per (gt, pred) pair, IoU / (row sum + column sum - IoU): a soft count of "these two
    could be matched here". Dividing the total by |gt track| + |pred track| - total gives the alignment
    that later breaks per-frame ties in favour of identity-consistent matches (TrackEval's
    ``global_alignment_score``).
    """
    potential = np.zeros((n_gt, n_pred))
    gt_count = np.zeros((n_gt, 1))
    pred_count = np.zeros((1, n_pred))
    for frame in frames:
        sim = frame.similarity
        denominator = sim.sum(0)[np.newaxis, :] + sim.sum(1)[:, np.newaxis] - sim
        soft = np.zeros_like(sim)
        valid = denominator > _EPS
        soft[valid] = sim[valid] / denominator[valid]
        potential[frame.gt_ids[:, np.newaxis], frame.pred_ids[np.newaxis, :]] += soft
        gt_count[frame.gt_ids] += 1
        pred_count[0, frame.pred_ids] += 1
    alignment = potential / (gt_count + pred_count - potential)
    return alignment, gt_count, pred_count


def _hota_matches(
    frames: list[_Frame], alignment: np.ndarray, n_pred: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Per-alpha TP/FN/FP and, per alpha, the (gt, pred) pair key of every TP.

    One Hungarian matching per frame maximises alignment * IoU; a matched pair is a TP at alpha when its
    IoU >= alpha. TrackEval keeps a dense (gt x pred) count matrix per alpha; we keep the TP pair keys
    (gt * n_pred + pred) instead, which gives the same counts without 19 dense matrices.
    """
    n_alpha = len(HOTA_ALPHAS)
    tp, fn, fp = np.zeros(n_alpha), np.zeros(n_alpha), np.zeros(n_alpha)
    pair_keys: list[list[np.ndarray]] = [[] for _ in range(n_alpha)]
    for frame in frames:
        n_gt_t, n_pred_t = len(frame.gt_ids), len(frame.pred_ids)
        if n_gt_t == 0 or n_pred_t == 0:
            fp += n_pred_t
            fn += n_gt_t
            continue
        score = alignment[frame.gt_ids[:, np.newaxis], frame.pred_ids[np.newaxis, :]] * frame.similarity
        rows, cols = linear_sum_assignment(-score)
        matched_iou = frame.similarity[rows, cols]
        keys = frame.gt_ids[rows] * n_pred + frame.pred_ids[cols]
        for a, alpha in enumerate(HOTA_ALPHAS):
            hit = matched_iou >= alpha - _EPS
            n_hit = int(hit.sum())
            tp[a] += n_hit
            fn[a] += n_gt_t - n_hit
            fp[a] += n_pred_t - n_hit
            pair_keys[a].append(keys[hit])
    return tp, fn, fp, [np.concatenate(k) if k else np.zeros(0, np.int64) for k in pair_keys]


def _association_accuracy(
    matched_pairs: list[np.ndarray],
    tp: np.ndarray,
    gt_count: np.ndarray,
    pred_count: np.ndarray,
    n_pred: int,
) -> np.ndarray:
    """AssA per alpha: mean over TPs of TPA / (TPA + FNA + FPA) of the TP's (gt, pred) pair.

    For a pair matched TPA times, FNA + TPA is the gt track's length and FPA + TPA the pred track's, so
    the pair's score is TPA / (|gt| + |pred| - TPA), weighted by its TPA TPs.
    """
    ass_a = np.zeros(len(HOTA_ALPHAS))
    for a, keys in enumerate(matched_pairs):
        pairs, tpa = np.unique(keys, return_counts=True)
        total = gt_count[pairs // n_pred, 0] + pred_count[0, pairs % n_pred] - tpa
        ass_a[a] = np.sum(tpa * (tpa / np.maximum(1, total))) / max(1.0, tp[a])
    return ass_a
