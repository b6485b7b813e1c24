"""Cross-camera ReID and identity metrics on real multi-camera person sets (VIPeR, PRID, GRID, CUHK03).

Two ReID protocols, both single-image queries, cosine (or re-ranked) similarity, ties broken
pessimistically (`tasks.evaluate_reid.cmc` / `average_precision`):

* ``all-gallery``: every image is a query; the gallery is every image of the OTHER cameras of the set
  (distractors included); queries whose person is in no other camera are not scored. Harder than the
  published protocols (bigger gallery) and what a deployment faces.
* ``standard`` (published single-shot protocols, so figures compare with the literature), random splits
  with a fixed seed, mean and standard deviation over splits:
  VIPeR: 316 people, camera 1 probes vs camera 2 gallery (316); PRID 2011: 100 of the 200 people seen by
  both cameras, camera A probes vs camera B gallery of those 100 + the 549 B-only people (649);
  GRID: 125 of the 250 paired people, probe = the first image of the pair, gallery = the other 125 + the
  775 one-image distractors (900); CUHK03 (our 100-person labelled validation part, classic single-shot
  test protocol): one random image per person per view, view 1 probes vs view 2 gallery (100).

Identity metrics (:func:`pair_metrics`) score global ids against people over *cross-camera* pairs of
tracklets: precision / recall / F1 of "same global id" vs "same person", the share of multi-camera people
whose tracklets all share one global id that holds nobody else, and false merges (global ids with more
than one person). Plain numpy/pandas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.evaluate_reid import average_precision, cmc

STANDARD_SPLITS = 10
CUHK03_SPLITS = 20  # the classic CUHK03 protocol averages 20 trials


@dataclass(frozen=True)
class ReidFigures:
    """rank-1 / rank-5 / mAP of one protocol (over queries, or mean and std over splits)."""

    rank1: float
    rank5: float
    mAP: float
    queries: int
    rank1_std: float = 0.0
    mAP_std: float = 0.0


def score_queries(similarity: np.ndarray, query_person: np.ndarray, gallery_person: np.ndarray,
                  valid: np.ndarray | None = None) -> ReidFigures:
    """CMC and mAP of (q, g) similarities; `valid` (q, g) masks gallery entries a query may not see."""
    rank1, rank5, aps = [], [], []
    for q in range(len(similarity)):
        keep = np.ones(similarity.shape[1], bool) if valid is None else valid[q]
        matches = gallery_person[keep] == query_person[q]
        if not matches.any():
            continue
        curve = cmc(similarity[q, keep], matches, max_rank=5)
        rank1.append(curve[0])
        rank5.append(curve[4])
        aps.append(average_precision(similarity[q, keep], matches))
    if not aps:
        return ReidFigures(0.0, 0.0, 0.0, 0)
    return ReidFigures(float(np.mean(rank1)), float(np.mean(rank5)), float(np.mean(aps)), len(aps))


def all_gallery(similarity: np.ndarray, persons: np.ndarray, cameras: np.ndarray) -> ReidFigures:
    """Every image a query against all images of the other cameras. similarity: (n, n) over the set."""
    other_camera = cameras[:, None] != cameras[None, :]
    return score_queries(similarity, persons, persons, other_camera)


def _split_figures(runs: list[ReidFigures]) -> ReidFigures:
    rank1 = np.array([r.rank1 for r in runs])
    maps = np.array([r.mAP for r in runs])
    return ReidFigures(float(rank1.mean()), float(np.mean([r.rank5 for r in runs])), float(maps.mean()),
                       int(np.mean([r.queries for r in runs])), float(rank1.std()), float(maps.std()))


Splitter = Callable[[pd.DataFrame, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _viper_split(images: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    people = np.array(sorted(set(images.person[images.camera == "1"]) & set(images.person[images.camera == "2"])))
    chosen = set(rng.choice(people, 316, replace=False))
    inside = images.person.isin(chosen).to_numpy()
    return np.flatnonzero(inside & (images.camera == "1").to_numpy()), np.flatnonzero(
        inside & (images.camera == "2").to_numpy())


def _prid_split(images: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    in_a, in_b = set(images.person[images.camera == "a"]), set(images.person[images.camera == "b"])
    both = np.array(sorted(in_a & in_b, key=int))
    chosen = set(rng.choice(both, 100, replace=False))
    b_only = in_b - in_a
    probe = np.flatnonzero(images.person.isin(chosen).to_numpy() & (images.camera == "a").to_numpy())
    gallery = np.flatnonzero(images.person.isin(chosen | b_only).to_numpy() & (images.camera == "b").to_numpy())
    return probe, gallery


def _grid_split(images: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    counts = images.person.value_counts()
    paired = np.array(sorted(counts.index[counts >= 2], key=int))
    chosen = set(rng.choice(paired, 125, replace=False))
    distractors = set(counts.index[counts == 1])
    probe, gallery = [], []
    for person, rows in images.groupby("person", sort=False):
        index = sorted(rows.index, key=lambda i: images.path[i])
        if person in chosen:
            probe.append(index[0])
            gallery.extend(index[1:])
        elif person in distractors:
            gallery.extend(index)
    return np.array(sorted(probe)), np.array(sorted(gallery))


def _cuhk03_split(images: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    probe, gallery = [], []
    for (_person, camera), rows in images.groupby(["person", "camera"], sort=True):
        (probe if camera == "1" else gallery).append(int(rng.choice(rows.index.to_numpy())))
    return np.array(probe), np.array(gallery)


STANDARD_PROTOCOLS: dict[str, tuple[Splitter, int, str]] = {
    "viper": (_viper_split, STANDARD_SPLITS, "VIPeR single-shot 316/316, cam1 probe -> cam2 gallery"),
    "prid": (_prid_split, STANDARD_SPLITS, "PRID 2011 single-shot 100 probes (cam A) vs 649 gallery (cam B)"),
    "grid": (_grid_split, STANDARD_SPLITS, "GRID 125 probes vs 900 gallery (775 distractors)"),
    "cuhk03": (_cuhk03_split, CUHK03_SPLITS, "CUHK03 labelled val, 100 people, one image per view, 1 -> 2"),
}


def standard_protocol(name: str, images: pd.DataFrame, similarity_of: Callable[[np.ndarray, np.ndarray], np.ndarray],
                      seed: int = 0) -> ReidFigures:
    """Mean/std over the set's published random splits; `similarity_of(probe_idx, gallery_idx)` -> (p, g)."""
    splitter, splits, _description = STANDARD_PROTOCOLS[name]
    rng = np.random.default_rng(seed)
    images = images.reset_index(drop=True)
    persons = images.person.to_numpy()
    runs = []
    for _ in range(splits):
        probe, gallery = splitter(images, rng)
        runs.append(score_queries(similarity_of(probe, gallery), persons[probe], persons[gallery]))
    return _split_figures(runs)


