"""The words text search understands, and what each maps onto: PETA attributes, regions, colours.

Its own module because it is data, read and extended on its own (a new garment or synonym is one line
here); `tasks.text_query` is the parser that walks a description with it. Plain Python, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.schemas import COLOR_NAMES

# ---------------------------------------------------------------------------- colours

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

# Product palette -> PETA colour names (see the module docstring for beige).
PALETTE_TO_PETA: dict[str, tuple[str, ...]] = {
    **{name: (name.capitalize(),) for name in COLOR_NAMES if name != "beige"},
    "beige": ("Brown", "Yellow", "White"),
}
# Hair-only colour words: said without "hair" they still describe the hair ("a blonde woman").
HAIR_COLOUR_WORDS: dict[str, str] = {"blonde": "Yellow", "blond": "Yellow", "brunette": "Brown"}

IMPLIED_WEIGHT = 0.5  # an implied constraint ("jeans" -> lower blue for the colour rules) counts half

# ---------------------------------------------------------------------------- the lexicon


@dataclass(frozen=True)
class Noun:
    """A thing a description names: its body region (where its colours go) and its attributes.

    `attributes` are alternatives (the thing is there when ANY of them is); `variants` replace them
    when a modifier comes before the noun ("short" + "skirt" -> lowerBodyShortSkirt). `region` None:
    colours said before it describe nothing measured (a red backpack).
    """

    label: str
    region: str | None = None  # upper, lower, full (both), hair, footwear, or None
    attributes: tuple[str, ...] = ()
    variants: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (modifier, label, attributes)
    implies_blue: bool = False  # jeans: the colour rules read them as lower blue (at IMPLIED_WEIGHT)


@dataclass(frozen=True)
class Trait:
    """A word that is a constraint by itself: "woman", "kid", "formal", "bald"."""

    label: str
    attributes: tuple[str, ...]
    negated: bool = False  # "adult" = not under 15
    weight: float = 1.0


_BAGS = ("carryingBackpack", "carryingMessengerBag", "carryingPlasticBags", "carryingSuitcase",
         "carryingLuggageCase", "carryingOther")  # fmt: skip
_YOUNG = ("personalLess15", "personalLess30")
_OLD = ("personalLess60", "personalLarger60")
_SKIRT = Noun("skirt", "lower", ("lowerBodyShortSkirt", "lowerBodyLongSkirt"),
              (("short", "short skirt", ("lowerBodyShortSkirt",)), ("long", "long skirt", ("lowerBodyLongSkirt",))))
_DRESS = Noun("dress", "full", _SKIRT.attributes, _SKIRT.variants)
_TROUSERS = Noun("trousers", "lower", ("lowerBodyTrousers",), (("short", "shorts", ("lowerBodyShorts",)),))
_JACKET = Noun("jacket", "upper", ("upperBodyJacket",))
_SWEATER = Noun("sweater", "upper", ("upperBodySweater",))
_TSHIRT = Noun("t-shirt", "upper", ("upperBodyTshirt",))
_SNEAKERS = Noun("sneakers", "footwear", ("footwearSneakers",))
_LEATHER = Noun("leather shoes", "footwear", ("footwearLeatherShoes",))
_BACKPACK = Noun("backpack", None, ("carryingBackpack",))
_SHOULDER_BAG = Noun("shoulder bag", None, ("carryingMessengerBag",))
_PLASTIC_BAG = Noun("plastic bag", None, ("carryingPlasticBags",))
_SUITCASE = Noun("suitcase", None, ("carryingSuitcase", "carryingLuggageCase"))
_BUGGY = Noun("baby buggy", None, ("carryingBabyBuggy",))
_HAT = Noun("hat", None, ("accessoryHat",))
_SUNGLASSES = Noun("sunglasses", None, ("accessorySunglasses",))
_MUFFLER = Noun("scarf", None, ("accessoryMuffler",))
_HAIR = Noun("hair", "hair", (), (("short", "short hair", ("hairShort",)), ("long", "long hair", ("hairLong",))))
_SLEEVES = Noun("sleeves", "upper", (), (("short", "short sleeves", ("upperBodyShortSleeve",)),
                                         ("long", "long sleeves", ("upperBodyLongSleeve",))))
_SHOES = Noun("shoes", "footwear")
_FEMALE = Trait("woman", ("personalFemale",))
_MALE = Trait("man", ("personalMale",))
_KID = Trait("under 15", ("personalLess15",))
_TEEN = Trait("young", _YOUNG)
_OLD_TRAIT = Trait("old", _OLD)
_ELDERLY = Trait("over 60", ("personalLarger60",))
_FORMAL = Trait("formal", ("upperBodyFormal", "lowerBodyFormal"))

# Word (or phrase, words joined by spaces) -> meaning. Plurals are found by stripping "s"/"es".
LEXICON: dict[str, Noun | Trait | tuple[Trait, ...]] = {
    # upper body: region only (the colour binds here, no garment type is implied)
    **{w: Noun("top", "upper") for w in ("top", "shirt", "blouse", "vest", "polo", "torso", "upper",
                                          "upper body", "upperbody")},
    **{w: _JACKET for w in ("jacket", "coat", "parka", "anorak", "raincoat", "windbreaker", "overcoat",
                            "trench coat", "puffer", "down jacket", "gilet")},
    "blazer": Noun("blazer", "upper", ("upperBodySuit", "upperBodyJacket")),
    **{w: _TSHIRT for w in ("t shirt", "tshirt", "tee", "tee shirt")},
    **{w: _SWEATER for w in ("sweater", "jumper", "pullover", "cardigan", "sweatshirt", "hoodie", "fleece")},
    "suit": Noun("suit", "full", ("upperBodySuit", "lowerBodySuits")),
    **{w: _SLEEVES for w in ("sleeve", "sleeves", "sleeved")},
    "sleeveless": Noun("sleeveless", "upper", ("upperBodyNoSleeve",)),
    "tank top": Noun("sleeveless", "upper", ("upperBodyNoSleeve",)),
    "logo": Noun("logo", "upper", ("upperBodyLogo",)),
    **{w: Noun("plaid", "upper", ("upperBodyPlaid",)) for w in ("plaid", "checked", "checkered", "tartan",
                                                                 "flannel")},
    **{w: Noun("stripes", "upper", ("upperBodyThinStripes", "upperBodyThickStripes"))
       for w in ("striped", "stripes", "stripy", "stripe")},
    "v neck": Noun("v-neck", "upper", ("upperBodyVNeck",)),
    **{w: Noun(w, "full") for w in ("uniform", "overalls", "tracksuit", "outfit", "clothes", "clothing")},
    # lower body
    **{w: Noun("bottoms", "lower") for w in ("bottoms", "lower", "lower body", "lowerbody", "legs")},
    **{w: Noun("jeans", "lower", ("lowerBodyJeans",), implies_blue=True) for w in ("jeans", "denims")},
    **{w: _TROUSERS for w in ("trousers", "pants", "slacks", "chinos", "joggers", "sweatpants", "khakis")},
    "shorts": Noun("shorts", "lower", ("lowerBodyShorts",)),
    "hot pants": Noun("hot pants", "lower", ("lowerBodyHotPants",)),
    "skirt": _SKIRT,
    "miniskirt": Noun("short skirt", "lower", ("lowerBodyShortSkirt",)),
    "dress": _DRESS,
    **{w: Noun("capri", "lower", ("lowerBodyCapri",)) for w in ("capri", "capris", "capri pants", "cropped trousers")},
    "leggings": Noun("leggings", "lower", ("lowerBodyCapri", "lowerBodyTrousers")),
    # hair
    **{w: _HAIR for w in ("hair", "haired", "hairstyle")},
    "ponytail": Noun("long hair", "hair", ("hairLong",)),
    "bald": Trait("bald", ("hairBald",)),
    # footwear
    **{w: _SHOES for w in ("shoe", "shoes", "footwear")},
    **{w: _SNEAKERS for w in ("sneaker", "sneakers", "trainer", "trainers", "running shoes", "tennis shoes")},
    **{w: Noun("boots", "footwear", ("footwearBoots",)) for w in ("boot", "boots")},
    **{w: Noun("sandals", "footwear", ("footwearSandals",)) for w in ("sandal", "sandals", "flip flops", "flipflops")},
    **{w: _LEATHER for w in ("leather shoes", "dress shoes", "loafers", "heels", "high heels")},
    **{w: Noun("stockings", "footwear", ("footwearStocking",)) for w in ("stocking", "stockings", "tights")},
    # carried things (their colours are not measured)
    **{w: _BACKPACK for w in ("backpack", "rucksack", "knapsack", "schoolbag", "school bag", "daypack")},
    **{w: _SHOULDER_BAG for w in ("messenger bag", "shoulder bag", "satchel", "handbag", "hand bag", "purse", "tote",
                                  "tote bag", "side bag", "crossbody bag", "man bag")},
    **{w: _PLASTIC_BAG for w in ("plastic bag", "shopping bag", "carrier bag", "grocery bag", "plastic bags")},
    **{w: _SUITCASE for w in ("suitcase", "luggage", "trolley", "trolley bag", "roller bag", "luggage case",
                              "travel bag", "wheeled bag")},
    **{w: Noun("bag", None, _BAGS) for w in ("bag", "bags")},
    **{w: Noun("folder", None, ("carryingFolder",)) for w in ("folder", "documents", "papers", "clipboard")},
    "briefcase": Noun("briefcase", None, ("carryingMessengerBag", "carryingFolder", "carryingOther")),
    **{w: _BUGGY for w in ("stroller", "pram", "buggy", "pushchair", "baby buggy")},
    "nothing": Noun("carrying nothing", None, ("carryingNothing",)),
    "empty handed": Noun("carrying nothing", None, ("carryingNothing",)),
    # accessories
    **{w: _HAT for w in ("hat", "cap", "beanie", "baseball cap", "beret", "helmet")},
    **{w: _SUNGLASSES for w in ("sunglasses", "shades", "sun glasses")},
    **{w: _MUFFLER for w in ("scarf", "muffler", "scarves")},
    **{w: Noun("hairband", None, ("accessoryHairBand",)) for w in ("hairband", "hair band", "headband", "head band")},
    **{w: Noun("accessories", None, ("accessoryHat", "accessoryMuffler", "accessorySunglasses", "accessoryHairBand"))
       for w in ("accessory", "accessories")},
    # people: gender and age
    **{w: _FEMALE for w in ("woman", "women", "lady", "ladies", "female", "she", "mother", "mum", "mom", "wife",
                            "madam")},
    **{w: _MALE for w in ("man", "men", "guy", "gentleman", "gent", "male", "he", "father", "dad", "husband",
                          "dude", "bloke", "sir")},
    "girl": (_FEMALE, Trait("young", _YOUNG, weight=IMPLIED_WEIGHT)),
    "boy": (_MALE, Trait("young", _YOUNG, weight=IMPLIED_WEIGHT)),
    **{w: _KID for w in ("kid", "child", "children", "toddler", "kids", "schoolchild", "schoolboy", "schoolgirl")},
    **{w: _TEEN for w in ("teenager", "teen", "teenage", "adolescent", "youth", "young", "youngster", "teens")},
    "student": Trait("young", _YOUNG, weight=IMPLIED_WEIGHT),
    "adult": Trait("adult", ("personalLess15",), negated=True),
    "middle aged": Trait("middle-aged", ("personalLess45", "personalLess60")),
    **{w: _OLD_TRAIT for w in ("old", "older")},
    **{w: _ELDERLY for w in ("elderly", "senior", "pensioner", "retiree")},
    "grandmother": (_FEMALE, _ELDERLY), "granny": (_FEMALE, _ELDERLY), "grandma": (_FEMALE, _ELDERLY),
    "grandfather": (_MALE, _ELDERLY), "grandpa": (_MALE, _ELDERLY),
    # style
    **{w: _FORMAL for w in ("formal", "formally", "smart", "business", "businessman", "businesswoman")},
    "casual": Trait("casual", ("upperBodyCasual", "lowerBodyCasual")),
}  # fmt: skip
# "businessman" is a formal man too.
LEXICON["businessman"] = (_FORMAL, _MALE)
LEXICON["businesswoman"] = (_FORMAL, _FEMALE)

# Words heard and understood, but that no attribute of the vocabulary measures: reported as such.
UNMEASURED = frozenset(
    "headphones headphone earphones earphones headset glasses spectacles umbrella gloves glove belt socks tie"
    " watch earrings jewellery jewelry beard moustache mustache tattoo bike bicycle phone mask".split()
)
NEGATIONS = frozenset("no not without never nor none isn't doesn't aren't wasn't don't didn't non".split())
MODIFIERS = frozenset({"short", "long"})
# Words that change nothing: shade modifiers (neither palette has shades), verbs of wearing and
# carrying, articles, pronouns, prepositions.
IGNORED_WORDS = frozenset(
    "dark light bright pale deep pastel faded a an the in with and or but wearing wears wear worn dressed who is"
    " are was has have having his her their its some of on plus that this person someone somebody people"
    " pedestrian individual coloured colored color colour colors colours carrying carries carried carry holding"
    " holds hold pulling pulls pull dragging drags wheeling pushing pushes push also both body at to for from by"
    " aged very quite pair one lot any anyone looks looking like kind sort mostly mainly all over".split()
)
_DECADES = {"teens": 10, "twenties": 20, "thirties": 30, "forties": 40, "fifties": 50, "sixties": 60,
            "seventies": 70, "eighties": 80, "nineties": 90}  # fmt: skip
# Where a colour still waiting for its garment stops waiting ("in red, with a backpack": red is the
# clothes, not the backpack). Not "and": "black and white shirt" is one garment.
PHRASE_BOUNDARIES = frozenset({",", ";", ".", "with", "without", "carrying", "holding", "pulling", "pushing",
                               "dragging", "wheeling", "who", "has", "having", "wearing"})
_AGE_CONTEXT_AFTER = frozenset({"year", "years", "yo", "yrs", "old"})
_AGE_CONTEXT_BEFORE = frozenset({"aged", "age", "about", "around", "roughly", "approximately", "maybe", "over",
                                 "under"})
_MAX_PHRASE = 3
