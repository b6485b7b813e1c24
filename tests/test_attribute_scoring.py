"""Scoring hand-built attribute probability tables against parsed descriptions."""

import numpy as np
import pytest

from tasks.attribute_scoring import PROBABILITY_FLOOR, combine, filter_mask, score_constraints
from tasks.attribute_vocab import ATTRIBUTE_INDEX, ATTRIBUTE_NAMES
from tasks.text_query import parse_description


def _table(*people: dict[str, float], default: float = 0.1) -> np.ndarray:
    """One row per person: every attribute at `default` except those given."""
    probs = np.full((len(people), len(ATTRIBUTE_NAMES)), default, np.float32)
    for row, values in enumerate(people):
        for name, value in values.items():
            probs[row, ATTRIBUTE_INDEX[name]] = value
    return probs


def test_the_person_with_the_described_attributes_ranks_first():
    probs = _table(
        {"personalFemale": 0.2, "upperBodyRed": 0.9, "carryingBackpack": 0.1},  # red, but a man without a backpack
        {"personalFemale": 0.93, "upperBodyRed": 0.77, "carryingBackpack": 0.81},
        {"personalFemale": 0.9, "upperBodyBlue": 0.9, "carryingBackpack": 0.9},  # the wrong colour
    )
    scores = score_constraints(parse_description("woman in red with a backpack").constraints, probs)
    assert list(np.argsort(-scores.scores)) [0] == 1
    assert scores.scores[1] == pytest.approx((0.93 * 0.77 * 0.81) ** (1 / 3), rel=1e-5)


def test_region_binding_decides_the_ranking():
    red_top_blue_legs = {"upperBodyRed": 0.9, "lowerBodyBlue": 0.9}
    blue_top_red_legs = {"upperBodyBlue": 0.9, "lowerBodyRed": 0.9}
    probs = _table(red_top_blue_legs, blue_top_red_legs)
    right = score_constraints(parse_description("red jacket and blue jeans").constraints, probs).scores
    swapped = score_constraints(parse_description("blue jacket and red jeans").constraints, probs).scores
    assert right[0] > right[1] and swapped[1] > swapped[0]


def test_negation_inverts_the_probability():
    probs = _table({"accessoryHat": 0.9}, {"accessoryHat": 0.05})
    with_hat = score_constraints(parse_description("hat").constraints, probs)
    without = score_constraints(parse_description("without a hat").constraints, probs)
    assert with_hat.scores == pytest.approx([0.9, 0.05])
    assert without.scores == pytest.approx([0.1, 0.95])
    assert without.explain(1) == "no hat 0.95"
    assert without.explain(0) == "no hat unlikely 0.10"  # the person wears one: the miss says so
    assert with_hat.explain(1) == "hat unlikely 0.05"


def test_explanation_names_each_constraint_and_the_colour_alternative_used():
    probs = _table({"personalFemale": 0.93, "carryingBackpack": 0.81, "upperBodyRed": 0.77,
                    "lowerBodyBrown": 0.2, "lowerBodyWhite": 0.6})
    scores = score_constraints(parse_description("woman, backpack, red top, beige bottoms").constraints, probs)
    assert scores.explain(0) == "woman 0.93, backpack 0.81, upper red 0.77, lower beige 0.60 (white)"


def test_geometric_mean_keeps_long_and_short_queries_on_one_scale():
    assert combine(np.array([[0.8, 0.8, 0.8, 0.8]]), [1, 1, 1, 1]) == pytest.approx([0.8])
    assert combine(np.array([[0.8]]), [1]) == pytest.approx([0.8])
    # a confident miss is floored, not fatal
    assert combine(np.array([[0.0, 1.0]]), [1, 1]) == pytest.approx([PROBABILITY_FLOOR ** 0.5])


def test_missing_probabilities_are_left_out_and_a_row_without_any_scores_zero():
    probs = np.full((2, len(ATTRIBUTE_NAMES)), np.nan, np.float32)
    probs[0, ATTRIBUTE_INDEX["personalMale"]] = 0.8
    scores = score_constraints(parse_description("man with a hat").constraints, probs)
    assert scores.scores == pytest.approx([0.8, 0.0])
    assert scores.explain(0) == "man 0.80, hat ?"


def test_filters_keep_rows_at_or_above_the_threshold():
    probs = _table({"personalFemale": 0.9, "carryingPlasticBags": 0.7}, {"personalFemale": 0.4},
                   {"personalFemale": 0.95})
    assert list(filter_mask({"female": True, "bag": True}, probs)) == [True, False, False]
    assert list(filter_mask({"bag": False}, probs)) == [False, True, True]
    with pytest.raises(KeyError, match="unknown attribute filter"):
        filter_mask({"tall": True}, probs)