@dataclass(frozen=True)
class PairFigures:
    """Global ids vs people over cross-camera tracklet pairs."""

    precision: float
    recall: float
    f1: float
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    people_multi_camera: int
    people_whole: int  # multi-camera people with exactly one global id holding only them
    false_merges: int  # global ids holding more than one person
    global_ids: int

    @property
    def whole_share(self) -> float:
        return self.people_whole / max(self.people_multi_camera, 1)


def pair_metrics(persons: np.ndarray, cameras: np.ndarray, global_ids: np.ndarray) -> PairFigures:
    """persons / cameras / global_ids: (n,) per tracklet. Only pairs in different cameras count."""
    persons, cameras, global_ids = map(np.asarray, (persons, cameras, global_ids))
    cross = cameras[:, None] != cameras[None, :]
    upper = np.triu(np.ones_like(cross), k=1) & cross
    same_person = persons[:, None] == persons[None, :]
    same_id = global_ids[:, None] == global_ids[None, :]
    true_pairs = int((upper & same_person).sum())
    predicted = int((upper & same_id).sum())
    correct = int((upper & same_person & same_id).sum())
    precision = correct / predicted if predicted else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    frame = pd.DataFrame({"person": persons, "camera": cameras, "gid": global_ids})
    people_per_id = frame.groupby("gid")["person"].nunique()
    multi = frame.groupby("person").filter(lambda rows: rows["camera"].nunique() >= 2)
    whole = 0
    for _person, rows in multi.groupby("person"):
        ids = rows["gid"].unique()
        whole += int(len(ids) == 1 and people_per_id[ids[0]] == 1)
    return PairFigures(precision, recall, f1, true_pairs, predicted, correct, int(multi["person"].nunique()), whole,
                       int((people_per_id > 1).sum()), int(frame["gid"].nunique()))
