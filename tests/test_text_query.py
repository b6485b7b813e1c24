"""Free-text descriptions -> attribute constraints; the colour-only view and its colour-rule scoring."""

import pytest

from tasks.attribute_vocab import ATTRIBUTE_INDEX
from tasks.text_query import AttributeQuery, parse_description, parse_query, score_attributes


def _constraints(text: str) -> dict[str, tuple[tuple[str, ...], bool]]:
    """display label -> (attributes, negated)."""
    return {c.display: (c.attributes, c.negated) for c in parse_description(text).constraints}


def test_colours_bind_to_the_next_garment():
    query = parse_query("red jacket and blue jeans")
    assert (query.upper, query.lower, query.any) == ({"red"}, {"blue"}, set())
    assert query.weights == {}  # blue was said, not implied


def test_upper_garment_after_filler_words():
    query = parse_query("woman in white top")
    # "woman" is understood, but the colour rules cannot measure it: the colour view says so
    assert (query.upper, query.lower, query.any, query.unmatched_words) == ({"white"}, set(), set(), ["woman"])


def test_lower_garment():
    query = parse_query("black pants")
    assert (query.upper, query.lower) == (set(), {"black"})


def test_colour_without_garment_goes_to_any():
    query = parse_query("someone in green")
    assert (query.upper, query.lower, query.any) == (set(), set(), {"green"})


@pytest.mark.parametrize(
    ("text", "upper", "lower"),
    [
        ("gray hoodie", {"grey"}, set()),
        ("navy blazer and khaki chinos", {"blue"}, {"beige"}),
        ("tan trousers", set(), {"beige"}),
        ("maroon sweater", {"red"}, set()),
        ("violet cardigan", {"purple"}, set()),
        ("Dark-Blue T-Shirt, light grey shorts", {"blue"}, {"grey"}),
        ("bright yellow tshirt", {"yellow"}, set()),
        ("red jackets", {"red"}, set()),  # plural
        ("black and white striped shirt", {"black", "white"}, set()),
        ("navy blue coat", {"blue"}, set()),
    ],
)
def test_synonyms_and_modifiers(text, upper, lower):
    query = parse_query(text)
    assert (query.upper, query.lower) == (upper, lower)


def test_unknown_words_are_reported():
    assert parse_description("tall man in red parka running").unknown_words == ["tall", "running"]
    assert parse_query("tall man in red parka running").unmatched_words == ["tall", "running", "man"]


def test_footwear_colour_is_not_a_colour_rule_constraint():
    query = parse_query("blue jeans and white shoes")
    assert (query.lower, query.any) == ({"blue"}, set())
    assert "footwear white" in query.unmatched_words
    assert _constraints("blue jeans and white shoes")["footwear white"] == (("footwearWhite",), False)


def test_dress_colours_both_regions():
    query = parse_query("woman in a black dress")
    assert (query.upper, query.lower) == ({"black"}, {"black"})


def test_jeans_without_colour_imply_blue_at_lower_weight():
    query = parse_query("man in jeans")
    assert query.lower == {"blue"} and query.weights == {("lower", "blue"): 0.5}
    assert parse_query("person wearing denim").lower == {"blue"}
    assert parse_query("black jeans").lower == {"black"} and parse_query("black jeans").weights == {}
    assert parse_query("denim jacket").upper == {"blue"}


def test_implied_blue_yields_to_an_explicit_lower_colour():
    query = parse_query("grey trousers or jeans")
    assert query.lower == {"grey"} and query.weights == {}


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_query_is_an_error(text):
    with pytest.raises(ValueError, match="empty query"):
        parse_query(text)


def test_red_blue_person_outranks_blue_red_person():
    query = parse_query("red jacket and blue jeans")
    right, why = score_attributes(query, "red", 0.62, "blue", 0.48)
    wrong, why_not = score_attributes(query, "blue", 0.7, "red", 0.6)
    assert right == pytest.approx(0.55) and wrong == 0.0
    assert why == "upper red 0.62, lower blue 0.48"
    assert why_not == "upper red: no (blue), lower blue: no (red)"  # a miss says so, with what was seen


