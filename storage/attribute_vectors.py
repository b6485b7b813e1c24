"""How a point's attribute probabilities are stored in a version, and how a description queries them.

Two vectors per point with attributes, both made from the same 85 probabilities:

* `attr_logp` (dense, 170 values): [log p ..., log (1 - p) ...], floored like
  `tasks.attribute_scoring`. It is what a reader decodes the probabilities from (`attribute_matrix_from_log`:
  exact to float32), so the payload does not carry them.
* `attr_terms` (sparse, what text search ranks by): the same logs shifted by -log(floor) so every
  value is >= 0 (a value at the floor is simply absent), then one pair more per alternative group
  (`tasks.text_query.alternative_groups`: "skirt" = short OR long skirt): log max p and
  log (1 - max p) of the group. A description is then ONE sparse dot product whose order is exactly
  the scorer's (the log of its weighted geometric mean plus a constant), alternatives included.

Why sparse: a description names 2-8 of the 242 terms. The engine walks only those terms' posting
lists instead of scanning 170 dense values per point: at 1M points (2 cores, probe in the commit
note) a top-20 query took ~5-10 ms where the dense exact scan took ~70 ms; and before the group terms
a constraint with alternatives was spread over them (an approximation), which at 1M cost text recall@20
(0.788 against scoring every point). The groups a version holds are written into it
(`GROUPS_FILE`), so a reader never maps a query onto another version's columns; a version without
them (written before) is queried through the dense vector as before.

Plain numpy: no engine calls here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from storage.index_points import ATTRIBUTE_PAYLOAD  # the payload list the vectors are made from
from storage.schemas import ATTRIBUTE_VOCABULARY
from tasks.attribute_vocab import ATTRIBUTE_INDEX  # name -> column, over the same names

ATTRIBUTE_VECTOR = "attr_logp"  # dense: [log p_i ..., log (1 - p_i) ...] over ATTRIBUTE_VOCABULARY
ATTRIBUTE_TERMS = "attr_terms"  # sparse: shifted logs of the attributes, then of the alternative groups
GROUPS_FILE = "attribute_groups.json"  # in a version folder: the groups its `attr_terms` hold, in order
# Same floor as tasks.attribute_scoring.PROBABILITY_FLOOR: one confident miss costs log(0.01), not -inf.
PROBABILITY_FLOOR = 0.01
SHIFT = -float(np.log(PROBABILITY_FLOOR))  # added to every log in `attr_terms`: values >= 0


def attribute_dim() -> int:
    """Size of the `attr_logp` vector."""
    return 2 * len(ATTRIBUTE_VOCABULARY)


def _logs(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log p, log (1 - p)) clipped at the floor, as `tasks.attribute_scoring.combine` does."""
    return (np.log(np.clip(p, PROBABILITY_FLOOR, 1.0)), np.log(np.clip(1.0 - p, PROBABILITY_FLOOR, 1.0)))


def attribute_log_vector(probs: Sequence[float | None] | None) -> list[float] | None:
    """[log p ..., log (1 - p) ...] of one point's attribute probabilities; 0 (neutral) where unknown.

    None when the point has no attribute probabilities (indexed without the attribute model).
    """
    if probs is None or len(probs) != len(ATTRIBUTE_VOCABULARY):
        return None
    return attribute_log_matrix(np.array([[np.nan if v is None else v for v in probs]], dtype=np.float64))[0].tolist()


def attribute_log_matrix(probs: np.ndarray) -> np.ndarray:
    """(n, 170) float32 `attr_logp` rows of (n, 85) probabilities (NaN = unknown -> the pair (0, 0))."""
    probs = np.asarray(probs, dtype=np.float64)
    known = ~np.isnan(probs)
    positive, negative = _logs(np.where(known, probs, 0.5))
    return np.concatenate([np.where(known, positive, 0.0), np.where(known, negative, 0.0)], axis=1).astype(
        np.float32
    )


