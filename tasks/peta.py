"""PETA (Deng, Luo, Loy, Tang, ACM MM 2014) as labelled records, and a person-disjoint split.

Layout as published: `<root>/<subset>/archive/<image>` plus `<root>/<subset>/archive/Label.txt`,
one line per person `ID attr attr ...`. A line applies to every image whose file name, up to
the first `_`, equals ID exactly (`1` labels `1_x.png`, never `10_x.png`): labels are per person,
which is why every split here is by person (a person's images never on two sides).

Data rule: VIPeR, PRID and GRID (`REID_TEST_SUBSETS`) are the cross-camera ReID evaluation sets
SmartTrace reports figures on. The attribute model feeds none of those figures (cross-camera matching
reads appearance vectors only; `tests/test_match_identities.py` holds it to that), so by default it
is trained on the train people of all seven subsets (`DEFAULT_SUBSETS`), person-disjoint like the
rest: test mA 0.686 vs 0.661, F1 0.707 vs 0.690 on the same 3DPeS / MIT / TownCentre / i-LID
test people (`tasks/train_attributes.py`). A model that may be fused into a ReID figure must be trained on
`REID_CLEAN_SUBSETS` only (`--subsets 3DPeS MIT TownCentre i-LID`); its manifest then lists no
`reid_test_sets_seen`, and VIPeR, PRID and GRID stay an untouched cross-domain test set for it.

Licence: PETA is for research use only, no commercial use; cite Deng et al. ACM MM 2014. A model
trained on it carries the same terms (`PETA_LICENCE`).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smarttrace.errors import SmartTraceError
from tasks.attribute_vocab import ATTRIBUTE_INDEX, ATTRIBUTE_NAMES

log = logging.getLogger("smarttrace.peta")

REID_CLEAN_SUBSETS = ("3DPeS", "MIT", "TownCentre", "i-LID")
REID_TEST_SUBSETS = ("VIPeR", "PRID", "GRID")  # the cross-camera ReID test sets (benchmarks/crosscamera.py)
DEFAULT_SUBSETS = REID_CLEAN_SUBSETS + REID_TEST_SUBSETS
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp"})
LABEL_FILE = "Label.txt"
SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.1, 0.2)  # of each subset's people: train / val / test
CROSS_DOMAIN = "cross_domain"  # split name of every person of a `cross_domain` subset (never trained on)
PETA_LICENCE = (
    "PETA: research use only, no commercial use; cite Deng, Luo, Loy, Tang, 'Pedestrian attribute recognition "
    "at far distance', ACM MM 2014. A model trained on it carries the same terms."
)


class PetaError(SmartTraceError):
    """The PETA folder, a subset or a label file is missing or malformed."""


@dataclass(frozen=True)
class PetaRecord:
    """One labelled image: `person` = f"{subset}/{ID}" is the unit of every split."""

    path: Path
    subset: str
    person: str
    labels: np.ndarray  # (len(ATTRIBUTE_NAMES),) uint8, 1 = the person has the attribute


@dataclass
class PetaData:
    """Records of the loaded subsets plus what did not load, for the training manifest."""

    root: Path
    subsets: tuple[str, ...]
    records: list[PetaRecord]
    ids_without_images: dict[str, list[str]] = field(default_factory=dict)  # subset -> IDs
    unknown_labels: Counter = field(default_factory=Counter)  # PETA labels outside ATTRIBUTE_NAMES

    def labels(self) -> np.ndarray:
        """(n, len(ATTRIBUTE_NAMES)) uint8 label matrix in record order."""
        if not self.records:
            return np.zeros((0, len(ATTRIBUTE_NAMES)), np.uint8)
        return np.stack([r.labels for r in self.records])

    def image_counts(self) -> dict[str, int]:
        return dict(Counter(r.subset for r in self.records))

    def person_counts(self) -> dict[str, int]:
        return dict(Counter(r.subset for r in {r.person: r for r in self.records}.values()))


def parse_label_file(path: Path) -> dict[str, list[str]]:
    """`ID attr attr ...` lines -> {ID: [attr, ...]}; a repeated ID merges its labels (warned)."""
    if not path.is_file():
        raise PetaError(f"{path}: label file missing (every PETA subset has <subset>/archive/{LABEL_FILE})")
    labels: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        person_id, names = fields[0], fields[1:]
        if "_" in person_id or "/" in person_id:
            raise PetaError(f"{path}:{number}: '{person_id}' is not a PETA person ID (expected digits)")
        if person_id in labels:
            log.warning("%s:%d: ID %s listed twice; merging its labels", path, number, person_id)
            labels[person_id] = sorted(set(labels[person_id]) | set(names))
        else:
            labels[person_id] = names
    return labels


def label_vector(names: Iterable[str], unknown: Counter | None = None) -> np.ndarray:
    """0/1 vector over ATTRIBUTE_NAMES; names outside the vocabulary are counted in `unknown`."""
    vector = np.zeros(len(ATTRIBUTE_NAMES), np.uint8)
    for name in names:
        index = ATTRIBUTE_INDEX.get(name)
        if index is None:
            if unknown is not None:
                unknown[name] += 1
        else:
            vector[index] = 1
    return vector


def person_id_of(filename: str) -> str:
    """The PETA person ID of an image file: its name up to the first `_` (`0_16.jpg` -> `0`)."""
    return Path(filename).name.split("_", 1)[0]


def available_subsets(root: Path) -> tuple[str, ...]:
    """Subset folders under a PETA root (any folder with an `archive/` inside), sorted."""
    return tuple(sorted(p.name for p in root.iterdir() if (p / "archive").is_dir()))


def load_subset(root: Path, subset: str, unknown: Counter | None = None) -> tuple[list[PetaRecord], list[str]]:
    """Records of one subset and the IDs of its label file that match no image."""
    archive = root / subset / "archive"
    if not archive.is_dir():
        raise PetaError(f"{archive}: PETA subset '{subset}' not found (expected {root}/<subset>/archive/; "
                        "--subsets names the ones to train on)")
    labels = parse_label_file(archive / LABEL_FILE)
    vectors = {person_id: label_vector(names, unknown) for person_id, names in labels.items()}
    records: list[PetaRecord] = []
    unlabelled = 0
    matched: set[str] = set()
    for name in sorted(os.listdir(archive)):
        if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        person_id = person_id_of(name)
        if person_id not in vectors:
            unlabelled += 1
            continue
        matched.add(person_id)
        records.append(PetaRecord(archive / name, subset, f"{subset}/{person_id}", vectors[person_id]))
    without_images = sorted(set(vectors) - matched)
    if without_images:
        log.warning(
            "%s: %d ID(s) have no image (%s%s)", archive / LABEL_FILE, len(without_images),
            ", ".join(without_images[:8]), ", ..." if len(without_images) > 8 else "",
        )  # fmt: skip
    if unlabelled:
        log.warning("%s: %d image(s) match no ID of %s; skipped", archive, unlabelled, LABEL_FILE)
    if not records:
        raise PetaError(f"{archive}: no image matches an ID of {archive / LABEL_FILE}")
    return records, without_images


def load_peta(root: str | os.PathLike[str], subsets: Sequence[str] | None = None) -> PetaData:
    """Load the named subsets (default: every subset folder present) into labelled records."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise PetaError(f"{root}: PETA folder not found (expected <PETA>/<subset>/archive/{LABEL_FILE})")
    names = tuple(subsets) if subsets else available_subsets(root)
    if not names:
        raise PetaError(f"{root}: no PETA subset folders (<subset>/archive/) inside")
    data = PetaData(root, names, [])
    for subset in names:
        records, without_images = load_subset(root, subset, data.unknown_labels)
        data.records.extend(records)
        if without_images:
            data.ids_without_images[subset] = without_images
    return data


