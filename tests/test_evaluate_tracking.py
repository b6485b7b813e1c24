"""Tests of tasks.evaluate_tracking against numbers published by others, and against hand-computed cases."""

from __future__ import annotations

import importlib.resources
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.evaluate_tracking import (
    HOTA_ALPHAS,
    TrackingScores,
    evaluate_tracking,
    hota_scores,
    load_mot_txt,
    shim_numpy_for_motmetrics,
)

MOTMETRICS_DATA = Path(str(importlib.resources.files("motmetrics") / "data"))

# Published by motmetrics 1.4.0 itself: motmetrics/tests/test_metrics.py, test_motchallenge_files(),
# the `expected` frame (rows TUD-Campus, TUD-Stadtmitte; columns motchallenge_metrics[:15]), checked
# there with np.testing.assert_allclose(..., atol=1e-3). MOTP is motmetrics' distance 1 - IoU.
PUBLISHED = {
    "TUD-Campus": {
        "idf1": 0.557659,
        "idp": 0.729730,
        "idr": 0.451253,
        "recall": 0.582173,
        "precision": 0.941441,
        "num_gt_ids": 8,
        "mostly_tracked": 1,
        "partially_tracked": 6,
        "mostly_lost": 1,
        "false_positives": 13,
        "misses": 150,
        "id_switches": 7,
        "fragmentations": 7,
        "mota": 0.526462,
        "motp": 0.277201,
    },
    "TUD-Stadtmitte": {
        "idf1": 0.644619,
        "idp": 0.819760,
        "idr": 0.531142,
        "recall": 0.608997,
        "precision": 0.939920,
        "num_gt_ids": 10,
        "mostly_tracked": 5,
        "partially_tracked": 4,
        "mostly_lost": 1,
        "false_positives": 45,
        "misses": 452,
        "id_switches": 7,
        "fragmentations": 6,
        "mota": 0.564014,
        "motp": 0.345904,
    },
}
MOTMETRICS_ATOL = 1e-3

# HOTA / DetA / AssA (means over the 19 alphas) that TrackEval 1.3.0 gives for the same pairs. Produced
# once with a throwaway script (TrackEval is not a dependency): the wheel's trackeval.Evaluator with
# datasets.MotChallenge2DBox (BENCHMARK="MOT15", so no preprocessing besides dropping conf == 0 GT rows,
# of which TUD has none), the two sequences laid out as gt/<seq>/gt/gt.txt with seqLength = last GT frame,
# and test.txt as the tracker file; metrics.HOTA(), values printed with repr().
# The same run gave MOTA 0.526462 / 0.564014 and IDF1 0.557659 / 0.644619, agreeing with motmetrics.
TRACKEVAL_HOTA = {
    "TUD-Campus": (0.3913974378451139, 0.418047030142763, 0.36912068120832836),
    "TUD-Stadtmitte": (0.3978490169927877, 0.3922675723693166, 0.4088407518112996),
}


def _tud_scores(sequence: str) -> TrackingScores:
    folder = MOTMETRICS_DATA / sequence
    return evaluate_tracking(load_mot_txt(folder / "gt.txt"), load_mot_txt(folder / "test.txt"), 0.5)