def test_shares_give_partial_credit_beyond_the_dominant_colour():
    query = parse_query("red jacket and blue jeans")
    upper_shares = {"black": 0.6, "red": 0.3, "white": 0.1}
    lower_shares = {"blue": 0.8, "grey": 0.2}
    score, why = score_attributes(query, "black", 0.6, "blue", 0.8, upper_shares, lower_shares)
    assert score == pytest.approx(0.55)
    assert "upper red 0.30" in why and "lower blue 0.80" in why


def test_any_colour_takes_the_better_region():
    score, why = score_attributes(parse_query("green"), "black", 0.9, "green", 0.4)
    assert score == pytest.approx(0.4)
    assert why == "any green 0.40 (lower)"


def test_implied_constraint_weighs_less():
    query = parse_query("red jacket and jeans")  # lower blue at weight 0.5
    score, why = score_attributes(query, "red", 0.9, "black", 0.9)
    assert score == pytest.approx(0.9 / 1.5)
    assert "lower blue: no (black) (implied)" in why


def test_missing_colours_and_empty_constraints_score_zero():
    query = parse_query("red jacket")
    assert score_attributes(query, None, None, None, None) == (0.0, "upper red: no (no colour read)")
    assert score_attributes(AttributeQuery(), "red", 1.0, "blue", 1.0) == (0.0, "no colour in query")


# ---------------------------------------------------------------------------- attribute constraints


def test_colours_bind_to_their_garment_region_both_ways():
    right = _constraints("red jacket and blue jeans")
    swapped = _constraints("blue jacket and red jeans")
    assert right["upper red"][0] == ("upperBodyRed",) and right["lower blue"][0] == ("lowerBodyBlue",)
    assert swapped["upper blue"][0] == ("upperBodyBlue",) and swapped["lower red"][0] == ("lowerBodyRed",)
    assert "upper blue" not in right and "lower red" not in right
    assert right["jacket"][0] == ("upperBodyJacket",) and right["jeans"][0] == ("lowerBodyJeans",)


def test_witness_description_is_fully_understood():
    text = "woman with long blonde hair, white t-shirt, black skirt, carrying a backpack"
    description = parse_description(text)
    assert description.unknown_words == [] and description.unmeasured == []
    assert {c.display: c.attributes for c in description.constraints} == {
        "woman": ("personalFemale",),
        "hair blonde": ("hairYellow",),
        "long hair": ("hairLong",),
        "upper white": ("upperBodyWhite",),
        "t-shirt": ("upperBodyTshirt",),
        "lower black": ("lowerBodyBlack",),
        "skirt": ("lowerBodyShortSkirt", "lowerBodyLongSkirt"),
        "backpack": ("carryingBackpack",),
    }


@pytest.mark.parametrize(
    ("text", "label", "attributes"),
    [
        ("man in his 60s", "age 60s", ("personalLarger60",)),
        ("a 35-year-old", "age 35", ("personalLess45",)),
        ("kid", "under 15", ("personalLess15",)),
        ("teenager", "young", ("personalLess15", "personalLess30")),
        ("old man", "old", ("personalLess60", "personalLarger60")),
        ("lady", "woman", ("personalFemale",)),
        ("guy", "man", ("personalMale",)),
        ("sneakers", "sneakers", ("footwearSneakers",)),
        ("trainers", "sneakers", ("footwearSneakers",)),
        ("boots", "boots", ("footwearBoots",)),
        ("sandals", "sandals", ("footwearSandals",)),
        ("black shoes", "footwear black", ("footwearBlack",)),
        ("pulling a suitcase", "suitcase", ("carryingSuitcase", "carryingLuggageCase")),
        ("carrying a plastic bag", "plastic bag", ("carryingPlasticBags",)),
        ("shoulder bag", "shoulder bag", ("carryingMessengerBag",)),
        ("rucksack", "backpack", ("carryingBackpack",)),
        ("baseball cap", "hat", ("accessoryHat",)),
        ("scarf", "scarf", ("accessoryMuffler",)),
        ("shades", "sunglasses", ("accessorySunglasses",)),
        ("hoodie", "sweater", ("upperBodySweater",)),
        ("short sleeves", "short sleeves", ("upperBodyShortSleeve",)),
        ("short skirt", "short skirt", ("lowerBodyShortSkirt",)),
        ("short hair", "short hair", ("hairShort",)),
        ("suit", "suit", ("upperBodySuit", "lowerBodySuits")),
        ("grey-haired", "hair grey", ("hairGrey",)),
    ],
)
def test_people_garments_footwear_carried_things_and_synonyms(text, label, attributes):
    found = _constraints(text)
    assert found[label] == (attributes, False), found
    assert all(name in ATTRIBUTE_INDEX for name in attributes)


