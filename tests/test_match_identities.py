"""Identity matching: the constrained clustering, in-camera matching and cross-camera matching.

Hand-made tables carry only the columns the matchers read (see storage/schemas.py TRACKLETS_SCHEMA):
- in-camera: start_time_s, end_time_s, mean_box_height, foot_path (x0, y0, x1, y1, ... pixels), reid_embedding;
- cross-camera: camera_id, person_id, num_crops, reid_embedding, start_timestamp, end_timestamp.
Embeddings are unit vectors built from angles, so every cosine is known exactly and each threshold test sits
0.01 on one side of the bar. Partitions are compared rather than id values, except for
constrained_average_linkage, whose numbering (order of first member) is documented.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from smarttrace.config import MatchConfig
from tasks.attribute_vocab import ATTRIBUTE_NAMES
from tasks.clustering import consistency_pass, constrained_average_linkage
from tasks.match_identities import (
    _persons,
    _position_gate,
    _transit_allowed,
    cross_camera_column,
    match_cross_camera,
    match_in_camera,
)

DIM = 512  # OSNet embedding size
T0 = pd.Timestamp("2024-05-01 12:00:00", tz="UTC")
MARGIN = 0.01  # cosine distance from a threshold in the threshold tests


# ---------------------------------------------------------------------------------------------------------------------
# helpers


def _look(cosine: float = 1.0, base: int = 0, toward: int = 1) -> np.ndarray:
    """Unit vector whose cosine with axis `base` is exactly `cosine` (turned toward axis `toward`)."""
    vector = np.zeros(DIM, np.float32)
    vector[base] = cosine
    vector[toward] = math.sqrt(max(0.0, 1.0 - cosine * cosine))
    return vector


def _at(degrees: float, base: int = 0, toward: int = 1) -> np.ndarray:
    """Unit vector at `degrees` from axis `base` in the (base, toward) plane; cos(a - b) between two such."""
    vector = np.zeros(DIM, np.float32)
    vector[base] = math.cos(math.radians(degrees))
    vector[toward] = math.sin(math.radians(degrees))
    return vector


def _tracklet(
    start: float,
    end: float,
    look: np.ndarray | None,
    first_foot: tuple[float, float] = (600.0, 700.0),
    last_foot: tuple[float, float] | None = None,
    height: float = 100.0,
) -> dict:
    """One tracklets-table row for in-camera matching; the foot path walks straight from first to last."""
    last_foot = first_foot if last_foot is None else last_foot
    path = np.linspace(first_foot, last_foot, 5).astype(np.float32).reshape(-1)
    return {
        "start_time_s": float(start),
        "end_time_s": float(end),
        "mean_box_height": np.float32(height),
        "foot_path": path,
        "reid_embedding": look,
    }


def _seen(camera: str, person: int, look: np.ndarray | None, start: float, end: float, num_crops: int = 8) -> dict:
    """One tracklets-joined-with-persons row for cross-camera matching; times in seconds after T0."""
    return {
        "camera_id": camera,
        "person_id": np.int32(person),
        "num_crops": np.int32(0 if look is None else num_crops),
        "reid_embedding": look,
        "start_timestamp": T0 + pd.Timedelta(seconds=start),
        "end_timestamp": T0 + pd.Timedelta(seconds=end),
    }


def _table(*rows: dict, index: list[int] | None = None) -> pd.DataFrame:
    return pd.DataFrame(list(rows), index=index)


def _partition(ids) -> set[frozenset[int]]:
    """Groups of row positions that share an id."""
    groups: dict[int, set[int]] = {}
    for row, value in enumerate(np.asarray(ids)):
        groups.setdefault(int(value), set()).add(row)
    return {frozenset(group) for group in groups.values()}


def _parts(*groups: tuple[int, ...]) -> set[frozenset[int]]:
    return {frozenset(group) for group in groups}


def _similarity(pairs: dict[tuple[int, int], float], n: int) -> np.ndarray:
    matrix = np.eye(n)
    for (i, j), value in pairs.items():
        matrix[i, j] = matrix[j, i] = value
    return matrix


def _no_constraints(n: int) -> np.ndarray:
    return np.zeros((n, n), bool)


def test_helpers_build_exact_cosines():
    assert float(_look(0.81) @ _look(1.0)) == pytest.approx(0.81, abs=1e-6)
    assert float(_at(30) @ _at(-25)) == pytest.approx(math.cos(math.radians(55)), abs=1e-6)
    assert float(_look(1.0, base=3) @ _look(1.0, base=4)) == 0.0
    assert np.linalg.norm(_look(0.3)) == pytest.approx(1.0, abs=1e-6)


# ---------------------------------------------------------------------------------------------------------------------
# tasks/clustering.py: constrained_average_linkage


def test_linkage_uses_average_not_single_or_complete_linkage():
    # After {0, 1} merge, the cluster's link to 2 is single 0.7, complete 0.5, average 0.6.
    similarity = _similarity({(0, 1): 0.9, (0, 2): 0.7, (1, 2): 0.5, (0, 3): 0.1, (1, 3): 0.2, (2, 3): 0.3}, 4)
    cannot = _no_constraints(4)
    # Complete linkage would stop at 0.55 (0.5 < 0.55); average merges 2 in.
    assert constrained_average_linkage(similarity, cannot, 0.55).tolist() == [0, 0, 0, 1]
    # Single linkage would merge at 0.65 (0.7 >= 0.65); average does not.
    assert constrained_average_linkage(similarity, cannot, 0.65).tolist() == [0, 0, 1, 2]


def test_linkage_merges_the_most_similar_pair_first():
    # Merging (0, 1) first (index order) would then merge 2 in at (0.1 + 0.95) / 2 = 0.525 < 0.7: [0, 0, 1].
    similarity = _similarity({(0, 1): 0.8, (1, 2): 0.95, (0, 2): 0.1}, 3)
    assert constrained_average_linkage(similarity, _no_constraints(3), 0.7).tolist() == [0, 1, 1]


def test_linkage_threshold_is_inclusive():
    similarity = _similarity({(0, 1): 0.75}, 2)  # 0.75 and 0.5 are exact in binary
    assert constrained_average_linkage(similarity, _no_constraints(2), 0.75).tolist() == [0, 0]
    assert constrained_average_linkage(similarity, _no_constraints(2), 0.75 + 1e-9).tolist() == [0, 1]
    assert constrained_average_linkage(_similarity({(0, 1): 0.5}, 2), _no_constraints(2), 0.75).tolist() == [0, 1]


def test_linkage_labels_follow_order_of_first_member():
    similarity = _similarity({(0, 3): 0.9, (1, 2): 0.9}, 4)
    assert constrained_average_linkage(similarity, _no_constraints(4), 0.5).tolist() == [0, 1, 1, 0]


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        # (0, 1) merges first; 2 would join on 0.9 average but 0 and 2 cannot link.
        ({(0, 1): 0.95, (1, 2): 0.9, (0, 2): 0.9}, [0, 0, 1]),
        # (1, 2) merges first; 0 would join on 0.9 average but 0 and 2 cannot link.
        ({(0, 1): 0.9, (1, 2): 0.95, (0, 2): 0.9}, [0, 1, 1]),
    ],
)
def test_linkage_cannot_link_holds_over_all_members_of_a_cluster(pairs, expected):
    similarity = _similarity(pairs, 3)
    assert constrained_average_linkage(similarity, _no_constraints(3), 0.5).tolist() == [0, 0, 0]
    cannot = _no_constraints(3)
    cannot[0, 2] = cannot[2, 0] = True
    assert constrained_average_linkage(similarity, cannot, 0.5).tolist() == expected


def test_linkage_pair_outside_can_link_is_never_merged():
    similarity = _similarity({(0, 1): 0.99}, 2)
    can_link = np.eye(2, dtype=bool)
    assert constrained_average_linkage(similarity, _no_constraints(2), -1.0, can_link=can_link).tolist() == [0, 1]


def test_linkage_pairs_outside_can_link_give_no_evidence_to_the_average():
    # {0, 1} vs 2: only (0, 2) = 0.9 counts. Counting (1, 2) = -0.5 would give 0.2; treating it as a cannot-link
    # would forbid the merge. Documented: "pairs outside it contribute no evidence (NaN similarity)".
    similarity = _similarity({(0, 1): 0.95, (0, 2): 0.9, (1, 2): -0.5}, 3)
    can_link = np.ones((3, 3), bool)
    can_link[1, 2] = can_link[2, 1] = False
    assert constrained_average_linkage(similarity, _no_constraints(3), 0.8, can_link=can_link).tolist() == [0, 0, 0]
    assert constrained_average_linkage(similarity, _no_constraints(3), 0.8).tolist() == [0, 0, 1]


def test_linkage_trivial_sizes():
    assert constrained_average_linkage(np.zeros((0, 0)), np.zeros((0, 0), bool), 0.5).tolist() == []
    assert constrained_average_linkage(np.ones((1, 1)), np.zeros((1, 1), bool), 0.5).tolist() == [0]


# ---------------------------------------------------------------------------------------------------------------------
# tasks/clustering.py: consistency_pass


def _coherent_and_outlier() -> tuple[np.ndarray, np.ndarray]:
    """Cluster 0: three looks within 5 degrees of axis 0 and one at 80 degrees; cluster 1: three near axis 3."""
    embeddings = np.stack(
        [_at(0), _at(5), _at(-5), _at(80, toward=2), _at(0, base=3, toward=4), _at(4, 3, 4), _at(-4, 3, 4)]
    )
    return embeddings, np.array([0, 0, 0, 0, 1, 1, 1])


def test_consistency_pass_splits_off_a_member_far_from_its_cluster_mean():
    embeddings, labels = _coherent_and_outlier()
    result = consistency_pass(embeddings, labels, 0.6)
    assert result[3] not in labels  # a new label of its own
    assert np.delete(result, 3).tolist() == np.delete(labels, 3).tolist()  # everyone else untouched
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1]  # the input is not modified


def test_consistency_pass_leaves_coherent_clusters_untouched():
    embeddings, labels = _coherent_and_outlier()
    keep = [0, 1, 2, 4, 5, 6]
    assert consistency_pass(embeddings[keep], labels[keep], 0.6).tolist() == labels[keep].tolist()


def test_consistency_pass_gives_each_split_member_its_own_label():
    embeddings = np.stack([_at(0), _at(5), _at(-5), _look(1.0, base=5), _look(1.0, base=6), _look(1.0, base=7)])
    labels = np.array([0, 0, 0, 0, 0, 1])  # members 3 and 4 are orthogonal to the rest and to each other
    result = consistency_pass(embeddings, labels, 0.6)
    assert _partition(result) == _parts((0, 1, 2), (3,), (4,), (5,))
    assert result[5] == 1


@pytest.mark.parametrize(("cosine", "split"), [(0.6 + MARGIN, False), (0.6 - MARGIN, True)])
def test_consistency_pass_threshold_is_similarity_to_the_mean_of_the_others(cosine, split):
    # The others are two copies of one look, so the member's similarity to their mean is exactly `cosine`.
    embeddings = np.stack([_look(1.0), _look(1.0), _look(cosine)])
    result = consistency_pass(embeddings, np.array([0, 0, 0]), 0.6)
    assert _partition(result) == (_parts((0, 1), (2,)) if split else _parts((0, 1, 2)))


# ---------------------------------------------------------------------------------------------------------------------
# tasks/match_identities.py: match_in_camera


@pytest.mark.parametrize(("start", "end"), [(5.0, 15.0), (2.0, 8.0), (10.0, 20.0)])  # overlap, inside, same frame
def test_in_camera_overlapping_tracklets_are_never_joined_even_if_identical(start, end):
    table = _table(_tracklet(0, 10, _look()), _tracklet(start, end, _look()))
    assert _partition(match_in_camera(table, MatchConfig())) == _parts((0,), (1,))


@pytest.mark.parametrize("threshold", [MatchConfig().in_camera_min_similarity, 0.6])
@pytest.mark.parametrize(("offset", "joined"), [(MARGIN, True), (-MARGIN, False)])
def test_in_camera_similarity_threshold(threshold, offset, joined):
    # 10 s gap (beyond the 5 s position gate), same spot: only the look decides.
    table = _table(_tracklet(0, 10, _look()), _tracklet(20, 30, _look(threshold + offset)))
    ids = match_in_camera(table, MatchConfig(in_camera_min_similarity=threshold))
    assert _partition(ids) == (_parts((0, 1)) if joined else _parts((0,), (1,)))


@pytest.mark.parametrize("max_gap", [MatchConfig().in_camera_max_gap_s, 20.0])
@pytest.mark.parametrize(("offset", "joined"), [(-1.0, True), (1.0, False)])
def test_in_camera_max_gap(max_gap, offset, joined):
    table = _table(_tracklet(0, 10, _look()), _tracklet(10 + max_gap + offset, 100 + max_gap, _look()))
    ids = match_in_camera(table, MatchConfig(in_camera_max_gap_s=max_gap))
    assert _partition(ids) == (_parts((0, 1)) if joined else _parts((0,), (1,)))


def test_in_camera_overlap_is_not_bridged_by_a_third_tracklet():
    # 0 and 1 are seen at once; 2 looks like both and is free to join either, but not both.
    table = _table(_tracklet(0, 10, _look()), _tracklet(5, 15, _look()), _tracklet(30, 40, _look()))
    ids = match_in_camera(table, MatchConfig())
    assert ids[0] != ids[1]
    assert len(set(ids.tolist())) == 2


def test_in_camera_long_gap_is_not_bridged_by_a_tracklet_in_between():
    # 0 -> 2 is a 90 s gap (> 60 s); 1 sits 30 s and 50 s from them and may join only one.
    table = _table(_tracklet(0, 10, _look()), _tracklet(40, 50, _look()), _tracklet(100, 110, _look()))
    ids = match_in_camera(table, MatchConfig())
    assert ids[0] != ids[2]
    assert len(set(ids.tolist())) == 2


# Position gate: 2 s gap, box height 100 px, 1.5 heights/s -> reach (1.5 * 2 + 0.5) * 100 = 350 px.
@pytest.mark.parametrize(("distance", "joined"), [(0.0, True), (200.0, True), (330.0, True), (370.0, False),
                                                  (600.0, False)])
def test_in_camera_position_gate_for_short_gaps(distance, joined):
    table = _table(
        _tracklet(0, 10, _look(), first_foot=(200.0, 700.0), last_foot=(400.0, 700.0)),
        _tracklet(12, 20, _look(), first_foot=(400.0 + distance, 700.0), last_foot=(1200.0, 700.0)),
    )
    assert _partition(match_in_camera(table, MatchConfig())) == (_parts((0, 1)) if joined else _parts((0,), (1,)))


def test_in_camera_position_gate_does_not_apply_beyond_its_gap():
    # 8 s gap (> 5 s gate): 1600 px is more than the 1250 px walkable, but the gate is off for such gaps.
    table = _table(
        _tracklet(0, 10, _look(), first_foot=(100.0, 700.0), last_foot=(200.0, 700.0)),
        _tracklet(18, 30, _look(), first_foot=(1800.0, 700.0)),
    )
    assert _partition(match_in_camera(table, MatchConfig())) == _parts((0, 1))
    assert _partition(match_in_camera(table, MatchConfig(in_camera_position_gate_s=10.0))) == _parts((0,), (1,))


@pytest.mark.parametrize("earlier_first", [True, False])
@pytest.mark.parametrize(("later_starts_at", "joined"), [(1100.0, True), (150.0, False)])
def test_in_camera_position_gate_measures_from_the_earlier_end_to_the_later_start(
    earlier_first, later_starts_at, joined
):
    # The earlier tracklet walks 100 -> 1000 px; the later one starts 2 s on. 1100 px is 100 px from where it
    # left off (walkable); 150 px is near where it started, 850 px from its end (not walkable in 2 s).
    earlier = _tracklet(0, 10, _look(), first_foot=(100.0, 700.0), last_foot=(1000.0, 700.0))
    later = _tracklet(12, 20, _look(), first_foot=(later_starts_at, 700.0), last_foot=(later_starts_at, 700.0))
    table = _table(earlier, later) if earlier_first else _table(later, earlier)
    assert _partition(match_in_camera(table, MatchConfig())) == (_parts((0, 1)) if joined else _parts((0,), (1,)))


def test_position_gate_helper_is_symmetric_and_only_for_short_positive_gaps():
    table = _table(
        _tracklet(0, 10, _look(), first_foot=(200.0, 700.0), last_foot=(400.0, 700.0)),
        _tracklet(12, 20, _look(), first_foot=(1000.0, 700.0)),  # 600 px in 2 s: too far
        _tracklet(11, 20, _look(), first_foot=(450.0, 700.0)),  # 50 px in 1 s: fine
    )
    start, end = table["start_time_s"].to_numpy(), table["end_time_s"].to_numpy()
    gap = np.maximum(start[None, :] - end[:, None], start[:, None] - end[None, :])
    gate = _position_gate(table, gap, MatchConfig())
    assert gate.dtype == bool and gate.shape == (3, 3)
    assert gate.tolist() == [[False, True, False], [True, False, False], [False, False, False]]


def test_in_camera_rows_without_embedding_stay_alone():
    # With a bar of -1 every non-overlapping pair with a look would join; the two rows with no crops (null
    # reid_embedding) have no appearance evidence and must stay separate persons.
    table = _table(
        _tracklet(0, 10, _look()),
        _tracklet(20, 30, None),
        _tracklet(40, 50, _look(0.3)),
        _tracklet(60, 70, None),
    )
    ids = match_in_camera(table, MatchConfig(in_camera_min_similarity=-1.0))
    assert _partition(ids) == _parts((0, 2), (1,), (3,))
    all_null = _table(_tracklet(0, 10, None), _tracklet(20, 30, None))
    assert _partition(match_in_camera(all_null, MatchConfig(in_camera_min_similarity=-1.0))) == _parts((0,), (1,))


def test_in_camera_output_one_id_per_row_contiguous_and_deterministic():
    rows = [
        _tracklet(0, 10, _look()),
        _tracklet(5, 15, _look(1.0, base=2, toward=3)),
        _tracklet(20, 30, _look(0.95)),
        _tracklet(25, 35, _look(0.97, base=2, toward=3)),
        _tracklet(40, 50, _look(1.0, base=4, toward=5)),
        _tracklet(45, 55, None),
    ]
    table = _table(*rows, index=[17, 3, 9, 42, 5, 11])  # e.g. a filtered table
    ids = match_in_camera(table, MatchConfig())
    assert isinstance(ids, np.ndarray) and ids.dtype == np.int32 and ids.shape == (6,)
    assert sorted(set(ids.tolist())) == list(range(1, len(set(ids.tolist())) + 1))
    assert _partition(ids) == _parts((0, 2), (1, 3), (4,), (5,))
    assert match_in_camera(table, MatchConfig()).tolist() == ids.tolist()
    # Embeddings as plain lists (pa.Table.from_pylist / to_pylist) give the same persons.
    as_lists = table.assign(reid_embedding=[None if v is None else v.tolist() for v in table["reid_embedding"]])
    assert _partition(match_in_camera(as_lists, MatchConfig())) == _partition(ids)


def test_in_camera_empty_table():
    ids = match_in_camera(pd.DataFrame(), MatchConfig())
    assert isinstance(ids, np.ndarray) and ids.shape == (0,)


# ---------------------------------------------------------------------------------------------------------------------
# tasks/match_identities.py: _persons, _transit_allowed


def test_persons_one_row_per_camera_person_with_crop_weighted_mean_and_span():
    table = _table(
        _seen("a", 1, _at(0), 0, 10, num_crops=9),
        _seen("a", 1, _at(40), 30, 50, num_crops=1),
        _seen("a", 1, None, 60, 70),  # no crops: no say in the look, but part of the time span
        _seen("b", 2, _at(90), 5, 6, num_crops=3),
        _seen("b", 1, None, 7, 8),
    )
    persons = _persons(table)
    assert list(zip(persons["camera_id"], persons["person_id"], strict=True)) == [("a", 1), ("b", 1), ("b", 2)]
    a1 = persons.iloc[0]
    expected = 9 * _at(0) + 1 * _at(40)
    np.testing.assert_allclose(a1["embedding"], expected / np.linalg.norm(expected), atol=1e-6)
    assert a1["start"] == T0.timestamp() and a1["end"] == T0.timestamp() + 70
    assert persons.iloc[1]["embedding"] is None
    np.testing.assert_allclose(persons.iloc[2]["embedding"], _at(90), atol=1e-6)


def _spans(*people: tuple[str, float, float]) -> pd.DataFrame:
    origin = T0.timestamp()
    return pd.DataFrame([{"camera_id": c, "start": origin + s, "end": origin + e} for c, s, e in people])


def test_transit_allowed_restricts_only_windowed_camera_pairs():
    # a leaves at 100 s. b arrives 30 s later (inside 10..60), b arrives 5 s later, b arrives 90 s later,
    # b was seen before a (reverse direction), c arrives much later (no window for a/c).
    persons = _spans(("a", 0, 100), ("b", 130, 140), ("b", 105, 110), ("b", 190, 200), ("b", 0, 50), ("c", 9000, 9100))
    allowed = _transit_allowed(persons, {"a->b": (10.0, 60.0)})
    assert allowed.tolist()[0] == [True, True, False, False, False, True]
    assert (allowed == allowed.T).all()
    assert allowed[1:5, 1:5].all()  # b with b is not a camera pair with a window
    assert _transit_allowed(persons, {}).all()
    # b -> a travel (b left at 80 s, a entered at 100 s) is not covered by the a->b window.
    assert not _transit_allowed(_spans(("a", 100, 110), ("b", 60, 80)), {"a->b": (10.0, 60.0)})[0, 1]
    # With a b->a window as well, leaving b at 50 s and entering a at 70 s is allowed.
    reverse = _transit_allowed(_spans(("b", 0, 50), ("a", 70, 80)), {"a->b": (10.0, 60.0), "b->a": (10.0, 60.0)})
    assert reverse.all()


@pytest.mark.parametrize(("delay", "ok"), [(10.0, True), (60.0, True), (9.0, False), (61.0, False)])
def test_transit_window_bounds_are_inclusive(delay, ok):
    allowed = _transit_allowed(_spans(("a", 0, 100), ("b", 100 + delay, 200 + delay)), {" a -> b ": (10.0, 60.0)})
    assert bool(allowed[0, 1]) is ok and bool(allowed[1, 0]) is ok


# ---------------------------------------------------------------------------------------------------------------------
# tasks/match_identities.py: match_cross_camera


@pytest.mark.parametrize("threshold", [MatchConfig().cross_camera_min_similarity, 0.7])
@pytest.mark.parametrize(("offset", "joined"), [(MARGIN, True), (-MARGIN, False)])
def test_cross_camera_similarity_threshold(threshold, offset, joined):
    table = _table(_seen("a", 1, _look(), 0, 10), _seen("b", 1, _look(threshold + offset), 30, 40))
    ids = match_cross_camera(table, MatchConfig(cross_camera_min_similarity=threshold))
    assert _partition(ids) == (_parts((0, 1)) if joined else _parts((0,), (1,)))


def _with_camera_vectors(table: pd.DataFrame, vectors: list[np.ndarray | None]) -> pd.DataFrame:
    return table.assign(reid_camera_embedding=pd.Series(vectors, index=table.index, dtype=object))


def test_cross_camera_compares_the_camera_bn_vectors_where_a_camera_has_them():
    """Trained-statistics vectors pair a/1 with b/2 (a camera's look hides identity); the camera-BN vectors pair
    a/1 with b/1. The matcher must follow the camera vectors when asked, and the plain ones when not."""
    table = _table(_seen("a", 1, _look(), 0, 10), _seen("a", 2, _look(1.0, base=2), 0, 10),
                   _seen("b", 1, _look(1.0, base=2), 20, 30), _seen("b", 2, _look(), 20, 30))
    table = _with_camera_vectors(table, [_look(), _look(1.0, base=2), _look(), _look(1.0, base=2)])
    assert _partition(match_cross_camera(table, MatchConfig())) == _parts((0, 2), (1, 3))
    plain = MatchConfig(cross_camera_camera_bn=False)
    assert _partition(match_cross_camera(table, plain)) == _parts((0, 3), (1, 2))


def test_a_camera_missing_any_camera_vector_is_compared_by_its_plain_vectors():
    """Camera b has a camera vector for only one of its two embedded persons: all of b falls back to the plain
    vectors, never half of a camera in each space. A person with no embedding at all does not count."""
    table = _table(_seen("a", 1, _look(), 0, 10), _seen("b", 1, _look(), 20, 30), _seen("b", 2, _look(), 20, 30))
    table = _with_camera_vectors(table, [_look(1.0, base=5), _look(1.0, base=5), None])
    assert list(cross_camera_column(table, True)) == ["reid_camera_embedding", "reid_embedding", "reid_embedding"]
    table.loc[2, "reid_embedding"] = None  # b/2 was never embedded (every box too small)
    assert list(cross_camera_column(table, True)) == ["reid_camera_embedding"] * 3
    assert list(cross_camera_column(table, False)) == ["reid_embedding"] * 3
    assert list(cross_camera_column(table.drop(columns="reid_camera_embedding"), True)) == ["reid_embedding"] * 3


def test_a_camera_without_stripes_is_matched_against_striped_camera_vectors():
    """Cameras a and b have camera vectors with body-part stripes (longer than the plain vectors); camera c fell
    back to its plain vectors. Mixed lengths must not break matching: c's vectors are padded with zero stripes,
    so c/1 still joins its look-alike a/1 (embedding cosine 1 / sqrt(1 + w) = 0.82 > 0.5) and nobody else."""
    weight = 0.5

    def striped(look: np.ndarray, stripe_axis: int) -> np.ndarray:
        stripes = np.zeros(2 * 64, np.float32)
        stripes[stripe_axis] = stripes[64 + stripe_axis] = (weight / 2) ** 0.5
        return np.concatenate([look, stripes]) / (1 + weight) ** 0.5

    table = _table(_seen("a", 1, _look(), 0, 10), _seen("b", 1, _look(1.0, base=2), 20, 30),
                   _seen("c", 1, _look(), 40, 50))
    table = _with_camera_vectors(table, [striped(_look(), 0), striped(_look(1.0, base=2), 5), None])
    assert list(cross_camera_column(table, True)) == ["reid_camera_embedding"] * 2 + ["reid_embedding"]
    assert _partition(match_cross_camera(table, MatchConfig())) == _parts((0, 2), (1,))


def test_cross_camera_alike_people_share_an_id_and_strangers_do_not():
    table = _table(
        _seen("a", 1, _look(), 0, 10),
        _seen("a", 2, _look(1.0, base=2), 0, 10),
        _seen("b", 1, _look(1.0, base=2), 20, 30),
        _seen("b", 2, _look(0.99), 25, 30),
        _seen("c", 1, _look(1.0, base=7), 40, 50),
    )
    assert _partition(match_cross_camera(table, MatchConfig())) == _parts((0, 3), (1, 2), (4,))


def test_matching_never_reads_attribute_probabilities():
    """The data rule in tasks/peta.py: the default attribute model saw VIPeR / PRID / GRID people, so it must not
    feed a cross-camera figure on them. Attributes that contradict the appearance change no id, in camera or across."""
    rng = np.random.default_rng(0)
    seen = _table(
        _seen("a", 1, _look(), 0, 10),
        _seen("a", 2, _look(1.0, base=2), 0, 10),
        _seen("b", 1, _look(1.0, base=2), 20, 30),
        _seen("b", 2, _look(0.99), 25, 30),
    )
    walks = _table(_tracklet(0, 5, _look()), _tracklet(8, 12, _look(0.99)), _tracklet(8, 12, _look(1.0, base=3)))
    for table, match, expected in ((seen, match_cross_camera, _parts((0, 3), (1, 2))),
                                   (walks, match_in_camera, _parts((0, 1), (2,)))):  # fmt: skip
        assert _partition(match(table, MatchConfig())) == expected
        for probs in (np.zeros, np.ones, rng.random):  # the same person: opposite genders, garments, ...
            rows = [probs(len(ATTRIBUTE_NAMES)).astype(np.float32) for _ in range(len(table))]
            assert _partition(match(table.assign(attribute_probs=rows), MatchConfig())) == expected


def test_cross_camera_persons_of_one_camera_are_never_merged_even_through_other_cameras():
    # a/1 and a/2 are seen at the same time (in-camera matching made them two people) but look identical, and
    # b/1 and c/1 look like both. b and c may join one of them; the two a persons must keep different ids.
    table = _table(
        _seen("a", 1, _look(), 0, 10),
        _seen("a", 2, _look(), 5, 15),
        _seen("b", 1, _look(), 30, 40),
        _seen("c", 1, _look(), 60, 70),
    )
    ids = match_cross_camera(table, MatchConfig())
    assert ids.iloc[0] != ids.iloc[1]
    assert ids.nunique() == 2


def test_cross_camera_keeps_in_camera_persons_whole():
    # Two tracklets of a/1 (in-camera matching decided they are one person) always share a global id, even
    # though only one of them looks like b/1: matching is on the person's crop-weighted mean look.
    table = _table(
        _seen("a", 1, _at(0), 0, 10, num_crops=20),
        _seen("a", 1, _at(60), 40, 50, num_crops=1),  # cos 0.5 with b/1 alone
        _seen("b", 1, _at(0), 80, 90),
    )
    ids = match_cross_camera(table, MatchConfig())
    assert _partition(ids) == _parts((0, 1, 2))


@pytest.mark.parametrize(
    ("b_start", "joined"),
    [(130.0, True), (110.0, True), (160.0, True), (105.0, False), (190.0, False), (-100.0, False)],
)
def test_cross_camera_transit_window(b_start, joined):
    # a/1 leaves at 100 s; window a->b is 10..60 s. -100: b/1 was seen before a/1 (b -> a has no window).
    table = _table(_seen("a", 1, _look(), 0, 100), _seen("b", 1, _look(), b_start, b_start + 20))
    ids = match_cross_camera(table, MatchConfig(transit_windows={"a->b": (10.0, 60.0)}))
    assert _partition(ids) == (_parts((0, 1)) if joined else _parts((0,), (1,)))


def test_cross_camera_transit_window_is_directed():
    # Left b at 80 s, entered a at 100 s: 20 s is inside the window, but for b -> a, which has none.
    table = _table(_seen("a", 1, _look(), 100, 110), _seen("b", 1, _look(), 60, 80))
    ids = match_cross_camera(table, MatchConfig(transit_windows={"a->b": (10.0, 60.0)}))
    assert _partition(ids) == _parts((0,), (1,))
    both_ways = MatchConfig(transit_windows={"a->b": (10.0, 60.0), "b->a": (10.0, 60.0)})
    assert _partition(match_cross_camera(table, both_ways)) == _parts((0, 1))


def test_cross_camera_camera_pair_without_window_is_free():
    table = _table(_seen("a", 1, _look(), 0, 100), _seen("c", 1, _look(), 5000, 5100))
    ids = match_cross_camera(table, MatchConfig(transit_windows={"a->b": (10.0, 60.0)}))
    assert _partition(ids) == _parts((0, 1))


def test_cross_camera_transit_window_is_evidence_not_a_hard_constraint():
    # Documented in clustering.constrained_average_linkage: pairs outside a transit window "contribute no
    # evidence"; they are not cannot-links. So a third camera without a window can bring together two persons
    # whose own a->b timing is impossible. This pins that documented (and perhaps surprising) behaviour.
    table = _table(
        _seen("a", 1, _look(), 0, 100),
        _seen("b", 1, _look(), 500, 520),  # 400 s after leaving a: outside a->b 10..60
        _seen("c", 1, _look(), 300, 320),
    )
    ids = match_cross_camera(table, MatchConfig(transit_windows={"a->b": (10.0, 60.0)}))
    assert _partition(ids) == _parts((0, 1, 2))
    assert _partition(match_cross_camera(table.iloc[:2], MatchConfig(transit_windows={"a->b": (10.0, 60.0)}))) == (
        _parts((0,), (1,))
    )


def test_cross_camera_consistency_pass_splits_a_chained_outlier():
    # Four cameras. Three persons within 6 degrees of each other and one at cos 0.57 from them. With a loose
    # linkage bar of 0.5 the outlier joins (average ~0.57); a consistency bar of 0.9 splits it off again.
    table = _table(
        _seen("a", 1, _at(0), 0, 10),
        _seen("b", 1, _at(6), 20, 30),
        _seen("c", 1, _at(-6), 40, 50),
        _seen("d", 1, _at(55, toward=2), 60, 70),
    )
    loose = MatchConfig(cross_camera_min_similarity=0.5, consistency_min_similarity=-1.0)
    assert _partition(match_cross_camera(table, loose)) == _parts((0, 1, 2, 3))
    checked = MatchConfig(cross_camera_min_similarity=0.5, consistency_min_similarity=0.9)
    assert _partition(match_cross_camera(table, checked)) == _parts((0, 1, 2), (3,))


def test_cross_camera_persons_without_embedding_stay_alone():
    # A bar of -1 joins everyone who has a look (one per camera); persons with no crops at all must not join.
    table = _table(
        _seen("a", 1, None, 0, 10),
        _seen("b", 1, None, 20, 30),
        _seen("a", 2, _look(), 0, 10),
        _seen("b", 2, _look(0.1), 20, 30),
        _seen("c", 1, _look(1.0, base=5), 40, 50),
        _seen("c", 2, None, 40, 50),
        _seen("c", 3, _look(), 60, 70),  # c/3: one tracklet with crops, one without
        _seen("c", 3, None, 80, 90),
    )
    config = MatchConfig(cross_camera_min_similarity=-1.0, consistency_min_similarity=-1.0)
    ids = match_cross_camera(table, config)
    assert ids.iloc[6] == ids.iloc[7]
    counts = ids.value_counts()
    assert [int(counts[ids.iloc[row]]) for row in (0, 1, 5)] == [1, 1, 1]
    assert ids.iloc[2] == ids.iloc[3]  # the bar of -1 does join persons with a look across cameras


def test_cross_camera_output_one_id_per_row_contiguous_deterministic_and_row_order_free():
    rows = [
        _seen("a", 1, _look(), 0, 10),
        _seen("a", 2, _look(1.0, base=2), 0, 10),
        _seen("a", 1, _look(0.98), 20, 30),
        _seen("b", 4, _look(0.99), 50, 60),
        _seen("b", 7, _look(1.0, base=9), 50, 60),
        _seen("c", 1, None, 0, 5),
        _seen("c", 2, _look(0.97, base=2), 80, 90),
    ]
    index = [40, 12, 7, 33, 2, 19, 5]
    table = _table(*rows, index=index)
    ids = match_cross_camera(table, MatchConfig())
    assert isinstance(ids, pd.Series) and ids.dtype == np.int32
    assert ids.index.tolist() == index
    assert sorted(set(ids.tolist())) == list(range(1, ids.nunique() + 1))
    assert _partition(ids) == _parts((0, 2, 3), (1, 6), (4,), (5,))
    assert match_cross_camera(table, MatchConfig()).tolist() == ids.tolist()
    shuffled = table.iloc[[3, 6, 0, 5, 2, 4, 1]]
    again = match_cross_camera(shuffled, MatchConfig())
    assert _partition(again.loc[index]) == _partition(ids)


def test_cross_camera_empty_table():
    ids = match_cross_camera(pd.DataFrame(), MatchConfig())
    assert isinstance(ids, pd.Series) and len(ids) == 0 and ids.dtype == np.int32


def test_pad_vectors_gives_one_length_and_keeps_values() -> None:
    from tasks.match_identities import pad_vectors

    padded = pad_vectors(pd.Series([np.array([0.6, 0.8]), None, np.array([1.0, 0.0, 0.0, 0.0])]))
    assert padded[1] is None
    np.testing.assert_allclose(padded[0], [0.6, 0.8, 0.0, 0.0])
    np.testing.assert_allclose(padded[2], [1.0, 0.0, 0.0, 0.0])
