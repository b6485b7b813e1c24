"""Pedestrian attribute metrics: label-based mA and instance-based accuracy / precision / recall / F1.

Why these: they are the figures every PETA paper reports (Deng et al. 2014; Li et al., DeepMAR
2015; Li et al., "A richly annotated dataset for pedestrian attribute recognition" 2016), so
SmartTrace's numbers are comparable with the published ResNet-50 baselines (mA ~0.83-0.86).

- Label-based mean accuracy, per attribute l: mA_l = (TP_l / P_l + TN_l / N_l) / 2, averaged over
  attributes. It is insensitive to the (heavy) class imbalance of PETA. An attribute with no
  positive or no negative sample in the evaluated set has no defined mA_l: it is left out of the
  mean and reported as NaN in the per-attribute table.
- Instance-based, per image i with true set Y_i and predicted set F_i:
  accuracy = |Y∩F| / |Y∪F|, precision = |Y∩F| / |F|, recall = |Y∩F| / |Y|, each averaged over
  images; F1 = 2 P R / (P + R) of those averages (Li et al. 2016). An empty denominator counts as 0
  for that image, as in the widely used reference implementation (Jia et al. 2020, `eps` in the
  denominator), so predicting nothing is never rewarded.

Plain numpy: no torch, so benchmarks and tests use it on any arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

DECISION_THRESHOLD = 0.5  # probability at which an attribute counts as predicted (the PETA convention)


@dataclass(frozen=True)
class AttributeScores:
    """Headline scores over a set of images; `n_attributes` = attributes with a defined mA_l."""

    mA: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    n_images: int
    n_attributes: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _check(labels: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    predicted = np.asarray(predicted)
    if labels.ndim != 2 or labels.shape != predicted.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predicted.shape} must be the same (n, attributes)")
    return labels.astype(bool), predicted.astype(bool)


Threshold = float | np.ndarray  # one for every attribute, or one per attribute (columns)


def binarize(probabilities: np.ndarray, threshold: Threshold = DECISION_THRESHOLD) -> np.ndarray:
    """Predicted sets from probabilities: an attribute is predicted when its probability >= threshold."""
    return np.asarray(probabilities) >= threshold


def per_attribute_accuracy(labels: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
    """Per attribute: positives, TPR, TNR and mA_l = (TPR + TNR) / 2 (NaN where P or N is 0)."""
    truth, pred = _check(labels, predicted)
    positives = truth.sum(0)
    negatives = (~truth).sum(0)
    tp = (truth & pred).sum(0)
    tn = (~truth & ~pred).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.where(positives > 0, tp / np.maximum(positives, 1), np.nan)
        tnr = np.where(negatives > 0, tn / np.maximum(negatives, 1), np.nan)
    return {"positives": positives, "negatives": negatives, "tpr": tpr, "tnr": tnr, "mA": (tpr + tnr) / 2}


def mean_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Label-based mA over the attributes that have both positive and negative samples."""
    per_attribute = per_attribute_accuracy(labels, predicted)["mA"]
    defined = per_attribute[~np.isnan(per_attribute)]
    return float(defined.mean()) if len(defined) else float("nan")


def instance_scores(labels: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float, float]:
    """Instance-based (accuracy, precision, recall, F1); empty denominators count as 0 for that image."""
    truth, pred = _check(labels, predicted)
    if len(truth) == 0:
        return (float("nan"),) * 4
    intersection = (truth & pred).sum(1).astype(np.float64)
    union = (truth | pred).sum(1)
    n_true = truth.sum(1)
    n_pred = pred.sum(1)
    accuracy = float(np.mean(np.where(union > 0, intersection / np.maximum(union, 1), 0.0)))
    precision = float(np.mean(np.where(n_pred > 0, intersection / np.maximum(n_pred, 1), 0.0)))
    recall = float(np.mean(np.where(n_true > 0, intersection / np.maximum(n_true, 1), 0.0)))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return accuracy, precision, recall, float(f1)


