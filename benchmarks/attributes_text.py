"""Text-to-person retrieval on PETA's held-out people: the attribute scorer vs the old colour rules.

    python benchmarks/attributes_text.py [--peta DIR] [--weights NAME_OR_PATH] [--queries N] [--seed S]

Called by `benchmarks/attributes.py` on the PETA test split (`text_retrieval(...)`), or alone: then
it loads the attribute model and its own held-out test people the same way (split file of the
model's manifest) and also compares the model's raw and calibrated probabilities.

Protocol (all of it fixed by the seed):

1. People: the test split's persons; a person's probabilities are the mean over their images (the
   product averages a tracklet's crops), their labels PETA's per-person labels.
2. Queries: `n_queries` (200) people drawn at random; from each, 2-4 of their POSITIVE labels from
   distinct slots (gender, age, hair, upper colour, upper garment, lower colour, lower garment,
   footwear, carried thing, accessory), written as natural text ("woman, long black hair, white
   upper body, black short skirt, with a backpack"); a quarter of the queries also deny an item
   the person does not have ("without a hat"). The text goes through the product's real parser.
3. Relevance: a person is relevant when their labels satisfy every phrase of the query, by what
   the phrase means (the labels it was written from; "pulling a suitcase" = suitcase or luggage
   case), not by what the parser made of it: a parser error costs the scorer, not the ground truth.
4. Ranking: every test person, by
   * `text_map`: the product's scorer (`tasks.attribute_scoring`: geometric mean of the query's
     constraint probabilities);
   * `text_map_colour_rules`: the old colour-rule scorer as deployed (`tasks.text_query.
     score_attributes` on the dominant upper / lower colour and its share, which is what the index
     payload held), fed by `tasks.attributes.describe_person` on the person's crops. The crops have
     no keypoints, so the rules use their fixed-band fallback;
   * `text_map_mixed`: the attribute probability of each upper/lower colour constraint averaged
     with the colour-rule credit: does keeping the colour rules add anything?
   Ties (the colour rules score 0 on every query without a colour) are broken at random (seeded),
   so a scorer that knows nothing scores the base rate, not 0 or 1.
5. Metrics: mean average precision over queries and mean precision at 10; `text_ratio` =
   text_map / text_map_colour_rules. `*_queries_with_colour` repeat both on the queries that name at
   least one upper / lower colour (the only part the colour rules can read).

Measured (model 3125aa547b3a, split seed 0, 285 test people, 200 queries, seed 0): text_map 0.356,
P@10 0.345; colour rules 0.159 / 0.157; ratio 2.24; mixed 0.362; on the 103 queries naming a colour
0.365 vs 0.156. Calibrated probabilities: 0.356.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tasks.attribute_scoring import combine, constraint_probabilities  # noqa: E402
from tasks.attribute_vocab import ATTRIBUTE_INDEX, ATTRIBUTE_NAMES  # noqa: E402
from tasks.attributes import describe_person  # noqa: E402
from tasks.embed_tracklets import align_attributes  # noqa: E402
from tasks.text_query import _credit, parse_description, score_attributes  # noqa: E402

log = logging.getLogger("bench.attributes_text")

N_QUERIES = 200
PHRASES_PER_QUERY = (2, 4)  # inclusive
NEGATION_SHARE = 0.25
MIX_WEIGHT = 0.5  # text_map_mixed: weight of the attribute model against the colour-rule credit
COLOURS = ("Black", "Blue", "Brown", "Green", "Grey", "Orange", "Pink", "Purple", "Red", "White", "Yellow")


@dataclass(frozen=True)
class Phrase:
    """A piece of a query: its text, its slot, and what a person's labels must hold to satisfy it."""

    text: str
    slot: str
    attributes: tuple[str, ...]  # satisfied when any holds
    negated: bool = False
    colour_only: bool = False

    def satisfied(self, labels: np.ndarray) -> np.ndarray:
        """(people,) bool for a (people, len(ATTRIBUTE_NAMES)) label matrix."""
        held = labels[:, [ATTRIBUTE_INDEX[a] for a in self.attributes]].any(axis=1)
        return ~held if self.negated else held


