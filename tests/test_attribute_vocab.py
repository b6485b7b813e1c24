"""The attribute vocabulary and the region mask that binds colours to body regions."""

from tasks.attribute_model import FC_DIM, TOP_CHANNELS, region_mask
from tasks.attribute_vocab import ATTRIBUTE_INDEX, ATTRIBUTE_NAMES, PETA35


def test_names_are_unique_and_peta35_is_a_subset():
    assert len(set(ATTRIBUTE_NAMES)) == len(ATTRIBUTE_NAMES)
    assert len(set(PETA35)) == len(PETA35) == 35
    assert set(PETA35) <= set(ATTRIBUTE_NAMES)
    assert all(ATTRIBUTE_NAMES[i] == name for name, i in ATTRIBUTE_INDEX.items())


def _bands(mask, name):
    row = mask[ATTRIBUTE_NAMES.index(name)]
    return [int(row[FC_DIM + b * TOP_CHANNELS]) for b in range(4)]


def test_region_mask_reads_upper_colours_from_the_torso_and_lower_colours_from_the_legs():
    mask = region_mask(ATTRIBUTE_NAMES)
    assert _bands(mask, "upperBodyRed") == [1, 1, 1, 0]
    assert _bands(mask, "lowerBodyRed") == [0, 0, 1, 1]
    assert _bands(mask, "hairLong") == [1, 0, 0, 0]
    assert _bands(mask, "footwearBlack") == [0, 0, 0, 1]
    assert _bands(mask, "personalMale") == [1, 1, 1, 1]
    assert bool(mask[:, :FC_DIM].all())  # the global feature is always read
