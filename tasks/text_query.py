"""Free-text person descriptions ("woman in a red jacket, blue jeans, with a backpack") -> constraints.

Why a small hand-written parser and not an embedding of the whole sentence: a witness's words map
onto a fixed, measured vocabulary (PETA's attributes, `tasks.attribute_vocab`), so every word can
be checked, explained ("woman 0.93, backpack 0.81, upper red 0.77") and, when it is not part of
the vocabulary, reported back instead of silently changing the ranking. Plain Python: no Prefect,
no I/O, no model.

What the parser understands (see `tasks.text_lexicon.LEXICON` for every word):

* people words: gender ("woman", "guy", "she"), age ("kid", "teenager", "old man", "in his 60s",
  "35 years old", "middle-aged");
* garments, whose colours bind to the garment's region: a colour binds to the NEXT garment word,
  so "red jacket and blue jeans" gives upper red + lower blue and "blue jacket and red jeans" the
  opposite; garment types are constraints of their own (jacket, t-shirt, suit, sweater, jeans,
  trousers, shorts, skirt, dress, short / long sleeves);
* hair ("long blonde hair" -> long hair + hair yellow), footwear ("sneakers", "black shoes"),
  carried things ("with a backpack", "pulling a suitcase", "plastic bag", "shoulder bag"),
  accessories (hat, cap, sunglasses, scarf -> muffler);
* negations ("no bag", "without a hat", "not carrying anything"): the negation applies to the next
  thing named (and to the one after "or" / "nor").

Colours: the product's 12-colour palette (`COLOR_NAMES`) maps onto PETA's 11 colours one to one,
except beige, which PETA does not have: its annotators labelled khaki, tan and cream clothes as
brown, yellow or white, so "beige" is satisfied by any of those three (`PALETTE_TO_PETA`). A colour
PETA does not label for a region (there is no lower-body orange, no red hair) is reported as not
measured rather than dropped.

`parse_query` keeps the old colour-only view (`AttributeQuery`, upper / lower / any colours) that
the colour-rule scorer (`score_attributes`) needs for tracklets indexed without an attribute model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tasks.attribute_vocab import ATTRIBUTE_INDEX
from tasks.text_lexicon import (  # the vocabulary: every word the parser understands
    _AGE_CONTEXT_AFTER,
    _AGE_CONTEXT_BEFORE,
    _DECADES,
    _HAIR,
    _MAX_PHRASE,
    COLOR_SYNONYMS,
    HAIR_COLOUR_WORDS,
    IGNORED_WORDS,
    IMPLIED_WEIGHT,
    LEXICON,
    MODIFIERS,
    NEGATIONS,
    PALETTE_TO_PETA,
    PHRASE_BOUNDARIES,
    UNMEASURED,
    Noun,
    Trait,
)

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[,;.]")


# ---------------------------------------------------------------------------- the parsed description


@dataclass(frozen=True)
class Constraint:
    """One thing a description asks for. Satisfied when ANY of `attributes` holds (or none, if negated).

    `region` / `colour` are set for colour constraints (colour = the palette name said, e.g. "beige"),
    so the colour-rule scorer can read the same parse.
    """

    label: str
    attributes: tuple[str, ...]
    negated: bool = False
    weight: float = 1.0
    region: str | None = None  # upper, lower, any, hair, footwear (colour constraints only)
    colour: str | None = None

    @property
    def display(self) -> str:
        """What the user reads in an explanation: "woman", "no hat", "upper red"."""
        return f"no {self.label}" if self.negated else self.label


@dataclass
class Description:
    """A parsed description: constraints, words not understood, things heard but not measured."""

    text: str
    constraints: list[Constraint] = field(default_factory=list)
    unknown_words: list[str] = field(default_factory=list)
    unmeasured: list[str] = field(default_factory=list)  # "headphones", "backpack colour red"

    def is_empty(self) -> bool:
        return not self.constraints

    def add(self, constraint: Constraint) -> None:
        """Append unless the same attributes are already asked for the same way."""
        if constraint.attributes and all(
            (c.attributes, c.negated) != (constraint.attributes, constraint.negated) for c in self.constraints
        ):
            self.constraints.append(constraint)

    def colour_query(self) -> AttributeQuery:
        """The upper / lower / any colours of the description, for the colour-rule scorer.

        Negated colours are left out (the colour rules have no "not"). Everything else the rules
        cannot measure (gender, bags, hair...) is listed in `unmatched_words`.
        """
        query = AttributeQuery(unmatched_words=list(self.unknown_words))
        for constraint in self.constraints:
            if constraint.colour is not None and constraint.region in ("upper", "lower", "any") and not (
                constraint.negated
            ):
                getattr(query, constraint.region).add(constraint.colour)
            elif constraint.colour is None and constraint.label in _REGION_LOCATING_LABELS:
                continue  # a garment type only tells the rules where the colour is
            else:
                query.unmatched_words.append(constraint.display)
        if any(c.label == "jeans" and not c.negated for c in self.constraints) and not query.lower:
            query.lower.add("blue")
            query.weights[("lower", "blue")] = IMPLIED_WEIGHT
        return query


# Garment types: the colour rules do not measure them, but they say where a colour is, so they are
# not reported as "not measured" in the colour-only view.
_REGION_LOCATING_LABELS = frozenset(
    label
    for noun in LEXICON.values()
    if isinstance(noun, Noun) and noun.region in ("upper", "lower", "full")
    for label in (noun.label, *(variant[1] for variant in noun.variants))
)


# ---------------------------------------------------------------------------- tokens


def _tokens(text: str) -> list[str]:
    """Lower-case words; hyphens split words ("dark-blue", "t-shirt" -> "t shirt", "35-year-old")."""
    return _TOKEN.findall(text.lower().replace("-", " ").replace("’", "'"))


def _lookup(word: str) -> Noun | Trait | tuple[Trait, ...] | None:
    """The lexicon entry of a word or phrase, trying its singular ("jackets", "dresses")."""
    for candidate in (word, word[:-1] if word.endswith("s") else None, word[:-2] if word.endswith("es") else None):
        if candidate and candidate in LEXICON:
            return LEXICON[candidate]
    return None


def _phrase(words: list[str], start: int) -> tuple[str, int]:
    """The longest lexicon phrase starting at `start` (up to _MAX_PHRASE words) and its length."""
    for length in range(min(_MAX_PHRASE, len(words) - start), 1, -1):
        candidate = " ".join(words[start : start + length])
        if _lookup(candidate) is not None:
            return candidate, length
    return words[start], 1


def _age_buckets(low: int, high: int) -> tuple[str, ...]:
    """PETA age groups (<=15, 16-30, 31-45, 46-60, >60) overlapping the ages [low, high]."""
    bounds = (("personalLess15", 0, 15), ("personalLess30", 16, 30), ("personalLess45", 31, 45),
              ("personalLess60", 46, 60), ("personalLarger60", 61, 200))  # fmt: skip
    return tuple(name for name, lo, hi in bounds if lo <= high and low <= hi)


def _age(word: str, before: str | None, after: str | None) -> Trait | None:
    """'60s' / 'sixties' (a decade: its ages after the round number), or a number said as an age."""
    if word in _DECADES or re.fullmatch(r"\d{1,2}0s", word):
        decade = _DECADES.get(word) or int(word[:-1])
        low = decade if decade == 10 else decade + 1  # "in his 60s" is 61-69 more often than 60
        return Trait(f"age {word}", _age_buckets(low, decade + 9))
    if word.isdigit() and 1 <= int(word) <= 110 and (after in _AGE_CONTEXT_AFTER or before in _AGE_CONTEXT_BEFORE):
        return Trait(f"age {word}", _age_buckets(int(word), int(word)))
    return None


# ---------------------------------------------------------------------------- parsing


def _region_colour(region: str, colour_word: str) -> tuple[str, ...]:
    """PETA attributes of a palette colour on a region (those the vocabulary has; maybe none)."""
    prefix = {"upper": ("upperBody",), "lower": ("lowerBody",), "any": ("upperBody", "lowerBody"),
              "hair": ("hair",), "footwear": ("footwear",)}[region]  # fmt: skip
    if colour_word in HAIR_COLOUR_WORDS:
        peta: tuple[str, ...] = (HAIR_COLOUR_WORDS[colour_word],)
    else:
        peta = PALETTE_TO_PETA[COLOR_SYNONYMS[colour_word]]
    return tuple(f"{p}{c}" for p in prefix for c in peta if f"{p}{c}" in ATTRIBUTE_INDEX)


class _Parser:
    """One left-to-right pass. Colours and "short"/"long" wait for the next noun; a negation waits
    for the next thing named. State is per description."""

    def __init__(self, text: str) -> None:
        self.out = Description(text=text)
        self.colours: list[str] = []  # colour words waiting for their garment
        self.modifiers: list[str] = []
        self.negated = False  # armed by "no" / "without"
        self.last_negated = False  # the previous constraint was negated: "or" / "nor" re-arms

    def _take_negation(self) -> bool:
        negated, self.negated = self.negated, False
        self.last_negated = negated
        return negated

    def colour(self, region: str, word: str, negated: bool) -> None:
        colour = HAIR_COLOUR_WORDS.get(word, "").lower() or COLOR_SYNONYMS[word]
        label_colour = "blonde" if word in ("blonde", "blond") else colour
        attributes = _region_colour(region, word)
        if not attributes:
            self.out.unmeasured.append(f"{label_colour} {region if region != 'any' else 'clothes'}")
            return
        label = f"{label_colour} clothes" if region == "any" else f"{region} {label_colour}"
        self.out.add(Constraint(label, attributes, negated, region=region, colour=colour))

    def trait(self, trait: Trait) -> None:
        negated = self._take_negation() != trait.negated
        self.out.add(Constraint(trait.label, trait.attributes, negated, trait.weight))

    def noun(self, noun: Noun, word: str) -> None:
        label, attributes = noun.label, noun.attributes
        unused = []
        for modifier in self.modifiers:
            variant = next((v for v in noun.variants if v[0] == modifier), None)
            if variant is None:
                unused.append(modifier)
            else:
                label, attributes = variant[1], variant[2]
        self.out.unmeasured.extend(f"{m} {word}" for m in unused)
        negated = self._take_negation()
        colours, self.colours, self.modifiers = self.colours, [], []
        if colours and noun.region is None:
            self.out.unmeasured.extend(f"{noun.label} colour {c}" for c in colours)
        elif colours:
            regions = ("upper", "lower") if noun.region == "full" else (noun.region,)
            for region in regions:
                for colour in colours:
                    self.colour(region, colour, negated)
            if negated:  # "without a red jacket": the colour is denied, nothing is said about jackets
                return
        if attributes:
            self.out.add(Constraint(label, attributes, negated))

    def flush(self) -> None:
        """Colours with no garment before a phrase boundary ("in red, with a backpack"): either region."""
        if not self.colours:
            return
        colours, self.colours = self.colours, []
        if all(c == "denim" for c in colours):  # "man in denim": denim is jeans
            self.noun(LEXICON["jeans"], "denim")  # type: ignore[arg-type]
            return
        negated = self._take_negation()
        for colour in colours:
            self.colour("hair" if colour in HAIR_COLOUR_WORDS else "any", colour, negated)

    def finish(self) -> Description:
        self.flush()
        self.out.unknown_words.extend(self.modifiers)
        return self.out

    def parse(self, words: list[str]) -> Description:
        i = 0
        while i < len(words):
            word, length = _phrase(words, i)
            before, after = (words[i - 1] if i else None), (words[i + length] if i + length < len(words) else None)
            i += length
            entry = _lookup(word)
            if word in PHRASE_BOUNDARIES:
                self.flush()
            if entry is None and word not in COLOR_SYNONYMS and word not in HAIR_COLOUR_WORDS:
                age = _age(word, before, after)
                if age is not None:
                    self.trait(age)
                    while i < len(words) and words[i] in _AGE_CONTEXT_AFTER:  # "35 years old": not "old"
                        i += 1
                elif word in NEGATIONS:
                    self.negated = True
                elif word in ("or", "nor") and self.last_negated:
                    self.negated = True
                elif word == "anything" and self.negated:  # "not carrying anything" = carrying nothing
                    self._take_negation()
                    self.colours, self.modifiers = [], []
                    self.out.add(Constraint("carrying nothing", ("carryingNothing",)))
                elif word in MODIFIERS:
                    self.modifiers.append(word)
                elif word in UNMEASURED or _singular_in(word, UNMEASURED):
                    self.out.unmeasured.append(word)
                    self.colours, self.modifiers = [], []
                    self._take_negation()
                elif word in IGNORED_WORDS or word in PHRASE_BOUNDARIES:
                    continue
                else:
                    self.out.unknown_words.append(word)
                continue
            if entry is None:  # a colour word
                if word in HAIR_COLOUR_WORDS and _lookup(after or "") is not _HAIR:
                    self.colour("hair", word, self._take_negation())  # "blonde woman": hair, said now
                else:
                    self.colours.append(word)
            elif isinstance(entry, Noun):
                self.noun(entry, word)
            elif isinstance(entry, Trait):
                self.trait(entry)
            else:
                negated = self._take_negation()
                for trait in entry:
                    self.negated = negated
                    self.trait(trait)
        return self.finish()


def _singular_in(word: str, words: frozenset[str]) -> bool:
    return word.endswith("s") and word[:-1] in words


def parse_description(text: str) -> Description:
    """Parse a witness's description into attribute constraints (see the module docstring).

    Raises ValueError for an empty text. A text of only unknown words gives a Description with no
    constraints and those words in `unknown_words`: the caller says "not understood: ...".
    """
    if not text or not text.strip():
        raise ValueError("empty query")
    return _Parser(text).parse(_tokens(text))


def alternative_groups() -> tuple[tuple[str, ...], ...]:
    """Every attribute tuple with alternatives a parsed constraint can hold ("skirt" = short OR long
    skirt, "beige clothes", "in his 60s"), sorted.

    Why: a constraint with alternatives scores its most probable one, which no weighted sum of
    per-attribute log-probabilities equals; the index stores this max for each such group as a term
    of its own (`storage.attribute_vectors`), so the engine ranks descriptions exactly. Derived from
    the lexicon, colours and age rules the parser itself uses; tests parse every lexicon word and
    colour to check no constraint falls outside this list.
    """
    found: set[tuple[str, ...]] = set()
    for entry in LEXICON.values():
        entries = entry if isinstance(entry, tuple) else (entry,)
        for item in entries:
            found.add(item.attributes)
            if isinstance(item, Noun):
                found.update(variant[2] for variant in item.variants)
    for region in ("upper", "lower", "any", "hair", "footwear"):
        for word in (*COLOR_SYNONYMS, *HAIR_COLOUR_WORDS):
            found.add(_region_colour(region, word))
    found.update(_age_buckets(low, high) for low in range(0, 121) for high in range(low, 121))
    return tuple(sorted(group for group in found if len(group) > 1))


# ---------------------------------------------------------------------------- the colour-rule view


@dataclass
class AttributeQuery:
    """Colour constraints of a description. `weights` holds (region, colour) -> weight where not 1."""

    upper: set[str] = field(default_factory=set)
    lower: set[str] = field(default_factory=set)
    any: set[str] = field(default_factory=set)  # colours said without a garment: either region
    unmatched_words: list[str] = field(default_factory=list)  # not understood, or not measured by colour rules
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


def parse_query(text: str) -> AttributeQuery:
    """The colour-only view of `parse_description(text)`: what the colour rules can check.

    "red jacket and blue jeans" -> upper {red}, lower {blue}. "jeans" without a lower colour implies
    lower blue at IMPLIED_WEIGHT.
    """
    return parse_description(text).colour_query()


def _credit(colour: str, dominant: str | None, conf: float | None, shares: dict[str, float] | None) -> float:
    """Share of `colour` in one region: from the full shares when known, else the dominant colour only."""
    if shares:
        return float(shares.get(colour, 0.0))
    return float(conf or 0.0) if dominant == colour else 0.0


def _seen(region: str, upper_color: str | None, lower_color: str | None) -> str:
    """The colour(s) read in the region a missed constraint asked about, for its explanation."""
    seen = {"upper": [upper_color], "lower": [lower_color], "any": [upper_color, lower_color]}[region]
    named = [c for c in seen if c]
    return "/".join(named) if named else "no colour read"


def score_attributes(
    query: AttributeQuery,
    upper_color: str | None,
    upper_conf: float | None,
    lower_color: str | None,
    lower_conf: float | None,
    upper_shares: dict[str, float] | None = None,
    lower_shares: dict[str, float] | None = None,
) -> tuple[float, str]:
    """(score 0..1, explanation) by the colour rules: the weighted mean over constraints of the
    colour's share in its region. An `any` colour takes the better of the two regions. A query
    without colours scores 0. Used for tracklets indexed without an attribute model.

    The explanation gives each stated colour's strength where it matched, and says "no" with the
    colour actually seen where it did not ("upper red 0.62, lower blue: no (grey)"), so a user (and
    a test) can tell a match from a listed-but-missed constraint.
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
        if credit > 0.0:
            parts.append(f"{region} {colour} {credit:.2f}{note}")
        else:
            parts.append(f"{region} {colour}: no ({_seen(region, upper_color, lower_color)}){note}")
    return min(max(total / weight_sum, 0.0), 1.0), ", ".join(parts)
