"""Free-text person descriptions ("red jacket and blue jeans") -> colour constraints and scores.

Why a small parser and not only CLIP: colours are what witnesses remember and what CLIP on
80-pixel crops gets wrong most often; the attribute stage already measured each tracklet's
upper/lower colour shares, so a query can be checked against them and the match explained
("upper red 0.62, lower blue 0.48"). Plain Python: no Prefect, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from storage.schemas import COLOR_NAMES

UPPER_GARMENTS = frozenset(
    "shirt t-shirt tshirt tee top jacket coat hoodie sweater jumper blouse vest parka blazer cardigan sweatshirt"
    " pullover anorak raincoat fleece".split()
)
LOWER_GARMENTS = frozenset("pants trousers jeans shorts skirt leggings chinos joggers".split())
FULL_BODY_GARMENTS = frozenset("dress suit overalls tracksuit uniform".split())  # colour both regions
# Things we do not measure: a colour bound to them is consumed, so it does not leak into `any`.
OTHER_ITEMS = frozenset(
    "shoes shoe sneakers trainers boots hat cap beanie hair bag backpack handbag scarf umbrella gloves helmet"
    " socks belt glasses sunglasses bike".split()
)
IMPLIED_BLUE = frozenset({"jeans", "denim"})  # without a colour, these are usually blue
IMPLIED_WEIGHT = 0.5  # an implied colour counts half as much as a stated one

COLOR_SYNONYMS: dict[str, str] = {
    **{name: name for name in COLOR_NAMES},
    "gray": "grey", "silver": "grey", "charcoal": "grey",
    "navy": "blue", "denim": "blue", "indigo": "blue", "teal": "blue", "turquoise": "blue", "cyan": "blue",
    "khaki": "beige", "tan": "beige", "cream": "beige", "camel": "beige", "sand": "beige",
    "maroon": "red", "burgundy": "red", "crimson": "red", "scarlet": "red",
    "violet": "purple", "lilac": "purple", "lavender": "purple", "mauve": "purple",
    "magenta": "pink", "rose": "pink", "fuchsia": "pink",
    "olive": "green", "lime": "green",
    "gold": "yellow", "golden": "yellow", "mustard": "yellow",
    "ivory": "white", "chocolate": "brown",
    "reddish": "red", "bluish": "blue", "blueish": "blue", "greenish": "green", "greyish": "grey",
    "grayish": "grey", "yellowish": "yellow", "brownish": "brown", "pinkish": "pink", "purplish": "purple",
    "orangish": "orange", "orangey": "orange", "whitish": "white", "blackish": "black",
}  # fmt: skip
# Words that change nothing: shade modifiers (the palette has no shades) and filler.
IGNORED_WORDS = frozenset(
    "dark light bright pale deep pastel faded a an the in with and or wearing wears wear dressed who is has"
    " having his her their some of on plus that man woman person guy girl boy lady someone child kid people"
    " men women coloured colored color colour".split()
)

_TOKEN = re.compile(r"[a-z]+(?:-[a-z]+)*")


@dataclass
class AttributeQuery:
    """Colour constraints of a description. `weights` holds (region, colour) -> weight where not 1."""

    upper: set[str] = field(default_factory=set)
    lower: set[str] = field(default_factory=set)
    any: set[str] = field(default_factory=set)  # colours said without a garment: either region
    unmatched_words: list[str] = field(default_factory=list)  # words not understood (or not measured)
    weights: dict[tuple[str, str], float] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.upper or self.lower or self.any)

    def constraints(self) -> list[tuple[str, str, float]]:
        """(region, colour, weight) in a stable order: upper, lower, any; colours alphabetical."""
        return [
            (region, colour, self.weights.get((region, colour), 1.0))
            for region, colours in (("upper", self.upper), ("lower", self.lower), ("any", self.any))
            for colour in sorted(colours)
        ]


def _tokens(text: str) -> list[str]:
    """Lower-case words; a hyphenated word not in any vocabulary is split ("dark-blue")."""
    words: list[str] = []
    for token in _TOKEN.findall(text.lower()):
        if "-" in token and _kind(token) == "unknown":
            words.extend(token.split("-"))
        else:
            words.append(token)
    return words


def _singular(word: str) -> str:
    """'jackets' -> 'jacket' when only the plural is unknown; 'jeans', 'pants' stay as they are."""
    if _kind(word, plural=False) == "unknown" and word.endswith("s") and _kind(word[:-1], plural=False) != "unknown":
        return word[:-1]
    return word


def _kind(word: str, plural: bool = True) -> str:
    """Which vocabulary a word belongs to: colour, upper, lower, full, other, ignored or unknown."""
    if plural:
        word = _singular(word)
    if word in COLOR_SYNONYMS:
        return "colour"
    for kind, vocabulary in (
        ("upper", UPPER_GARMENTS),
        ("lower", LOWER_GARMENTS),
        ("full", FULL_BODY_GARMENTS),
        ("other", OTHER_ITEMS),
        ("ignored", IGNORED_WORDS),
    ):
        if word in vocabulary:
            return kind
    return "unknown"


def _bind(query: AttributeQuery, kind: str, colours: list[str]) -> None:
    """Attach the colours said before a garment to that garment's region(s)."""
    if kind in ("upper", "full"):
        query.upper.update(colours)
    if kind in ("lower", "full"):
        query.lower.update(colours)