_SIMPLE: dict[str, tuple[str, str]] = {  # label -> (slot, text)
    "personalFemale": ("gender", "woman"), "personalMale": ("gender", "man"),
    "personalLess15": ("age", "child"), "personalLess30": ("age", "young"),
    "personalLess45": ("age", "in their 30s"), "personalLess60": ("age", "in their 50s"),
    "personalLarger60": ("age", "elderly"),
    "upperBodyJacket": ("upper", "jacket"), "upperBodyTshirt": ("upper", "t-shirt"),
    "upperBodySweater": ("upper", "sweater"), "upperBodySuit": ("upper", "suit"),
    "upperBodyShortSleeve": ("upper", "short sleeves"), "upperBodyLongSleeve": ("upper", "long sleeves"),
    "upperBodyPlaid": ("upper", "plaid shirt"), "upperBodyLogo": ("upper", "logo"),
    "upperBodyNoSleeve": ("upper", "sleeveless"),
    "lowerBodyJeans": ("lower", "jeans"), "lowerBodyTrousers": ("lower", "trousers"),
    "lowerBodyShorts": ("lower", "shorts"), "lowerBodyShortSkirt": ("lower", "short skirt"),
    "lowerBodyLongSkirt": ("lower", "long skirt"),
    "hairLong": ("hair", "long hair"), "hairShort": ("hair", "short hair"),
    "footwearSneakers": ("footwear", "sneakers"), "footwearBoots": ("footwear", "boots"),
    "footwearSandals": ("footwear", "sandals"), "footwearLeatherShoes": ("footwear", "leather shoes"),
    "carryingBackpack": ("carried", "with a backpack"), "carryingMessengerBag": ("carried", "with a shoulder bag"),
    "carryingPlasticBags": ("carried", "carrying a plastic bag"), "carryingNothing": ("carried", "carrying nothing"),
    "accessoryHat": ("accessory", "with a hat"), "accessorySunglasses": ("accessory", "with sunglasses"),
    "accessoryMuffler": ("accessory", "with a scarf"),
}  # fmt: skip
_SUITCASE = ("carryingSuitcase", "carryingLuggageCase")
_NEGATABLE = (("accessoryHat", "without a hat"), ("carryingBackpack", "no backpack"),
              ("accessorySunglasses", "no sunglasses"), ("carryingPlasticBags", "no plastic bag"))  # fmt: skip


def _candidate_phrases(labels: np.ndarray) -> dict[str, list[Phrase]]:
    """slot -> phrases one person's positive labels allow (colour + garment merged into one phrase)."""
    positive = {name for name in ATTRIBUTE_NAMES if labels[ATTRIBUTE_INDEX[name]]}
    slots: dict[str, list[Phrase]] = {}
    for name in sorted(positive):
        if name in _SIMPLE:
            slot, text = _SIMPLE[name]
            slots.setdefault(slot, []).append(Phrase(text, slot, (name,)))
    if positive & set(_SUITCASE):
        slots.setdefault("carried", []).append(Phrase("pulling a suitcase", "carried", _SUITCASE))
    for region, noun, slot in (("upperBody", "upper body", "upper_colour"), ("lowerBody", "lower body", "lower_colour"),
                               ("hair", "hair", "hair_colour"), ("footwear", "shoes", "footwear_colour")):
        for colour in COLOURS:
            name = f"{region}{colour}"
            if name in positive and name in ATTRIBUTE_INDEX:
                word = "blonde" if (region, colour) == ("hair", "Yellow") else colour.lower()
                slots.setdefault(slot, []).append(Phrase(f"{word} {noun}", slot, (name,),
                                                         colour_only=region in ("upperBody", "lowerBody")))
    return slots


_ORDER = ("gender", "age", "hair", "hair_colour", "upper", "upper_colour", "lower", "lower_colour", "footwear",
          "footwear_colour", "carried", "accessory", "negation")
_COLOUR_OF = {"hair": "hair_colour", "upper": "upper_colour", "lower": "lower_colour", "footwear": "footwear_colour"}
_UNCOLOURED = frozenset({"short sleeves", "long sleeves", "logo", "sleeveless", "suit"})  # a colour before them
# would mean something else (a suit's colour is both regions')


def _merge(chosen: list[Phrase]) -> list[str]:
    """Natural text in a fixed order; a colour joins its region's garment ("white" + "t-shirt" -> "white
    t-shirt", "black" + "long hair" -> "black long hair") instead of "white upper body, t-shirt"."""
    by_slot = {p.slot: p for p in chosen}
    merged_colours = {
        colour_slot for slot, colour_slot in _COLOUR_OF.items()
        if slot in by_slot and colour_slot in by_slot and by_slot[slot].text not in _UNCOLOURED
    }  # fmt: skip
    texts = []
    for slot in _ORDER:
        if slot not in by_slot or slot in merged_colours:
            continue
        text = by_slot[slot].text
        if _COLOUR_OF.get(slot) in merged_colours:
            text = f"{by_slot[_COLOUR_OF[slot]].text.split()[0]} {text}"
        texts.append(text)
    return texts