def reid_test_sets_seen(subsets: Iterable[str]) -> list[str]:
    """The cross-camera ReID test sets among `subsets`, in `REID_TEST_SUBSETS` order: a model trained on
    any of them must never feed a ReID figure on them (the data rule above)."""
    trained = set(subsets)
    return [s for s in REID_TEST_SUBSETS if s in trained]


def split_by_person(
    records: Sequence[PetaRecord],
    seed: int,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    cross_domain: Sequence[str] = (),
) -> dict[str, str]:
    """Person -> "train" / "val" / "test" (or CROSS_DOMAIN for `cross_domain` subsets).

    Split within each subset, so every subset is represented on every side in its proportion;
    people are sorted before the seeded shuffle, so the same data and seed give the same split
    on any machine and in any file-listing order. A subset's sides depend only on its own people and
    the seed: adding subsets leaves the others' test people as they were (figures stay comparable).
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"split fractions {fractions} must be three non-negative numbers summing to 1")
    people_by_subset: dict[str, set[str]] = {}
    for record in records:
        people_by_subset.setdefault(record.subset, set()).add(record.person)
    assignment: dict[str, str] = {}
    for subset in sorted(people_by_subset):
        people = sorted(people_by_subset[subset])
        if subset in cross_domain:
            assignment.update(dict.fromkeys(people, CROSS_DOMAIN))
            continue
        rng = np.random.default_rng([seed, sum(subset.encode())])
        order = [people[i] for i in rng.permutation(len(people))]
        n_train = int(round(fractions[0] * len(order)))
        n_val = int(round(fractions[1] * len(order)))
        for i, person in enumerate(order):
            assignment[person] = "train" if i < n_train else "val" if i < n_train + n_val else "test"
    return assignment


def write_split(path: Path, assignment: dict[str, str], seed: int, fractions: Sequence[float]) -> Path:
    """The split as JSON: {seed, fractions, people: {split: [person, ...]}}, published by rename."""
    people: dict[str, list[str]] = {}
    for person, side in sorted(assignment.items()):
        people.setdefault(side, []).append(person)
    document = {"seed": seed, "fractions": list(fractions), "unit": "person (subset/ID)", "people": people}
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(document, indent=1) + "\n")
    os.replace(part, path)
    return path


def read_split(path: Path) -> dict[str, str]:
    """Person -> split side, from a file written by `write_split`."""
    try:
        document = json.loads(Path(path).read_text())
        return {person: side for side, people in document["people"].items() for person in people}
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise PetaError(f"{path}: not a PETA split file ({exc})") from exc