def _boxes(rows: list[tuple[int, int, float, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["frame", "id", "x", "y", "w", "h"])


# --------------------------------------------------------------------------- published numbers


@pytest.mark.parametrize("sequence", sorted(PUBLISHED))
def test_reproduces_motmetrics_published_scores(sequence: str) -> None:
    scores = _tud_scores(sequence).to_dict()
    for name, expected in PUBLISHED[sequence].items():
        assert scores[name] == pytest.approx(expected, abs=MOTMETRICS_ATOL), name


@pytest.mark.parametrize("sequence", sorted(TRACKEVAL_HOTA))
def test_hota_matches_trackeval(sequence: str) -> None:
    scores = _tud_scores(sequence)
    hota, deta, assa = TRACKEVAL_HOTA[sequence]
    assert scores.hota == pytest.approx(hota, abs=1e-6)
    assert scores.deta == pytest.approx(deta, abs=1e-6)
    assert scores.assa == pytest.approx(assa, abs=1e-6)


def test_tud_campus_counts_and_types() -> None:
    scores = _tud_scores("TUD-Campus")
    # Counted from the files: 71 frames, 359 GT rows, 222 prediction rows with 13 distinct ids.
    assert (scores.num_frames, scores.num_gt_boxes, scores.num_pred_boxes) == (71, 359, 222)
    assert scores.num_pred_ids == 13
    assert isinstance(scores.id_switches, int) and isinstance(scores.mota, float)
    json.dumps(scores.to_dict())  # plain Python numbers only


# --------------------------------------------------------------------------- hand-computed cases


def test_perfect_prediction_scores_one() -> None:
    gt = _boxes([(f, i, 50.0 * i, 10.0, 20.0, 40.0) for f in range(1, 5) for i in (1, 2)])
    scores = evaluate_tracking(gt, gt.assign(id=gt["id"] + 10))
    assert (scores.hota, scores.deta, scores.assa) == (1.0, 1.0, 1.0)
    assert (scores.mota, scores.idf1, scores.motp) == (1.0, 1.0, 0.0)
    assert (scores.id_switches, scores.false_positives, scores.misses) == (0, 0, 0)


def test_swapped_ids_halfway() -> None:
    """Two people, 4 frames, boxes exact, but the prediction swaps their ids from frame 3 on.

    Every box is a TP at every alpha, so DetA = 1. Each (gt, pred) pair is matched in 2 frames while each
    track is 4 frames long: pair score 2 / (4 + 4 - 2) = 1/3 for every TP, so AssA = 1/3 and
    HOTA = sqrt(1/3). motmetrics counts 2 switches (both people at frame 3): MOTA = 1 - 2/8.
    """
    gt = _boxes([(f, i, 50.0 * i, 10.0, 20.0, 40.0) for f in range(1, 5) for i in (1, 2)])
    swapped = gt["frame"] >= 3
    pred = gt.assign(id=np.where(swapped, 3 - gt["id"], gt["id"]) + 10)
    scores = evaluate_tracking(gt, pred)
    assert scores.deta == pytest.approx(1.0)
    assert scores.assa == pytest.approx(1 / 3)
    assert scores.hota == pytest.approx(math.sqrt(1 / 3))
    assert scores.id_switches == 2
    assert scores.mota == pytest.approx(0.75)
    assert scores.idf1 == pytest.approx(0.5)


def test_hota_averages_over_alpha_grid() -> None:
    """One box with IoU 100/140 = 0.714: a TP for the 14 alphas 0.05..0.70, FN + FP for 0.75..0.95."""
    assert len(HOTA_ALPHAS) == 19
    gt = _boxes([(1, 1, 0.0, 0.0, 10.0, 10.0)])
    pred = _boxes([(1, 7, 0.0, 0.0, 10.0, 14.0)])
    hota, deta, assa = hota_scores(gt, pred)
    assert (hota, deta, assa) == pytest.approx((14 / 19, 14 / 19, 14 / 19))


def test_iou_threshold_decides_clear_mot_match() -> None:
    gt = _boxes([(1, 1, 0.0, 0.0, 10.0, 10.0)])
    pred = _boxes([(1, 7, 0.0, 0.0, 10.0, 14.0)])  # IoU 0.714
    matched = evaluate_tracking(gt, pred, iou_threshold=0.5)
    assert (matched.mota, matched.motp) == pytest.approx((1.0, 1 - 100 / 140))
    unmatched = evaluate_tracking(gt, pred, iou_threshold=0.8)
    assert (unmatched.false_positives, unmatched.misses, unmatched.mota) == (1, 1, -1.0)


def test_detection_errors_and_frames_outside_gt() -> None:
    """GT: one person in frames 1-4. Prediction: id 7 on frames 1-3, plus id 9 alone in frame 5.

    TP 3, FN 1 (frame 4), FP 1 (frame 5, a frame with no GT, still evaluated): DetA = 3/5. The one
    pair (1, 7) has TPA 3, |gt| 4, |pred| 3: AssA = 3 / (4 + 3 - 3) = 3/4.
    """
    gt = _boxes([(f, 1, 0.0, 0.0, 10.0, 10.0) for f in range(1, 5)])
    pred = _boxes([(f, 7, 0.0, 0.0, 10.0, 10.0) for f in range(1, 4)] + [(5, 9, 0.0, 0.0, 10.0, 10.0)])
    scores = evaluate_tracking(gt, pred)
    assert (scores.deta, scores.assa) == pytest.approx((3 / 5, 3 / 4))
    assert scores.hota == pytest.approx(math.sqrt(0.45))
    assert (scores.num_frames, scores.false_positives, scores.misses) == (5, 1, 1)
    assert scores.mota == pytest.approx(1 - 2 / 4)


def test_empty_prediction() -> None:
    gt = _boxes([(f, 1, 0.0, 0.0, 10.0, 10.0) for f in range(1, 4)])
    scores = evaluate_tracking(gt, gt.iloc[:0])
    assert (scores.hota, scores.deta, scores.assa) == (0.0, 0.0, 0.0)
    assert (scores.misses, scores.num_pred_ids, scores.recall, scores.mota) == (3, 0, 0.0, 0.0)


def test_rejects_bad_tables() -> None:
    gt = _boxes([(1, 1, 0.0, 0.0, 10.0, 10.0)])
    with pytest.raises(ValueError, match="prediction table lacks"):
        evaluate_tracking(gt, gt.drop(columns="w"))
    with pytest.raises(ValueError, match="appears twice in frame 1"):
        evaluate_tracking(pd.concat([gt, gt]), gt)
    with pytest.raises(ValueError, match="iou_threshold"):
        evaluate_tracking(gt, gt, iou_threshold=0.0)


# --------------------------------------------------------------------------- loading


def test_load_keeps_file_coordinates_and_every_row() -> None:
    table = load_mot_txt(MOTMETRICS_DATA / "TUD-Campus" / "test.txt")
    assert list(table.columns) == ["frame", "id", "x", "y", "w", "h", "conf"]
    assert len(table) == 222  # conf is -1 on every row; none is dropped, as motmetrics' loadtxt does
    first = table.iloc[0]
    assert (first["frame"], first["id"], first["x"], first["conf"]) == (1, 3, 113.84, -1.0)
    assert table["frame"].dtype == np.int64 and table["x"].dtype == np.float64


def test_load_short_rows_and_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_text("1 5 10 20 30 40\n2 5 11 21 30 40\n")
    table = load_mot_txt(path)
    assert table["conf"].tolist() == [1.0, 1.0]
    assert table["id"].tolist() == [5, 5]


def test_load_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "gt.txt"
    with pytest.raises(ValueError, match="does not exist") as info:
        load_mot_txt(path)
    assert str(path) in str(info.value)


def test_load_empty_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("")
    with pytest.raises(ValueError, match="is empty") as info:
        load_mot_txt(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("frame,id,x,y,w,h,conf\n1,1,0,0,10,10,1\n", "non-numeric"),
        ("1,1,0,0\n", "need at least 6"),
        ("1,1,0,0,10,10,1\n1,1,5,5,10,10,1\n", "appears twice"),
        ("1.5,1,0,0,10,10,1\n", "whole numbers"),
    ],
)
def test_load_unparsable_content_names_path(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=problem) as info:
        load_mot_txt(path)
    assert str(path) in str(info.value)


def test_shim_provides_asfarray() -> None:
    shim_numpy_for_motmetrics()
    converted = np.asfarray([1, 2])
    assert converted.dtype == np.float64 and converted.tolist() == [1.0, 2.0]
