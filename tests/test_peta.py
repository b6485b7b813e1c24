"""PETA label parsing, loading errors and the person-disjoint split, on hand-written folders."""

import logging
from pathlib import Path

import numpy as np
import pytest

from tasks.attribute_vocab import ATTRIBUTE_INDEX
from tasks.peta import (
    CROSS_DOMAIN,
    REID_TEST_SUBSETS,
    PetaError,
    PetaRecord,
    load_peta,
    read_split,
    split_by_person,
    write_split,
)


def _subset(root, name, label_text, images):
    archive = root / name / "archive"
    archive.mkdir(parents=True)
    if label_text is not None:
        (archive / "Label.txt").write_text(label_text)
    for image in images:
        (archive / image).write_bytes(b"")  # loading does not decode; training does
    return archive


def test_label_id_matches_the_file_name_prefix_exactly(tmp_path):
    _subset(tmp_path, "S", "1 personalMale upperBodyBlack\n10 personalFemale hairLong\n",
            ["1_a.png", "1_b.png", "10_x.png", "Label.txt.bak"])
    data = load_peta(tmp_path)
    by_name = {r.path.name: r for r in data.records}
    assert sorted(by_name) == ["10_x.png", "1_a.png", "1_b.png"]
    assert by_name["1_a.png"].person == by_name["1_b.png"].person == "S/1"
    assert by_name["10_x.png"].person == "S/10"
    one, ten = by_name["1_a.png"].labels, by_name["10_x.png"].labels
    assert one[ATTRIBUTE_INDEX["personalMale"]] == 1 and one[ATTRIBUTE_INDEX["personalFemale"]] == 0
    assert ten[ATTRIBUTE_INDEX["personalFemale"]] == 1 and ten[ATTRIBUTE_INDEX["personalMale"]] == 0
    assert data.person_counts() == {"S": 2} and data.image_counts() == {"S": 3}


def test_town_centre_style_zero_id_and_unknown_labels_are_counted(tmp_path):
    _subset(tmp_path, "TownCentre", "0 hairShort accessoryFaceMask\n", ["0_16.jpg", "0_8.jpg"])
    data = load_peta(tmp_path)
    assert {r.person for r in data.records} == {"TownCentre/0"}
    assert data.unknown_labels == {"accessoryFaceMask": 1}


def test_id_without_images_is_warned_and_counted(tmp_path, caplog):
    _subset(tmp_path, "S", "1 personalMale\n3 carryingBackpack\n", ["1_a.png"])
    with caplog.at_level(logging.WARNING, logger="smarttrace.peta"):
        data = load_peta(tmp_path)
    assert data.ids_without_images == {"S": ["3"]}
    assert "Label.txt" in caplog.text and "no image" in caplog.text


def test_subset_without_label_file_names_the_file(tmp_path):
    archive = _subset(tmp_path, "MIT", None, ["00001_male_back.jpg"])
    with pytest.raises(PetaError, match=str(archive / "Label.txt")):
        load_peta(tmp_path)


def test_missing_peta_folder_and_missing_subset_are_clear_errors(tmp_path):
    with pytest.raises(PetaError, match=f"{tmp_path / 'nope'}: PETA folder not found"):
        load_peta(tmp_path / "nope")
    _subset(tmp_path, "S", "1 personalMale\n", ["1_a.png"])
    with pytest.raises(PetaError, match="subset 'VIPeR' not found"):
        load_peta(tmp_path, ["S", "VIPeR"])


def _records(subset, people, images_each=3):
    labels = np.zeros(85, np.uint8)
    return [PetaRecord(Path(f"/peta/{subset}/archive/{p}_{i}.png"), subset, f"{subset}/{p}", labels)
            for p in range(people) for i in range(images_each)]


def test_split_is_person_disjoint_deterministic_and_per_subset():
    records = _records("3DPeS", 50) + _records("MIT", 30, 1) + _records("VIPeR", 10, 2)
    split = split_by_person(records, seed=7)
    assert split == split_by_person(list(reversed(records)), seed=7)
    assert split != split_by_person(records, seed=8)
    assert len(split) == 90  # one side per person: no person on two sides
    sides = {}
    for record in records:
        sides.setdefault(record.person, set()).add(split[record.person])
    assert all(len(s) == 1 for s in sides.values())
    threedpes = [split[f"3DPeS/{p}"] for p in range(50)]
    assert (threedpes.count("train"), threedpes.count("val"), threedpes.count("test")) == (35, 5, 10)
    viper = [split[f"VIPeR/{p}"] for p in range(10)]
    assert (viper.count("train"), viper.count("val"), viper.count("test")) == (7, 1, 2)
    # Adding a subset leaves the others' sides as they were: earlier test people stay comparable.
    without_viper = split_by_person(records[:-20], seed=7)
    assert without_viper == {k: v for k, v in split.items() if not k.startswith("VIPeR/")}


def test_split_can_hold_a_subset_out_as_cross_domain():
    records = _records("MIT", 30, 1) + _records("VIPeR", 10, 2)
    split = split_by_person(records, seed=7, cross_domain=REID_TEST_SUBSETS)
    assert {split[f"VIPeR/{p}"] for p in range(10)} == {CROSS_DOMAIN}
    assert {k: v for k, v in split.items() if k.startswith("MIT/")} == {
        k: v for k, v in split_by_person(records, seed=7).items() if k.startswith("MIT/")
    }


def test_split_file_round_trips(tmp_path):
    split = split_by_person(_records("MIT", 20, 1), seed=0)
    path = write_split(tmp_path / "m.split.json", split, 0, (0.7, 0.1, 0.2))
    assert read_split(path) == split
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(PetaError, match="bad.json: not a PETA split file"):
        read_split(tmp_path / "bad.json")
