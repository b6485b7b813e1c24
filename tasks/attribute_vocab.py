"""The pedestrian attribute vocabulary, defined once: what the attribute model predicts.

Names are PETA's own (Deng et al., ACM MM 2014, `PETA/ReadMe.txt`), so a label file maps onto
the model's outputs without a translation table. The model predicts one independent probability
per name (multi-label): PETA labels colours per region as a set ("upperBodyBlack upperBodyWhite"),
so colours are multi-label too.

Kept: every binary attribute PETA labels on at least ~30 people across its subsets (rarer ones
cannot be learned or measured), plus the colours of the upper body, lower body, hair and
footwear that are labelled often enough to learn. `PETA35` is the standard 35-attribute subset
that published PETA figures (mA ~0.83-0.86 for ResNet-50) are reported on.
"""

from __future__ import annotations

PETA_COLOURS = ("Black", "Blue", "Brown", "Green", "Grey", "Orange", "Pink", "Purple", "Red", "White", "Yellow")

BINARY_ATTRIBUTES = (
    # person
    "personalMale", "personalFemale",
    "personalLess15", "personalLess30", "personalLess45", "personalLess60", "personalLarger60",
    # hair
    "hairLong", "hairShort", "hairBald",
    # upper body
    "upperBodyCasual", "upperBodyFormal", "upperBodyJacket", "upperBodyLogo", "upperBodyPlaid",
    "upperBodyShortSleeve", "upperBodyLongSleeve", "upperBodyNoSleeve", "upperBodyThinStripes",
    "upperBodyThickStripes", "upperBodyTshirt", "upperBodyOther", "upperBodyVNeck", "upperBodySuit",
    "upperBodySweater",
    # lower body
    "lowerBodyCasual", "lowerBodyFormal", "lowerBodyJeans", "lowerBodyShorts", "lowerBodyShortSkirt",
    "lowerBodyLongSkirt", "lowerBodyTrousers", "lowerBodyCapri", "lowerBodySuits", "lowerBodyHotPants",
    # footwear
    "footwearLeatherShoes", "footwearSandals", "footwearShoes", "footwearSneakers", "footwearBoots",
    "footwearStocking",
    # carried things
    "carryingBackpack", "carryingMessengerBag", "carryingNothing", "carryingOther", "carryingPlasticBags",
    "carryingSuitcase", "carryingLuggageCase", "carryingFolder", "carryingBabyBuggy",
    # accessories
    "accessoryHat", "accessoryMuffler", "accessoryNothing", "accessorySunglasses", "accessoryHairBand",
)

# Region colours labelled on enough people to learn (PETA, all 7 subsets here, per-person counts).
COLOUR_ATTRIBUTES = (
    tuple(f"upperBody{c}" for c in PETA_COLOURS)
    + tuple(f"lowerBody{c}" for c in ("Black", "Blue", "Brown", "Green", "Grey", "Pink", "Purple", "Red", "White",
                                       "Yellow"))
    + tuple(f"hair{c}" for c in ("Black", "Brown", "Grey", "White", "Yellow"))
    + tuple(f"footwear{c}" for c in ("Black", "Brown", "Grey", "White"))
)

ATTRIBUTE_NAMES: tuple[str, ...] = BINARY_ATTRIBUTES + COLOUR_ATTRIBUTES
ATTRIBUTE_INDEX = {name: i for i, name in enumerate(ATTRIBUTE_NAMES)}

# The standard PETA evaluation subset (Deng et al. 2014; DeepMAR, Li et al. 2015). PETA's ReadMe
# spells the sneaker label "footwearSneaker"; the label files say "footwearSneakers".
PETA35 = (
    "accessoryHat", "accessoryMuffler", "accessoryNothing", "accessorySunglasses", "carryingBackpack",
    "carryingMessengerBag", "carryingNothing", "carryingOther", "carryingPlasticBags", "footwearLeatherShoes",
    "footwearSandals", "footwearShoes", "footwearSneakers", "hairLong", "lowerBodyCasual", "lowerBodyFormal",
    "lowerBodyJeans", "lowerBodyShortSkirt", "lowerBodyShorts", "lowerBodyTrousers", "personalLess30",
    "personalLess45", "personalLess60", "personalLarger60", "personalMale", "upperBodyCasual", "upperBodyFormal",
    "upperBodyJacket", "upperBodyLogo", "upperBodyPlaid", "upperBodyShortSleeve", "upperBodyThinStripes",
    "upperBodyTshirt", "upperBodyOther", "upperBodyVNeck",
)
