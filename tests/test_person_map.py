"""Person maps (which MOT ground-truth ids are one person): loading, checking, and their use in the
ReID protocol. MOT15 starts a new id when someone re-enters, so PETS09-S2L1's 19 ids are 10 people."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.evaluate_reid import build_reid_protocol, evaluate_reid
from tasks.evaluate_tracking import load_mot_txt
from tasks.person_map import apply_person_map, load_person_map

PETS_MAP = Path(__file__).resolve().parent.parent / "benchmarks" / "annotations" / "PETS09-S2L1.persons.csv"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "persons.csv"
    path.write_text(text)
    return path


def test_bundled_pets_map_is_consistent_with_the_ground_truth(pets_dir):
    persons = load_person_map(PETS_MAP)
    assert len(persons) == 19 and len(set(persons.values())) == 10
    gt = load_mot_txt(pets_dir / "gt" / "gt.txt")
    mapped = apply_person_map(gt, persons, source=str(PETS_MAP))
    assert mapped["id"].nunique() == 10 and len(mapped) == len(gt)
    # Re-entries: within one person, visits follow each other in time with a gap (nobody is in two places).
    spans = gt.groupby("id")["frame"].agg(["min", "max"])
    for person in mapped["id"].unique():
        ids = sorted({int(i) for i, p in persons.items() if p == person}, key=lambda i: spans.loc[i, "min"])
        for before, after in zip(ids, ids[1:], strict=False):
            assert spans.loc[before, "max"] < spans.loc[after, "min"]


def test_map_joining_ids_seen_together_is_refused(tmp_path):
    gt = pd.DataFrame({"frame": [1, 1, 2], "id": [9, 15, 9], "x": 0.0, "y": 0.0, "w": 1.0, "h": 1.0})
    persons = load_person_map(_write(tmp_path, "gt_id,person\n9,a\n15,a\n"))
    assert persons == {9: 1, 15: 1}
    with pytest.raises(ValueError, match=r"ids \[9, 15\].*share frame 1"):
        apply_person_map(gt, persons, source="persons.csv")
    with pytest.raises(ValueError, match=r"persons.csv.*\[15\] are not in the map"):
        apply_person_map(gt, {9: 1}, source="persons.csv")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gt_id,name\n1,a\n", "lacks column"),
        ("gt_id,person\n1.5,a\n", "not integers"),
        ("gt_id,person\nx,a\n", "not integers"),
        ("gt_id,person\n1,a\n1,b\n", r"gt_id \[1\] listed more than once"),
        ("# only a comment\ngt_id,person\n", "no rows"),
        ("gt_id,person\n1,a,b,c\n", "not a readable CSV"),
    ],
)
def test_bad_map_files_are_named_in_the_error(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=message) as info:
        load_person_map(path)
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match="does not exist"):
        load_person_map(tmp_path / "missing.csv")


def test_reid_protocol_scores_people_and_re_entry_ignores_the_own_visit(pets_dir):
    persons = load_person_map(PETS_MAP)
    video, gt = pets_dir / "vtest.avi", pets_dir / "gt" / "gt.txt"
    # 300 frames hold two re-entries: id 19 -> 1 and id 15 -> 14.
    first = build_reid_protocol(video, gt, 7.0, max_frames=300, persons=persons)
    raw = build_reid_protocol(video, gt, 7.0, max_frames=300)
    assert len(first.crops) == len(raw.crops)
    np.testing.assert_array_equal(first.tracks, raw.ids)
    assert set(first.ids.tolist()) == {persons[int(i)] for i in np.unique(raw.ids)}
    assert len(first.queries) < len(raw.queries)  # one query per person, not per GT id
    for members in first.gallery_tracklets:  # a gallery tracklet never spans two visits
        assert np.unique(first.tracks[members]).size == 1

    reentry = build_reid_protocol(video, gt, 7.0, max_frames=300, persons=persons, queries_by="re-entry")
    assert set(reentry.queries) == {19, 1, 15, 14}
    assert reentry.query_identity[19] == reentry.query_identity[1] == persons[1]
    one_hot = np.unique(reentry.tracks)
    by_visit = (reentry.tracks[:, None] == one_hot[None]).astype(np.float32)
    by_person = (reentry.ids[:, None] == np.unique(reentry.ids)[None]).astype(np.float32)
    # An embedding that only recognises the same visit finds nothing once that visit is ignored...
    visit_scores = evaluate_reid(reentry, None, "multi", features=by_visit)
    assert visit_scores.rank1 == 0.0 and visit_scores.queries_by == "re-entry"
    # ...while one that knows the person finds the other visit first.
    person_scores = evaluate_reid(reentry, None, "multi", features=by_person)
    assert person_scores.rank1 == 1.0 and person_scores.map == 1.0
    assert person_scores.identities == "persons (person map)"
    with pytest.raises(ValueError, match="needs a person map"):
        build_reid_protocol(video, gt, 7.0, max_frames=10, queries_by="re-entry")
