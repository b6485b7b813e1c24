"""Scoring a description ("woman, red jacket, no bag") and attribute filters against indexed tracklets.

Why scores are in [0, 1] and explained: text search ranks by how well a tracklet's attributes
match the description (`tasks.attribute_scoring`: the geometric mean of the constraints'
probabilities; for tracklets indexed without an attribute model, how much of the described colours
their clothes showed, `tasks.text_query.score_attributes`) and, when CLIP weights are present, by a
rescaled CLIP similarity. Every score carries a one-line explanation of what matched.

No index access here: the engine hands in the payload columns and the CLIP similarities it read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from search.errors import SearchInputError

if TYPE_CHECKING:
    from storage.index import PayloadColumns
    from tasks.text_query import AttributeQuery, Description

# CLIP text-image cosine similarities of ViT-B-32 live in a narrow band (~0.15 unrelated, ~0.35 a
# good match); rescaled linearly to [0, 1] so they can be averaged with the attribute score.
CLIP_SCORE_FLOOR = 0.15
CLIP_SCORE_CEIL = 0.35
CLIP_PROMPT = "a photo of a person wearing {}"
# Text score when both are available: the colour attributes are measured on the tracklet's own
# crops and explainable, CLIP on 80 px crops is the weaker signal, so attributes weigh more.
TEXT_ATTRIBUTE_WEIGHT = 0.6
TEXT_CLIP_WEIGHT = 0.4
# Attribute-model text score (a geometric mean of the constraints' probabilities) below which a
# tracklet is not a result: 0.1 = each stated attribute is on average ~10x less likely than not, i.e.
# the description contradicts what the model saw ("man" for someone at p(male) 0.05).
MIN_ATTRIBUTE_SCORE = 0.1


@dataclass(frozen=True)
class TextScores:
    """A description scored against every tracklet in the filters (parallel lists, best not first)."""

    ids: list[str]
    payloads: list[dict[str, Any]]
    scores: np.ndarray  # (n,) float64 in [0, 1]
    explain: Callable[[int], str]  # explanation of row i, written only for rows shown
    notes: list[str]


class AttributeScorer:
    """`score_attributes` for one query over many tracklets, memoised per (upper, lower) colour pair.

    The index payload holds each region's dominant colour and its confidence (no per-colour
    shares), and for fixed colours `score_attributes` is then (A*u + B*l + C*max(u, l)) / W in the
    two confidences u, l: a stated region's credit is its confidence when the colour matches, an
    `any` colour takes the better region. Three calls per colour pair give A, B, C and a fourth
    call checks them; a pair that fails the check (should `score_attributes` ever change shape)
    is scored by calling it for every tracklet. Text search over 50k tracklets needs this: one
    call per tracklet costs ~0.3 s.
    """

    _CHECK = (0.37, 0.81)

    def __init__(self, query: AttributeQuery) -> None:
        from tasks.text_query import score_attributes

        self._query = query
        self._score_attributes = score_attributes
        self._coefficients: dict[tuple[str | None, str | None], tuple[float, float, float] | None] = {}

    def _call(self, upper: str | None, up: float | None, lower: str | None, low: float | None) -> tuple[float, str]:
        return self._score_attributes(self._query, upper, up, lower, low)

    def _fit(self, upper: str | None, lower: str | None) -> tuple[float, float, float] | None:
        s10 = self._call(upper, 1.0, lower, 0.0)[0]
        s01 = self._call(upper, 0.0, lower, 1.0)[0]
        s11 = self._call(upper, 1.0, lower, 1.0)[0]
        a, b, c = s11 - s01, s11 - s10, s10 + s01 - s11
        up, low = self._CHECK
        if abs(a * up + b * low + c * max(up, low) - self._call(upper, up, lower, low)[0]) > 1e-9:
            return None
        return a, b, c

    def score(self, upper: str | None, up: float | None, lower: str | None, low: float | None) -> float:
        key = (upper, lower)
        if key not in self._coefficients:
            self._coefficients[key] = self._fit(upper, lower)
        coefficients = self._coefficients[key]
        if coefficients is None:
            return self._call(upper, up, lower, low)[0]
        up, low = float(up or 0.0), float(low or 0.0)
        a, b, c = coefficients
        return min(max(a * up + b * low + c * max(up, low), 0.0), 1.0)

    def explain(self, upper: str | None, up: float | None, lower: str | None, low: float | None) -> str:
        return self._call(upper, up, lower, low)[1]




@dataclass(frozen=True)
class TextQuery:
    """What a description and the attribute filters ask for, before any tracklet is scored."""

    text: str | None
    description: Description | None  # None when the filters alone are the query
    constraints: list[Any]  # tasks.attribute_scoring constraints
    notes: list[str]


def parse_text(text: str | None) -> Description:
    """A description parsed into attribute constraints; empty or overlong text is the user's error."""
    from tasks.text_query import parse_description

    if text is None or not str(text).strip():
        raise SearchInputError(
            "the description is empty: describe the person, e.g. 'woman in a red jacket with a backpack'"
        )
    if len(text) > 500:
        raise SearchInputError("the description is too long (500 characters at most)")
    return parse_description(text)


def read_query(text: str | None, attribute_filters: Mapping[str, bool] | None) -> TextQuery:
    """The description's constraints (or, without one, the filters' own), and the words it did not use."""
    from tasks.attribute_scoring import filter_constraint

    notes: list[str] = []
    description = None
    if text is not None and str(text).strip():
        description = parse_text(text)
    elif not attribute_filters:
        parse_text("")  # raises the "empty description" error
    if description is not None:
        constraints = list(description.constraints)
        if description.unknown_words:
            notes.append(f"not understood: {', '.join(description.unknown_words)}")
        if description.unmeasured:
            notes.append(f"not measured by the attribute model: {', '.join(description.unmeasured)}")
    else:
        try:
            constraints = [filter_constraint(name, wanted) for name, wanted in (attribute_filters or {}).items()]
        except KeyError as exc:
            raise SearchInputError(str(exc.args[0])) from None
    return TextQuery(text, description, constraints, notes)