def make_queries(labels: np.ndarray, n_queries: int, seed: int) -> list[tuple[str, list[Phrase], int]]:
    """(text, phrases, source person) for `n_queries` seeded queries from people with >= 2 usable slots."""
    rng = np.random.default_rng(seed)
    candidates = [_candidate_phrases(row) for row in labels]
    usable = [i for i, slots in enumerate(candidates) if len(slots) >= PHRASES_PER_QUERY[0]]
    if not usable:
        raise ValueError("no test person has two describable labels: is the label matrix empty?")
    queries = []
    for person in rng.choice(usable, n_queries, replace=True):
        slots = candidates[int(person)]
        k = int(rng.integers(PHRASES_PER_QUERY[0], min(PHRASES_PER_QUERY[1], len(slots)) + 1))
        chosen = [slots[s][int(rng.integers(len(slots[s])))] for s in rng.choice(sorted(slots), k, replace=False)]
        if rng.random() < NEGATION_SHARE:
            absent = [(a, text) for a, text in _NEGATABLE if not labels[person, ATTRIBUTE_INDEX[a]]
                      and "accessory" not in {p.slot for p in chosen if a.startswith("accessory")}]
            if absent:
                name, text = absent[int(rng.integers(len(absent)))]
                chosen.append(Phrase(text, "negation", (name,), negated=True))
        queries.append((", ".join(_merge(chosen)), chosen, int(person)))
    return queries


def _average_precision(scores: np.ndarray, relevant: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """(AP, precision at 10) with ties broken at random."""
    order = np.lexsort((rng.random(len(scores)), -scores))
    hits = relevant[order]
    if not hits.any():
        return 0.0, 0.0
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum()), float(hits[:10].mean())


def _colour_rule_people(crops: Sequence[np.ndarray], persons: Sequence[str], people: list[str]) -> list:
    """describe_person per person over all their crops, no keypoints (the fixed-band fallback)."""
    by_person: dict[str, list[np.ndarray]] = {p: [] for p in people}
    for crop, person in zip(crops, persons, strict=True):
        by_person[person].append(crop)
    out = []
    for person in people:
        images = by_person[person]
        boxes = [(0.0, 0.0, float(c.shape[1]), float(c.shape[0])) for c in images]
        out.append(describe_person(images, boxes, [None] * len(images)))
    return out


