"""Scoring tracklets' attribute probabilities against a parsed description, vectorised over tracklets.

Why a geometric mean of per-constraint probabilities: each constraint ("woman", "backpack",
"upper red") has a probability from the attribute model; treating them as independent, the
probability that a person satisfies all k of them is their product, and its k-th root (the
geometric mean, i.e. exp of the mean log-probability) puts a 2-word and a 6-word query on one
[0, 1] scale, so a threshold or a mix with another score means the same for both. A negated
constraint ("no hat") uses 1 - p. A constraint with alternatives ("skirt" = short OR long skirt,
"beige" = brown OR yellow OR white) takes the most probable alternative (a lower bound of P(any)).

Plain numpy: no Prefect, no Qdrant. `probs` is (n_tracklets, len(names)) float32 with NaN where a
tracklet has no probability for a name (no attribute model, or a model without that output); such a
constraint is left out of that tracklet's mean, and a tracklet with none scores 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tasks.attribute_vocab import ATTRIBUTE_NAMES
from tasks.text_query import Constraint

# A model probability below 1% is "not seen", not "impossible": flooring it keeps one confident
# miss from zeroing an otherwise strong match (its log still costs log(0.01) = -4.6 in the mean).
PROBABILITY_FLOOR = 0.01
# Dashboard filters ("only women", "with a backpack") keep tracklets whose probability reaches
# this: the decision threshold the attribute model's mA / F1 are reported at (0.5).
FILTER_MIN_PROBABILITY = 0.5

_BAGS = ("carryingBackpack", "carryingMessengerBag", "carryingPlasticBags", "carryingSuitcase",
         "carryingLuggageCase", "carryingOther")  # fmt: skip
# Filter name -> (label, attributes: the filter holds when the most probable of them reaches the
# threshold). Also the filterable payload fields of the index (`p_<name>`).
ATTRIBUTE_FILTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "female": ("woman", ("personalFemale",)),
    "male": ("man", ("personalMale",)),
    "bag": ("bag", _BAGS),
    "backpack": ("backpack", ("carryingBackpack",)),
    "hat": ("hat", ("accessoryHat",)),
    "sunglasses": ("sunglasses", ("accessorySunglasses",)),
    "child": ("under 15", ("personalLess15",)),
    "over60": ("over 60", ("personalLarger60",)),
}


def filter_constraint(name: str, wanted: bool = True) -> Constraint:
    """The constraint of a named filter ("female", "bag"...); `wanted=False` asks for its absence."""
    if name not in ATTRIBUTE_FILTERS:
        raise KeyError(f"unknown attribute filter '{name}' (choose from {', '.join(ATTRIBUTE_FILTERS)})")
    label, attributes = ATTRIBUTE_FILTERS[name]
    return Constraint(label, attributes, negated=not wanted)


@dataclass(frozen=True)
class ConstraintScores:
    """Per-tracklet, per-constraint probabilities (after negation) and the combined score."""

    constraints: list[Constraint]
    probabilities: np.ndarray  # (n, k) float64, NaN where the tracklet has no value
    choice: np.ndarray  # (n, k) int: which alternative of each constraint was the most probable
    scores: np.ndarray  # (n,) float64 in [0, 1]

    def explain(self, row: int) -> str:
        """'woman 0.93, backpack 0.81, lower beige 0.77 (brown)' for one tracklet; a constraint the
        tracklet more likely fails than meets (below FILTER_MIN_PROBABILITY) reads 'hat unlikely 0.20',
        one it has no value for 'hat ?', so a listed constraint is never mistaken for a match."""
        parts = []
        for j, constraint in enumerate(self.constraints):
            value = self.probabilities[row, j]
            if np.isnan(value):
                strength = "?"
            elif value < FILTER_MIN_PROBABILITY:
                strength = f"unlikely {value:.2f}"
            else:
                strength = f"{value:.2f}"
            text = f"{constraint.display} {strength}"
            if constraint.colour is not None and len(constraint.attributes) > 1 and not np.isnan(value):
                text += f" ({_colour_of(constraint.attributes[int(self.choice[row, j])])})"
            parts.append(text)
        return ", ".join(parts)


def _colour_of(name: str) -> str:
    """'lowerBodyBrown' -> 'brown'."""
    for prefix in ("upperBody", "lowerBody", "hair", "footwear"):
        if name.startswith(prefix):
            return name[len(prefix) :].lower()
    return name


def constraint_probabilities(
    constraints: Sequence[Constraint], probs: np.ndarray, names: Sequence[str] = ATTRIBUTE_NAMES
) -> tuple[np.ndarray, np.ndarray]:
    """((n, k) probability each constraint holds, (n, k) index of the alternative used).

    A constraint none of whose attributes is in `names` is NaN for every tracklet.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(names):
        raise ValueError(f"attribute probabilities must be (n, {len(names)}), got shape {probs.shape}")
    index = {name: i for i, name in enumerate(names)}
    out = np.full((probs.shape[0], len(constraints)), np.nan)
    choice = np.zeros((probs.shape[0], len(constraints)), dtype=np.int64)
    for j, constraint in enumerate(constraints):
        columns = [index.get(name, -1) for name in constraint.attributes]
        present = [k for k, c in enumerate(columns) if c >= 0]
        if not present:
            continue
        block = probs[:, [columns[k] for k in present]]
        filled = np.where(np.isnan(block), -np.inf, block)
        best = np.argmax(filled, axis=1)
        value = filled[np.arange(len(block)), best]
        value = np.where(np.isinf(value), np.nan, value)
        choice[:, j] = np.asarray(present)[best]
        out[:, j] = 1.0 - value if constraint.negated else value
    return out, choice


def combine(probabilities: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Weighted geometric mean per row over the non-NaN columns; 0 for a row with none."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), probabilities.shape)
    known = ~np.isnan(probabilities)
    logs = np.log(np.clip(np.where(known, probabilities, 1.0), PROBABILITY_FLOOR, 1.0))
    weight_sum = (w * known).sum(axis=1)
    total = (w * known * logs).sum(axis=1)
    return np.where(weight_sum > 0, np.exp(total / np.maximum(weight_sum, 1e-12)), 0.0)


def score_constraints(
    constraints: Sequence[Constraint], probs: np.ndarray, names: Sequence[str] = ATTRIBUTE_NAMES
) -> ConstraintScores:
    """Every tracklet's score for the constraints, with what is needed to explain it."""
    constraints = list(constraints)
    probabilities, choice = constraint_probabilities(constraints, probs, names)
    scores = combine(probabilities, [c.weight for c in constraints]) if constraints else np.zeros(len(probs))
    return ConstraintScores(constraints, probabilities, choice, scores)


def filter_mask(
    filters: dict[str, bool], probs: np.ndarray, names: Sequence[str] = ATTRIBUTE_NAMES,
    min_probability: float = FILTER_MIN_PROBABILITY,
) -> np.ndarray:
    """(n,) bool: tracklets passing every filter (name -> wanted). No probability = does not pass."""
    keep = np.ones(len(probs), dtype=bool)
    for name, wanted in filters.items():
        probabilities, _ = constraint_probabilities([filter_constraint(name, wanted)], probs, names)
        value = probabilities[:, 0]
        keep &= ~np.isnan(value) & (value >= min_probability)
    return keep