def check_understood(query: TextQuery, clip_scores: Mapping[str, float]) -> None:
    """Refuse a description that yields nothing to score (no constraint and no CLIP similarity)."""
    if query.constraints or clip_scores:
        return
    description = query.description
    heard = (description.unknown_words + description.unmeasured) if description is not None else []
    raise SearchInputError(
        f"not understood: {', '.join(heard) or str(query.text).strip()[:80]}. Describe the person with words such "
        "as 'woman', 'old man', 'red jacket', 'blue jeans', 'long hair', 'backpack', 'no hat'"
    )


def score_columns(
    query: TextQuery,
    columns: PayloadColumns,
    attribute_filters: Mapping[str, bool] | None,
    clip_scores: Mapping[str, float],
) -> TextScores:
    """The query's score (0..1) for every tracklet in `columns`, and what the user should know.

    Tracklets with attribute probabilities are scored by `tasks.attribute_scoring`; those indexed
    without an attribute model by the colour rules (`AttributeScorer`). `attribute_filters` drop
    tracklets that fail them (score 0). `clip_scores` (point id -> raw CLIP cosine) are mixed in.
    """
    from tasks.attribute_scoring import score_constraints

    notes = list(query.notes)
    constraints, description = query.constraints, query.description
    ids, payloads, has = columns.ids, columns.payloads, columns.has_attributes
    learned = score_constraints(constraints, columns.attribute_probs[has]) if has.any() and constraints else None
    attribute = np.zeros(len(ids))
    position = np.cumsum(has) - 1  # row i of the index -> its row in `learned` (where has[i])
    if learned is not None:
        attribute[has] = np.where(learned.scores >= MIN_ATTRIBUTE_SCORE, learned.scores, 0.0)
    colour_query = description.colour_query() if description is not None else None
    scorer = AttributeScorer(colour_query) if colour_query is not None and not colour_query.is_empty() else None
    old = np.flatnonzero(~has)
    if old.size:
        notes.append(
            f"{old.size} of {len(ids)} tracklets were indexed without the attribute model: "
            + ("they are scored by clothing colours only" if scorer else "they cannot match this description")
        )
        if scorer is not None:
            attribute[old] = [_colour_score(scorer, payloads[i]) for i in old]
    if attribute_filters:
        attribute[~filter_mask(attribute_filters, columns.attribute_probs)] = 0.0
        notes.append(filters_note(attribute_filters))
    raw_clip = np.array([clip_scores.get(pid, np.nan) for pid in ids]) if clip_scores else None
    scores = _mix_clip(attribute, raw_clip, bool(constraints))

    def explain(i: int) -> str:
        parts = []
        if has[i] and learned is not None:
            parts.append(learned.explain(int(position[i])))
        elif scorer is not None:
            p = payloads[i]
            parts.append("colour rules: " + scorer.explain(p.get("upper_color"), p.get("upper_color_conf"),
                                                           p.get("lower_color"), p.get("lower_color_conf")))
        if raw_clip is not None and not np.isnan(raw_clip[i]):
            parts.append(f"clip {raw_clip[i]:.2f}")
        return "; ".join(parts)

    return TextScores(ids, payloads, scores, explain, [n for n in notes if n])


def _colour_score(scorer: AttributeScorer, payload: dict[str, Any]) -> float:
    return scorer.score(payload.get("upper_color"), payload.get("upper_color_conf"), payload.get("lower_color"),
                        payload.get("lower_color_conf"))


def _mix_clip(attribute: np.ndarray, raw_clip: np.ndarray | None, has_constraints: bool) -> np.ndarray:
    """Attribute scores mixed with rescaled CLIP similarities (NaN: tracklet without a CLIP vector)."""
    if raw_clip is None:
        return attribute
    scaled = np.clip((raw_clip - CLIP_SCORE_FLOOR) / (CLIP_SCORE_CEIL - CLIP_SCORE_FLOOR), 0.0, 1.0)
    if not has_constraints:
        return np.where(np.isnan(raw_clip), 0.0, scaled)
    mixed = (TEXT_ATTRIBUTE_WEIGHT * attribute + TEXT_CLIP_WEIGHT * scaled) / (TEXT_ATTRIBUTE_WEIGHT + TEXT_CLIP_WEIGHT)
    return np.where(np.isnan(raw_clip), attribute, mixed)


def filters_note(attribute_filters: Mapping[str, bool]) -> str:
    """'filters: woman, bag, no hat (attribute probability >= 0.5)'."""
    from tasks.attribute_scoring import ATTRIBUTE_FILTERS, FILTER_MIN_PROBABILITY

    labels = [
        ("" if wanted else "no ") + ATTRIBUTE_FILTERS.get(name, (name, ()))[0]
        for name, wanted in attribute_filters.items()
    ]
    return f"filters: {', '.join(labels)} (attribute probability >= {FILTER_MIN_PROBABILITY:g})"


def filter_mask(attribute_filters: Mapping[str, bool], probs: np.ndarray) -> np.ndarray:
    """Rows passing every attribute filter; an unknown filter name is the user's error."""
    from tasks.attribute_scoring import filter_mask as mask

    try:
        return mask(dict(attribute_filters), probs)
    except KeyError as exc:
        raise SearchInputError(str(exc.args[0])) from None
