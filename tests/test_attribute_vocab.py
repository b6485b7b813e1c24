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


def test_avgmax_features_keep_each_attribute_in_its_region():
    """With band maxima beside the means, a lower-body colour still reads nothing from the torso's maxima."""
    import pytest
    import torch

    from tasks.attribute_model import STRIPES, AttributeNet, n_features

    mask = region_mask(ATTRIBUTE_NAMES, band_pool="avgmax")
    assert mask.shape == (len(ATTRIBUTE_NAMES), n_features("avgmax")) == (len(ATTRIBUTE_NAMES), FC_DIM + 2 * 4 * 128)
    for name in ("upperBodyRed", "lowerBodyRed", "hairLong", "footwearBlack", "carryingBackpack"):
        maxima = mask[ATTRIBUTE_NAMES.index(name), FC_DIM + STRIPES * TOP_CHANNELS :]  # the second set of bands
        assert [int(maxima[b * TOP_CHANNELS]) for b in range(STRIPES)] == _bands(mask, name)
    net = AttributeNet(len(ATTRIBUTE_NAMES), mask, band_pool="avgmax", shared="stem").eval()
    with torch.inference_mode():
        maps = net.trunk[: net.depth](torch.rand(2, 3, 256, 128))
        features = net.features(net.trunk[net.depth :](maps))
    assert features.shape == (2, n_features("avgmax"))
    split = FC_DIM + STRIPES * TOP_CHANNELS
    means, maxima = features[:, FC_DIM:split], features[:, split:]
    assert bool((maxima >= means - 1e-6).all()) and bool((maxima > means + 1e-6).any())  # really the band maxima
    with pytest.raises(ValueError, match="region mask"):  # a mask made for the other pooling is refused
        AttributeNet(len(ATTRIBUTE_NAMES), region_mask(ATTRIBUTE_NAMES), band_pool="avgmax")