def probability_matrix(payloads: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(n, 85) probabilities of the payloads' attribute lists (NaN where unknown or absent), and which have one."""
    width = len(ATTRIBUTE_VOCABULARY)
    probs = np.full((len(payloads), width), np.nan)
    present = np.zeros(len(payloads), dtype=bool)
    for i, payload in enumerate(payloads):
        values = payload.get(ATTRIBUTE_PAYLOAD)
        if values is not None and len(values) == width:
            probs[i] = [np.nan if v is None else v for v in values]
            present[i] = True
    return probs, present


def attribute_matrix_from_log(logp: np.ndarray) -> np.ndarray:
    """(n, 85) float32 probabilities (NaN where unknown) that (n, 170) `attr_logp` vectors were made from.

    Published versions keep the 85 probabilities only in this vector: as a payload list they cost
    the engine 0.5 ms per point to ingest, 70% of a version's write time (measured, 2k points). The
    inverse is exact to float32: p >= 0.5 comes from log p and p < 0.5 from log (1 - p), neither of
    which the floor clipped; "unknown" is the one pair that is (0, 0). Rounded to 4 decimals like the
    payload. Text search reads this matrix directly (no Python lists: ~10 ms of a 500-candidate query).
    """
    values = np.asarray(logp, dtype=np.float64).reshape(-1, attribute_dim())
    width = len(ATTRIBUTE_VOCABULARY)
    positive, negative = values[:, :width], values[:, width:]
    p = np.round(np.where(positive >= negative, np.exp(positive), 1.0 - np.exp(negative)), 4)
    p[(positive == 0.0) & (negative == 0.0)] = np.nan
    return p.astype(np.float32)


def probability_lists(matrix: np.ndarray) -> list[list[float | None]]:
    """Rows as the payload lists held them: 4-decimal floats, None where unknown."""
    p = np.round(np.asarray(matrix, dtype=np.float64), 4)  # float32 -> the 4-decimal float the payload held
    return [[None if v != v else v for v in row] for row in p.tolist()]


def attribute_probs_from_log(logp: np.ndarray) -> list[list[float | None]]:
    """`attribute_matrix_from_log` as the payload lists held them (None where unknown): person pages."""
    return probability_lists(attribute_matrix_from_log(logp))


# ---------------------------------------------------------------------------- the sparse terms


def term_rows(probs: np.ndarray, groups: Sequence[Sequence[str]]) -> list[tuple[list[int], list[float]]]:
    """(indices, values) of each row's `attr_terms` sparse vector; a value at the floor is absent.

    Layout: columns [0, 85) shifted log p, [85, 170) shifted log (1 - p), then per group g the pair
    170 + 2g (log max p over the group's known attributes) and 171 + 2g (log (1 - max p)). Values
    are shifted by SHIFT, so the floor is 0.
    """
    probs = np.asarray(probs, dtype=np.float64)
    blocks = []
    positive, negative = _logs(probs)
    blocks.append(np.concatenate([positive, negative], axis=1))
    for group in groups:
        block = probs[:, [ATTRIBUTE_INDEX[name] for name in group]]
        best = np.full(len(probs), np.nan)
        any_known = ~np.isnan(block).all(axis=1)  # none known: NaN, neutral below
        best[any_known] = np.nanmax(block[any_known], axis=1)
        pos, neg = _logs(best)
        blocks.append(np.stack([pos, neg], axis=1))
    # Unknown (NaN) reads as log 1, neutral like the dense vector's 0: such a point comes among the
    # candidates rather than being buried, and the exact re-scoring leaves it out of its mean.
    values = np.nan_to_num(np.concatenate(blocks, axis=1) + SHIFT, nan=SHIFT).astype(np.float32)
    keep = values > 1e-6
    return [(np.flatnonzero(row).tolist(), values[i, row].tolist()) for i, row in enumerate(keep)]


@dataclass(frozen=True)
class AttributeTerms:
    """A description as weighted terms: (attributes, negated, weight) per constraint that names a known
    attribute. The reader turns it into its version's query (`sparse` or, for old versions, `dense`)."""

    terms: tuple[tuple[tuple[str, ...], bool, float], ...]

    def dense(self) -> np.ndarray:
        """The `attr_logp` dot-product query: each weight spread evenly over its alternatives (approximate
        for alternatives; versions written before the sparse terms)."""
        query = np.zeros(attribute_dim(), dtype=np.float32)
        for attributes, negated, weight in self.terms:
            offset = len(ATTRIBUTE_VOCABULARY) if negated else 0
            for name in attributes:
                query[offset + ATTRIBUTE_INDEX[name]] += weight / len(attributes)
        return query

    def sparse(self, groups: Mapping[tuple[str, ...], int]) -> tuple[list[int], list[float]]:
        """(indices, weights) of the `attr_terms` query; `groups` maps a group to its position in the
        version. A group the version lacks is spread over its attributes, as `dense` does."""
        width = len(ATTRIBUTE_VOCABULARY)
        weights: dict[int, float] = {}
        for attributes, negated, weight in self.terms:
            if len(attributes) > 1 and attributes in groups:
                column = 2 * width + 2 * groups[attributes] + int(negated)
                weights[column] = weights.get(column, 0.0) + weight
                continue
            for name in attributes:
                column = ATTRIBUTE_INDEX[name] + (width if negated else 0)
                weights[column] = weights.get(column, 0.0) + weight / len(attributes)
        columns = sorted(weights)
        return columns, [weights[c] for c in columns]


def attribute_terms(constraints: Sequence[Any]) -> AttributeTerms | None:
    """The terms of a description's constraints (`tasks.text_query.Constraint`): each keeps the
    attributes the vocabulary knows. None when no constraint names a known attribute."""
    terms = []
    for constraint in constraints:
        attributes = tuple(name for name in constraint.attributes if name in ATTRIBUTE_INDEX)
        if attributes:
            terms.append((attributes, bool(constraint.negated), float(constraint.weight)))
    return AttributeTerms(tuple(terms)) if terms else None


def write_groups(folder: Path, groups: Sequence[Sequence[str]]) -> None:
    """Record the groups a version's `attr_terms` hold (the version folder is renamed into place after)."""
    (folder / GROUPS_FILE).write_text(json.dumps([list(g) for g in groups]))


def read_groups(folder: Path) -> dict[tuple[str, ...], int] | None:
    """group -> position in a version's `attr_terms`; None for a version written without them."""
    path = folder / GROUPS_FILE
    if not path.is_file():
        return None
    return {tuple(group): i for i, group in enumerate(json.loads(path.read_text()))}
