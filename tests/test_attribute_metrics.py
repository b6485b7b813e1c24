"""PETA metrics on hand-built arrays whose answers are worked out by hand in the comments."""

import numpy as np
import pytest

from tasks import attribute_metrics as m

# 4 images x 3 attributes.
LABELS = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 0]])
PREDICTED = np.array([[1, 0, 0], [0, 1, 1], [0, 1, 0], [1, 0, 0]])


def test_label_based_mean_accuracy_averages_tpr_and_tnr_per_attribute():
    # attr0: TPR 1/2, TNR 1/2 -> 0.5; attr1: 1, 1 -> 1.0; attr2: TPR 1/2, TNR 2/2 -> 0.75
    table = m.per_attribute_accuracy(LABELS, PREDICTED)
    np.testing.assert_allclose(table["mA"], [0.5, 1.0, 0.75])
    assert m.mean_accuracy(LABELS, PREDICTED) == pytest.approx(0.75)


def test_instance_based_scores_follow_li_et_al():
    # per image (|Y∩F|/|Y∪F|, /|F|, /|Y|): (1/2, 1, 1/2), (1, 1, 1), (1/2, 1, 1/2), (0, 0, 0: Y empty)
    accuracy, precision, recall, f1 = m.instance_scores(LABELS, PREDICTED)
    assert accuracy == pytest.approx(0.5)
    assert precision == pytest.approx(0.75)
    assert recall == pytest.approx(0.5)
    assert f1 == pytest.approx(2 * 0.75 * 0.5 / 1.25)


def test_predicting_nothing_scores_zero_not_perfect():
    accuracy, precision, recall, f1 = m.instance_scores(LABELS, np.zeros_like(LABELS))
    assert (accuracy, precision, recall, f1) == (0.0, 0.0, 0.0, 0.0)


def test_attribute_without_positives_is_left_out_of_ma_and_nan_in_table():
    labels = np.array([[1, 0], [0, 0]])
    predicted = np.array([[1, 1], [0, 0]])
    assert m.mean_accuracy(labels, predicted) == pytest.approx(1.0)  # only attr0 is defined
    rows = m.per_attribute_table(["a", "b"], labels, predicted.astype(float))
    assert rows[0]["mA"] == 1.0 and np.isnan(rows[1]["mA"]) and rows[1]["positives"] == 0
    assert m.attribute_scores(labels, predicted.astype(float)).n_attributes == 1


def test_threshold_half_counts_as_predicted():
    probabilities = np.array([[0.5, 0.49]])
    assert m.binarize(probabilities).tolist() == [[True, False]]


def test_attribute_scores_from_probabilities_match_the_binary_figures():
    scores = m.attribute_scores(LABELS, PREDICTED * 0.9 + 0.05)
    assert scores.mA == pytest.approx(0.75) and scores.f1 == pytest.approx(0.6) and scores.n_images == 4


def test_calibration_error_is_zero_when_probabilities_match_frequencies():
    labels = np.array([1, 1, 1, 1, 0] * 2)
    assert m.expected_calibration_error(labels, np.full(10, 0.8)) == pytest.approx(0.0, abs=1e-9)
    assert m.expected_calibration_error(np.zeros(4), np.ones(4)) == pytest.approx(1.0)
    assert m.brier_score(np.zeros(4), np.ones(4)) == pytest.approx(1.0)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same"):
        m.mean_accuracy(LABELS, PREDICTED[:, :2])


def test_balanced_thresholds_separate_each_attribute_on_its_own_scale():
    """Attribute 0's positives sit at 0.3 and negatives at 0.1 (rare, under-confident): its threshold
    must fall in (0.1, 0.3], where balanced accuracy is 1 and 0.5 would predict nothing. Attribute 1
    has no positive: it keeps the 0.5 convention. Scored with those thresholds, mA reaches 1."""
    labels = np.array([[1, 0], [0, 0], [0, 0], [1, 0]])
    probs = np.array([[0.3, 0.2], [0.1, 0.7], [0.1, 0.1], [0.3, 0.4]])
    thresholds = m.balanced_thresholds(labels, probs)
    assert 0.1 < thresholds[0] <= 0.3 and thresholds[1] == m.DECISION_THRESHOLD
    assert m.mean_accuracy(labels[:, :1], m.binarize(probs, thresholds)[:, :1]) == 1.0
    assert m.mean_accuracy(labels[:, :1], m.binarize(probs)[:, :1]) == 0.5  # at 0.5: nothing predicted
    with pytest.raises(ValueError, match="same"):
        m.balanced_thresholds(labels, probs[:, :1])