def _load(crop: np.ndarray | str | os.PathLike) -> np.ndarray:
    if isinstance(crop, np.ndarray):
        return crop
    import cv2

    image = cv2.imread(str(crop), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {crop}")
    return image


def text_retrieval(
    probabilities: np.ndarray,
    labels: np.ndarray,
    persons: Sequence[str],
    crops: Sequence[np.ndarray | str | os.PathLike],
    names: Sequence[str] = ATTRIBUTE_NAMES,
    n_queries: int = N_QUERIES,
    seed: int = 0,
) -> dict[str, object]:
    """Text-to-person retrieval figures on held-out people (see the module docstring).

    probabilities: (images, len(names)) model outputs; labels: (images, len(names)) 0/1 labels;
    persons: each image's person key; crops: each image (BGR array or path) for the colour rules.
    """
    probs = align_attributes(np.asarray(probabilities, np.float32), tuple(names))
    label_matrix = np.nan_to_num(align_attributes(np.asarray(labels, np.float32), tuple(names))) > 0.5
    if not len(probs) == len(label_matrix) == len(persons) == len(crops):
        raise ValueError("probabilities, labels, persons and crops must have one row per image")
    people = sorted(set(persons))
    row_of = {p: i for i, p in enumerate(people)}
    rows = np.array([row_of[p] for p in persons])
    counts = np.bincount(rows, minlength=len(people))[:, None]
    person_probs = np.zeros((len(people), probs.shape[1]))
    np.add.at(person_probs, rows, np.nan_to_num(probs, nan=0.0))
    person_probs = (person_probs / counts).astype(np.float32)
    person_probs[:, np.isnan(probs).all(axis=0)] = np.nan  # names the model does not predict
    person_labels = np.zeros((len(people), probs.shape[1]), bool)
    np.logical_or.at(person_labels, rows, label_matrix)
    colours = _colour_rule_people([_load(c) for c in crops], list(persons), people)

    rng = np.random.default_rng(seed + 1)
    queries = make_queries(person_labels, n_queries, seed)
    figures: dict[str, list[tuple[float, float]]] = {"model": [], "rules": [], "mixed": [], "rules_shares": []}
    colour_query = []
    relevant_counts = []
    unknown = 0
    for text, phrases, _person in queries:
        description = parse_description(text)
        unknown += bool(description.unknown_words or description.unmeasured)
        relevant = np.all([p.satisfied(person_labels) for p in phrases], axis=0)
        relevant_counts.append(int(relevant.sum()))
        constraints = description.constraints
        p, _choice = constraint_probabilities(constraints, person_probs)
        weights = [c.weight for c in constraints]
        model_scores = combine(p, weights) if constraints else np.zeros(len(people))
        query = description.colour_query()
        rules = np.array([score_attributes(query, c.upper_color, c.upper_color_conf, c.lower_color,
                                           c.lower_color_conf)[0] for c in colours])
        rules_shares = np.array([score_attributes(query, c.upper_color, c.upper_color_conf, c.lower_color,
                                                  c.lower_color_conf, c.upper_shares, c.lower_shares)[0]
                                 for c in colours])
        mixed_p = p.copy()
        for j, constraint in enumerate(constraints):
            if constraint.colour is None or constraint.region not in ("upper", "lower", "any"):
                continue
            credit = np.array([_rule_credit(constraint.region, constraint.colour, c) for c in colours])
            credit = 1.0 - credit if constraint.negated else credit
            mixed_p[:, j] = MIX_WEIGHT * p[:, j] + (1 - MIX_WEIGHT) * credit
        mixed = combine(mixed_p, weights) if constraints else np.zeros(len(people))
        for key, scores in (("model", model_scores), ("rules", rules), ("mixed", mixed),
                            ("rules_shares", rules_shares)):
            figures[key].append(_average_precision(scores, relevant, rng))
        colour_query.append(any(phrase.colour_only for phrase in phrases))

    def mean(key: str, index: int, subset: np.ndarray | None = None) -> float:
        values = np.array([f[index] for f in figures[key]])
        return round(float(values[subset].mean() if subset is not None else values.mean()), 4)

    colour_only = np.array(colour_query)
    text_map, rules_map = mean("model", 0), mean("rules", 0)
    result: dict[str, object] = {
        "text_map": text_map,
        "text_p_at_10": mean("model", 1),
        "text_map_colour_rules": rules_map,
        "text_p_at_10_colour_rules": mean("rules", 1),
        "text_ratio": round(text_map / rules_map, 3) if rules_map > 0 else None,
        "text_map_mixed": mean("mixed", 0),
        "text_map_colour_rules_shares": mean("rules_shares", 0),
        "text_queries": len(queries),
        "text_people": len(people),
        "text_mean_relevant": round(float(np.mean(relevant_counts)), 2),
        "text_queries_not_fully_understood": unknown,
        "text_queries_with_colour": int(colour_only.sum()),
        "text_protocol": f"{len(queries)} queries from 2-4 positive labels of seeded random held-out people "
                         f"(+1 negation in {NEGATION_SHARE:.0%}), seed {seed}; relevance from labels",
    }
    if colour_only.any():
        result["text_map_queries_with_colour"] = mean("model", 0, colour_only)
        result["text_map_colour_rules_queries_with_colour"] = mean("rules", 0, colour_only)
    log.info("example queries: %s", "; ".join(text for text, _p, _person in queries[:5]))
    return result


def _rule_credit(region: str, colour: str, described: object) -> float:
    """The colour rules' credit for one colour constraint, from the dominant colour (the payload's data)."""
    upper = _credit(colour, described.upper_color, described.upper_color_conf, None)  # type: ignore[attr-defined]
    lower = _credit(colour, described.lower_color, described.lower_color_conf, None)  # type: ignore[attr-defined]
    return {"upper": upper, "lower": lower}.get(region, max(upper, lower))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peta", type=Path, default=REPO.parent / "shared" / "data" / "PETA")
    parser.add_argument("--weights", default="peta_attributes_osnet_x0_25.pt", help="path or registered name")
    parser.add_argument("--queries", type=int, default=N_QUERIES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    models = REPO.parent / "shared" / "models"
    if models.is_dir():
        os.environ.setdefault("SMARTTRACE_MODEL_DIR", str(models))
    from benchmarks.attributes import held_out_records, load_crops
    from tasks.attribute_model import AttributeModel

    model = AttributeModel.load(args.weights)
    records, manifest = held_out_records(model, args.peta)
    crops, labels, persons = load_crops(records)
    result: dict[str, object] = {"model": Path(model.weights_path).name, "sha256": model.sha256[:12],
                                 "split_seed": manifest["split"]["seed"], "subsets": manifest["data"]["subsets"]}
    raw = text_retrieval(model(crops), labels, persons, crops, model.names, args.queries, args.seed)
    calibrated = text_retrieval(model(crops, calibrated=True), labels, persons, crops, model.names, args.queries,
                                args.seed)
    result |= raw
    result |= {f"calibrated_{key}": value for key, value in calibrated.items() if key.startswith("text_map")}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