def parse_query(text: str) -> AttributeQuery:
    """Bind each colour to the NEXT garment word; colours with no garment after them go to `any`.

    "red jacket and blue jeans" -> upper {red}, lower {blue}. "jeans" without a colour (or "denim"
    with no garment) implies lower blue at half weight, unless the lower body got an explicit colour.
    """
    if not text or not text.strip():
        raise ValueError("empty query")
    query = AttributeQuery()
    pending: list[str] = []  # colours waiting for their garment
    implied_blue = False
    for raw in _tokens(text):
        word = _singular(raw)
        kind = _kind(word)
        if kind == "colour":
            pending.append(word)
            continue
        if kind in ("upper", "lower", "full"):
            implied_blue |= word in IMPLIED_BLUE and not pending
            _bind(query, kind, [COLOR_SYNONYMS[w] for w in pending])
            pending = []
        elif kind == "other":
            query.unmatched_words.append(raw)  # e.g. "white shoes": heard, but not measured
            pending = []
        elif kind == "unknown":
            query.unmatched_words.append(raw)
    if pending and all(w in IMPLIED_BLUE for w in pending):  # "man in denim": denim is worn on the legs
        implied_blue = True
    else:
        query.any.update(COLOR_SYNONYMS[w] for w in pending)
    if implied_blue and not query.lower:
        query.lower.add("blue")
        query.weights[("lower", "blue")] = IMPLIED_WEIGHT
    return query


def _credit(colour: str, dominant: str | None, conf: float | None, shares: dict[str, float] | None) -> float:
    """Share of `colour` in one region: from the full shares when known, else the dominant colour only."""
    if shares:
        return float(shares.get(colour, 0.0))
    return float(conf or 0.0) if dominant == colour else 0.0


def score_attributes(
    query: AttributeQuery,
    upper_color: str | None,
    upper_conf: float | None,
    lower_color: str | None,
    lower_conf: float | None,
    upper_shares: dict[str, float] | None = None,
    lower_shares: dict[str, float] | None = None,
) -> tuple[float, str]:
    """(score 0..1, explanation): the weighted mean over constraints of the colour's share in its region.

    An `any` colour takes the better of the two regions. A query without colours scores 0.
    """
    constraints = query.constraints()
    if not constraints:
        return 0.0, "no colour in query"
    total = weight_sum = 0.0
    parts: list[str] = []
    for region, colour, weight in constraints:
        upper = _credit(colour, upper_color, upper_conf, upper_shares)
        lower = _credit(colour, lower_color, lower_conf, lower_shares)
        if region == "upper":
            credit, note = upper, ""
        elif region == "lower":
            credit, note = lower, ""
        else:
            credit, note = max(upper, lower), f" ({'upper' if upper >= lower else 'lower'})"
        if weight != 1.0:
            note += " (implied)"
        total += weight * credit
        weight_sum += weight
        parts.append(f"{region} {colour} {credit:.2f}{note}")
    return min(max(total / weight_sum, 0.0), 1.0), ", ".join(parts)