def test_the_age_number_does_not_also_read_as_old():
    assert set(_constraints("35 years old woman")) == {"age 35", "woman"}


@pytest.mark.parametrize(
    ("text", "label"),
    [("no bag", "no bag"), ("without a hat", "no hat"), ("not wearing sunglasses", "no sunglasses")],
)
def test_negations(text, label):
    attributes, negated = _constraints(text)[label]
    assert negated and attributes


def test_negation_carries_over_or_but_not_and():
    found = _constraints("no hat or scarf and a backpack")
    assert found["no hat"][1] and found["no scarf"][1] and found["backpack"] == (("carryingBackpack",), False)


def test_not_carrying_anything_is_carrying_nothing():
    assert _constraints("not carrying anything") == {"carrying nothing": (("carryingNothing",), False)}


def test_without_a_red_jacket_denies_the_colour_not_every_jacket():
    assert _constraints("without a red jacket") == {"no upper red": (("upperBodyRed",), True)}


def test_beige_maps_onto_petas_brown_yellow_white():
    attributes, _ = _constraints("beige trousers")["lower beige"]
    assert attributes == ("lowerBodyBrown", "lowerBodyYellow", "lowerBodyWhite")


def test_colours_peta_does_not_label_are_reported_not_dropped():
    description = parse_description("orange trousers and red hair")
    assert description.unmeasured == ["orange lower", "red hair"]
    assert [c.display for c in description.constraints] == ["trousers"]


def test_headphones_and_bag_colours_are_reported_as_not_measured():
    description = parse_description("man with headphones and a red backpack")
    assert description.unmeasured == ["headphones", "backpack colour red"]
    assert [c.display for c in description.constraints] == ["man", "backpack"]


def test_no_understood_word_gives_no_constraint_and_lists_the_words():
    description = parse_description("xyzzy plugh")
    assert description.is_empty() and description.unknown_words == ["xyzzy", "plugh"]


def test_every_constraint_with_alternatives_is_an_indexed_group():
    """The index stores one term per alternative group (`alternative_groups`) so the engine ranks
    "skirt" (short OR long) exactly; a constraint outside that list would silently fall back to an
    approximation. Parse every lexicon word, every colour on every garment region and every age form."""
    from tasks.text_lexicon import COLOR_SYNONYMS, HAIR_COLOUR_WORDS, LEXICON
    from tasks.text_query import alternative_groups

    groups = set(alternative_groups())
    assert ("lowerBodyShortSkirt", "lowerBodyLongSkirt") in groups and all(len(g) > 1 for g in groups)
    texts = [f"no {word}" for word in LEXICON] + list(LEXICON)
    for colour in (*COLOR_SYNONYMS, *HAIR_COLOUR_WORDS):
        texts += [f"{colour} jacket", f"{colour} trousers", f"{colour} dress", f"{colour} shoes", f"{colour} hair",
                  f"in {colour}", f"without {colour}"]  # fmt: skip
    texts += [f"man in his {d}0s" for d in range(1, 10)] + [f"woman aged {n}" for n in range(1, 111)]
    texts += [f"{n} years old" for n in range(1, 111)] + ["short skirt", "long dress", "short trousers"]
    seen = 0
    for text in texts:
        for constraint in parse_description(text).constraints:
            if len(constraint.attributes) > 1:
                seen += 1
                assert constraint.attributes in groups, f"{text!r}: {constraint.attributes} is not a group"
    assert seen > 100  # the sweep did reach constraints with alternatives
