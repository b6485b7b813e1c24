"""Free-text descriptions -> colour constraints, and scoring tracklets' colours against them."""

import pytest

from tasks.text_query import AttributeQuery, parse_query, score_attributes


def test_colours_bind_to_the_next_garment():
    query = parse_query("red jacket and blue jeans")
    assert (query.upper, query.lower, query.any) == ({"red"}, {"blue"}, set())
    assert query.weights == {}  # blue was said, not implied


def test_upper_garment_after_filler_words():
    query = parse_query("woman in white top")
    assert (query.upper, query.lower, query.any, query.unmatched_words) == ({"white"}, set(), set(), [])


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
    assert parse_query("tall man in red parka running").unmatched_words == ["tall", "running"]


def test_colour_of_an_unmeasured_item_is_not_a_constraint():
    query = parse_query("blue jeans and white shoes")
    assert (query.lower, query.any) == ({"blue"}, set())
    assert "shoes" in query.unmatched_words


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
    wrong, _ = score_attributes(query, "blue", 0.7, "red", 0.6)
    assert right == pytest.approx(0.55) and wrong == 0.0
    assert why == "upper red 0.62, lower blue 0.48"


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
    assert "lower blue 0.00 (implied)" in why


def test_missing_colours_and_empty_constraints_score_zero():
    query = parse_query("red jacket")
    assert score_attributes(query, None, None, None, None)[0] == 0.0
    assert score_attributes(AttributeQuery(), "red", 1.0, "blue", 1.0) == (0.0, "no colour in query")