def attribute_scores(
    labels: np.ndarray, probabilities: np.ndarray, threshold: Threshold = DECISION_THRESHOLD
) -> AttributeScores:
    """All headline figures for one evaluated set (probabilities thresholded at `threshold`)."""
    predicted = binarize(probabilities, threshold)
    per_attribute = per_attribute_accuracy(labels, predicted)["mA"]
    accuracy, precision, recall, f1 = instance_scores(labels, predicted)
    return AttributeScores(
        mA=mean_accuracy(labels, predicted),
        accuracy=accuracy,
        precision=precision,
        recall=recall,
        f1=f1,
        n_images=int(len(labels)),
        n_attributes=int((~np.isnan(per_attribute)).sum()),
    )


def balanced_thresholds(
    labels: np.ndarray, probabilities: np.ndarray, grid: np.ndarray | None = None
) -> np.ndarray:
    """Per attribute, the threshold (from `grid`) with the best balanced accuracy (TPR + TNR) / 2 on
    these images; DECISION_THRESHOLD where they hold no positive or no negative.

    Why: mA is the mean of exactly that balanced accuracy, so thresholds read off VALIDATION people
    give the mA a deployment tuned for balanced decisions would reach on others (reported beside the
    0.5 convention, never instead of it; instance F1 usually drops with them).
    """
    labels, probabilities = np.asarray(labels).astype(bool), np.asarray(probabilities, dtype=np.float64)
    if labels.ndim != 2 or labels.shape != probabilities.shape:
        raise ValueError(
            f"labels {labels.shape} and probabilities {probabilities.shape} must be the same (n, attributes)"
        )
    grid = np.linspace(0.05, 0.95, 91) if grid is None else np.asarray(grid, dtype=np.float64)
    thresholds = np.full(labels.shape[1], DECISION_THRESHOLD)
    for j in range(labels.shape[1]):
        positive = labels[:, j] == 1
        if positive.all() or not positive.any():
            continue
        above = probabilities[:, j][None, :] >= grid[:, None]  # (grid, images)
        balanced = (above[:, positive].mean(axis=1) + (~above[:, ~positive]).mean(axis=1)) / 2
        thresholds[j] = grid[int(np.argmax(balanced))]
    return thresholds


def per_attribute_table(
    names: Sequence[str], labels: np.ndarray, probabilities: np.ndarray, threshold: float = DECISION_THRESHOLD
) -> list[dict[str, float | int | str]]:
    """One row per attribute: name, positives in the set, TPR, TNR, mA_l (NaN when undefined)."""
    stats = per_attribute_accuracy(labels, binarize(probabilities, threshold))
    if len(names) != len(stats["mA"]):
        raise ValueError(f"{len(names)} names for {len(stats['mA'])} attribute columns")
    return [
        {
            "attribute": name,
            "positives": int(stats["positives"][i]),
            "tpr": float(stats["tpr"][i]),
            "tnr": float(stats["tnr"][i]),
            "mA": float(stats["mA"][i]),
        }
        for i, name in enumerate(names)
    ]


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """Mean |observed positive rate - mean probability| over equal-width probability bins, weighted by count.

    Pooled over every (image, attribute) cell: the text search multiplies these probabilities, so
    what matters is that 0.8 means "true 80% of the time" for any attribute.
    """
    truth = np.asarray(labels, dtype=np.float64).ravel()
    probs = np.asarray(probabilities, dtype=np.float64).ravel()
    if truth.shape != probs.shape:
        raise ValueError(f"labels {np.shape(labels)} and probabilities {np.shape(probabilities)} differ")
    if len(probs) == 0:
        return float("nan")
    which = np.minimum((probs * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            error += in_bin.mean() * abs(truth[in_bin].mean() - probs[in_bin].mean())
    return float(error)


def brier_score(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean squared error between probabilities and 0/1 labels over every cell (lower is better)."""
    truth = np.asarray(labels, dtype=np.float64)
    probs = np.asarray(probabilities, dtype=np.float64)
    return float(np.mean((probs - truth) ** 2)) if probs.size else float("nan")
