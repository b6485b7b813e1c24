"""Score a ReID embedder on ground-truth person crops of ONE camera: mAP, rank-1 and rank-5.

This is an **intra-camera** protocol (query and gallery come from the same video); it says how well the
embedder re-finds a person later in the same view, which is easier than cross-camera ReID. Every result
carries ``"protocol": "intra-camera"`` so it is never mistaken for a cross-camera number.

Protocol (built by :func:`build_reid_protocol` from a MOTChallenge ``gt.txt`` and its video):

* Crops: each GT box is cut from its frame (GT frame ``k`` is the ``k``-th decoded frame), clipped to the
  image. A box is skipped when its clipped height is under ``min_height`` pixels, when less than
  ``min_visible`` of its area lies inside the image, or when its ``conf`` is 0 (the MOT "ignore" flag).
* Query: for each identity, its first appearance: its first ``query_frames`` usable boxes (a tracklet).
* Gallery: every other usable box of every identity, except the boxes of the query's own identity that lie
  within ``exclusion_s`` seconds (at the real frame rate) after the query's last frame; those near-duplicates
  would make the task trivial. The gallery is shared by all queries. Each identity's gallery boxes are cut
  into "gallery tracklets": runs of up to ``tracklet_len`` consecutive boxes, never spanning a gap in the
  identity's track longer than ``max_gap_s``.
* An identity with no gallery box left is not a query; it is listed in ``skipped_ids`` and counted.

Identities are GT ids unless a person map is given (``persons``, see :mod:`tasks.person_map`): MOT ground
truth starts a new id when someone re-enters the view, so on PETS09-S2L1 the raw ids count a correct
re-identification of a returning person as a miss. With a map, identity = person, and two query sets exist:

* ``first-appearance`` (default): one query per person, its first appearance, as above.
* ``re-entry``: one query per *visit* (GT track) of a person seen in more than one visit, the visit's
  first ``query_frames`` boxes; every gallery tracklet of the query's own visit is ignored for that
  query, so only OTHER visits count: the person must be re-found after leaving and coming back. This is
  the harder, more useful test (a different pose, place and time); each report names which one it is.

Modes (:func:`evaluate_reid`): ``single`` matches one crop per query (the query tracklet's middle crop) against
every gallery box; ``multi`` matches the L2-normalised mean embedding of the query tracklet against the mean
embedding of each gallery tracklet. Similarity is cosine; AP and CMC are the standard ones (ties are broken
pessimistically: a non-match ranks before a match with the same score).

Options of :func:`evaluate_reid` change only how *we* aggregate embeddings, never which crops are queries or
gallery entries: horizontal-flip test-time augmentation, weighting crops by box height, and leaving crops
heavily overlapped by another GT box out of a template (when a whole template is overlapped it is kept).

This module imports neither Prefect, Qdrant nor Streamlit, so it runs in any test or notebook.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tasks.detections import max_overlap_xyxy
from tasks.evaluate_tracking import load_mot_txt
from tasks.person_map import apply_person_map, load_person_map
from tasks.video import DecodeReport, iter_frames

PROTOCOL = "intra-camera"
MODES: tuple[str, ...] = ("single", "multi")
QUERY_SETS: tuple[str, ...] = ("first-appearance", "re-entry")
Embedder = Callable[[Sequence[np.ndarray]], np.ndarray]


# ----------------------------------------------------------------------------------------------- metrics


def _ranked_matches(similarities: np.ndarray, matches: np.ndarray) -> np.ndarray:
    """Matches sorted by decreasing similarity; on a tie, non-matches first (pessimistic)."""
    similarities = np.asarray(similarities, dtype=np.float64).ravel()
    matches = np.asarray(matches, dtype=bool).ravel()
    if similarities.shape != matches.shape:
        raise ValueError(f"similarities {similarities.shape} and matches {matches.shape} differ in length")
    order = np.lexsort((matches, -similarities))  # last key is primary: -similarity, then False before True
    return matches[order]


def average_precision(similarities: np.ndarray, matches: np.ndarray) -> float:
    """AP of one query: mean, over the gallery's matches, of the precision at the rank of each match.

    ``similarities`` (n,) scores the gallery (higher = more similar); ``matches`` (n,) marks the true matches.
    Raises ``ValueError`` when there is no match (AP is undefined; such queries must be skipped upstream).
    """
    ranked = _ranked_matches(similarities, matches)
    hits = np.flatnonzero(ranked)
    if hits.size == 0:
        raise ValueError("average_precision: the gallery holds no match for this query")
    precision_at_hits = np.arange(1, hits.size + 1) / (hits + 1)
    return float(precision_at_hits.mean())


def cmc(similarities: np.ndarray, matches: np.ndarray, max_rank: int = 5) -> np.ndarray:
    """CMC curve of one query: element ``k-1`` is 1.0 when a match is among the top ``k`` gallery entries.

    Returns a float array of length ``max_rank`` (a gallery shorter than ``max_rank`` is padded with its last
    value). Raises ``ValueError`` when there is no match.
    """
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    ranked = _ranked_matches(similarities, matches)
    hits = np.flatnonzero(ranked)
    if hits.size == 0:
        raise ValueError("cmc: the gallery holds no match for this query")
    return (np.arange(max_rank) >= hits[0]).astype(np.float64)


# ---------------------------------------------------------------------------------------------- protocol


@dataclass
class ReidProtocol:
    """Crops of one sequence and which of them are queries and gallery entries (indices into ``crops``).

    ``ids``, ``frames``, ``heights`` and ``overlap`` (max IoU with another GT box of the same frame) are per crop.
    ``queries`` maps identity -> crop indices of its query tracklet (frame order); ``gallery_tracklets`` are
    crop indices of each gallery tracklet, ``gallery_tracklet_ids`` their identities; ``gallery`` is every
    gallery crop (the single-crop gallery). ``exclusion_frames`` is the exclusion window in frames.
    """

    sequence: str
    fps: float
    crops: list[np.ndarray]
    ids: np.ndarray
    frames: np.ndarray
    heights: np.ndarray
    overlap: np.ndarray
    queries: dict[int, np.ndarray]
    gallery_tracklets: list[np.ndarray]
    gallery_tracklet_ids: np.ndarray
    gallery: np.ndarray
    skipped_ids: tuple[int, ...]
    exclusion_frames: int
    settings: dict = field(default_factory=dict)
    protocol: str = PROTOCOL
    # Person-map support (None = identity is the GT track id). ``tracks``: GT track id per crop;
    # ``query_identity``: query key -> identity it must find (keys are track ids for ``re-entry``).
    tracks: np.ndarray | None = None
    query_identity: dict[int, int] | None = None
    queries_by: str = "first-appearance"
    gallery_tracklet_tracks: np.ndarray | None = None

    @property
    def ignore_own_track(self) -> bool:
        """Re-entry queries leave the gallery entries of their own visit (GT track) out of their ranking."""
        return self.queries_by == "re-entry"

    @property
    def identities(self) -> str:
        """What an identity is in this protocol: a GT track, or a person of a person map."""
        return "gt tracks" if self.tracks is None else "persons (person map)"

    def identity_of_query(self, key: int) -> int:
        """The identity a query must re-find (its person; for track-keyed queries, the track's person)."""
        return key if self.query_identity is None else self.query_identity[key]

    def track_of(self, crops: np.ndarray) -> np.ndarray:
        """GT track ids of ``crops`` (the identities themselves when no person map is used)."""
        return (self.ids if self.tracks is None else self.tracks)[crops]

    def query_window(self, identity: int) -> tuple[int, int]:
        """(first, last) frame of ``identity``'s query tracklet."""
        frames = self.frames[self.queries[identity]]
        return int(frames.min()), int(frames.max())


def _pairwise_max_iou(boxes: np.ndarray) -> np.ndarray:
    """For each xywh box, its largest IoU with any *other* box of the array."""
    return max_overlap_xyxy(np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:4]], axis=1))


def _split_tracklets(frames: np.ndarray, length: int, max_gap: int) -> list[np.ndarray]:
    """Positions (into sorted ``frames``) of runs of <= ``length`` boxes that never span a gap > ``max_gap``."""
    if frames.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) > max_gap) + 1
    chunks: list[np.ndarray] = []
    for run in np.split(np.arange(frames.size), breaks):
        chunks.extend(run[start : start + length] for start in range(0, run.size, length))
    return chunks


def build_reid_protocol(
    video: str | Path,
    gt_path: str | Path,
    fps: float,
    *,
    query_frames: int = 8,
    tracklet_len: int = 8,
    exclusion_s: float = 2.0,
    min_height: float = 40.0,
    min_visible: float = 0.5,
    max_gap_s: float = 1.0,
    max_frames: int | None = None,
    skip_ignored: bool = True,
    persons: dict[int, int] | None = None,
    queries_by: str = "first-appearance",
) -> ReidProtocol:
    """Decode ``video`` once, cut its GT boxes and split them into queries and gallery (see the module doc).

    ``fps`` is the sequence's real frame rate (headers are often wrong); it converts ``exclusion_s`` and
    ``max_gap_s`` to frames. ``max_frames`` keeps only GT frames ``1..max_frames`` (for quick runs).
    ``persons`` ({gt id: person}, from :func:`tasks.person_map.load_person_map`) makes identities people
    instead of GT tracks; ``queries_by`` picks the query set (``re-entry`` needs ``persons``).
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if query_frames < 1 or tracklet_len < 1:
        raise ValueError("query_frames and tracklet_len must be >= 1")
    if queries_by not in QUERY_SETS:
        raise ValueError(f"queries_by must be one of {QUERY_SETS}, got {queries_by!r}")
    if queries_by == "re-entry" and persons is None:
        raise ValueError("the re-entry query set needs a person map (which GT ids are one person)")
    video, gt_path = Path(video), Path(gt_path)
    gt = load_mot_txt(gt_path)
    if max_frames is not None:
        gt = gt[gt["frame"] <= max_frames]
    gt = gt.sort_values(["frame", "id"], kind="stable").reset_index(drop=True)
    person_of = None
    if persons is not None:
        person_of = apply_person_map(gt, persons, source=f"person map for {gt_path}")["id"].to_numpy()
    boxes_all = gt[["x", "y", "w", "h"]].to_numpy(np.float64)
    # Overlap is measured against every GT box of the frame, usable or not: an occluder is an occluder.
    overlap_all = np.zeros(len(gt))
    for rows in gt.groupby("frame").indices.values():
        overlap_all[rows] = _pairwise_max_iou(boxes_all[rows])

    by_frame = gt.groupby("frame").indices
    last_frame = int(gt["frame"].max()) if len(gt) else 0
    crops: list[np.ndarray] = []
    rows_used: list[int] = []
    frames: list[int] = []
    heights: list[float] = []
    report = DecodeReport()
    for index, image in iter_frames(video, video.stem, report, max_frames=last_frame):
        rows = by_frame.get(index + 1)
        if rows is None:
            continue
        height, width = image.shape[:2]
        for row in rows:
            x, y, w, h = boxes_all[row]
            if skip_ignored and gt["conf"].iat[row] == 0:
                continue
            x1, y1 = max(0, round(x)), max(0, round(y))
            x2, y2 = min(width, round(x + w)), min(height, round(y + h))
            if x2 - x1 < 2 or y2 - y1 < min_height:
                continue
            if (x2 - x1) * (y2 - y1) < min_visible * w * h:
                continue
            crops.append(image[y1:y2, x1:x2].copy())
            rows_used.append(int(row))
            frames.append(index + 1)
            heights.append(float(y2 - y1))
    if report.frames < last_frame:
        raise ValueError(f"{video} decoded {report.frames} frames but {gt_path} has boxes up to frame {last_frame}")

    used = np.asarray(rows_used, np.int64)
    tracks_a = gt["id"].to_numpy(np.int64)[used]
    ids_a = tracks_a if person_of is None else person_of[used].astype(np.int64)
    frames_a = np.asarray(frames, np.int64)
    split = _QuerySplit(ids_a, tracks_a, frames_a, query_frames, tracklet_len, max(1, int(round(max_gap_s * fps))))
    exclusion_frames = int(round(exclusion_s * fps))
    if queries_by == "re-entry":
        split.by_visit()
    else:
        split.by_first_appearance(exclusion_frames)
    gallery = np.concatenate(split.tracklets) if split.tracklets else np.zeros(0, np.int64)
    settings = {
        "query_frames": query_frames,
        "tracklet_len": tracklet_len,
        "exclusion_s": exclusion_s,
        "min_height": min_height,
        "min_visible": min_visible,
        "max_gap_s": max_gap_s,
        "max_frames": max_frames,
        "skip_ignored": skip_ignored,
    }
    # MOTChallenge layout <sequence>/gt/gt.txt names the sequence; else the video file does.
    sequence = gt_path.parent.parent.name if gt_path.parent.name == "gt" else video.stem
    return ReidProtocol(
        sequence=sequence,
        fps=float(fps),
        crops=crops,
        ids=ids_a,
        frames=frames_a,
        heights=np.asarray(heights),
        overlap=overlap_all[used] if used.size else np.zeros(0),
        queries=split.queries,
        gallery_tracklets=split.tracklets,
        gallery_tracklet_ids=np.asarray(split.tracklet_ids, np.int64),
        gallery=gallery,
        skipped_ids=tuple(split.skipped),
        exclusion_frames=exclusion_frames,
        settings=settings,
        tracks=None if persons is None else tracks_a,
        query_identity=None if queries_by == "first-appearance" else split.query_identity,
        queries_by=queries_by,
        gallery_tracklet_tracks=np.asarray(split.tracklet_tracks, np.int64),
    )


@dataclass
class _QuerySplit:
    """Builds queries and gallery tracklets from per-crop identities, GT tracks and frames."""

    ids: np.ndarray
    tracks: np.ndarray
    frames: np.ndarray
    query_frames: int
    tracklet_len: int
    max_gap: int
    queries: dict[int, np.ndarray] = field(default_factory=dict)
    query_identity: dict[int, int] = field(default_factory=dict)
    tracklets: list[np.ndarray] = field(default_factory=list)
    tracklet_ids: list[int] = field(default_factory=list)
    tracklet_tracks: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)

    def _in_frame_order(self, members: np.ndarray) -> np.ndarray:
        return members[np.argsort(self.frames[members], kind="stable")]

    def _add_gallery(self, members: np.ndarray) -> None:
        """Cut ``members`` (one identity) into gallery tracklets, never across GT tracks or long gaps."""
        for track in dict.fromkeys(self.tracks[members].tolist()):
            own = members[self.tracks[members] == track]
            for chunk in _split_tracklets(self.frames[own], self.tracklet_len, self.max_gap):
                self.tracklets.append(own[chunk])
                self.tracklet_ids.append(int(self.ids[own[0]]))
                self.tracklet_tracks.append(int(track))

    def by_first_appearance(self, exclusion_frames: int) -> None:
        """One query per identity: its first boxes; the gallery is the rest minus the exclusion window."""
        for identity in np.unique(self.ids):
            own = self._in_frame_order(np.flatnonzero(self.ids == identity))
            query, rest = own[: self.query_frames], own[self.query_frames :]
            rest = rest[self.frames[rest] > self.frames[query].max() + exclusion_frames]
            if rest.size == 0:
                self.skipped.append(int(identity))
                continue
            self.queries[int(identity)] = query
            self._add_gallery(rest)

    def by_visit(self) -> None:
        """One query per visit (GT track) of an identity with 2+ visits; the visit's other boxes are gallery."""
        visits = {int(i): np.unique(self.tracks[self.ids == i]) for i in np.unique(self.ids)}
        for track in np.unique(self.tracks):
            own = self._in_frame_order(np.flatnonzero(self.tracks == track))
            identity = int(self.ids[own[0]])
            if visits[identity].size < 2:
                self._add_gallery(own)
                continue
            self.queries[int(track)] = own[: self.query_frames]
            self.query_identity[int(track)] = identity
            self._add_gallery(own[self.query_frames :])
        # A visit is only a query when another visit of its person left gallery boxes to find.
        tracklet_ids, tracklet_tracks = np.asarray(self.tracklet_ids), np.asarray(self.tracklet_tracks)
        for track in list(self.queries):
            others = (tracklet_ids == self.query_identity[track]) & (tracklet_tracks != track)
            if not others.any():
                del self.queries[track], self.query_identity[track]
        queried = set(self.query_identity.values())
        self.skipped = [int(i) for i in visits if i not in queried]


# -------------------------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class ReidScores:
    """Mean AP and CMC rank-1/rank-5 over the queries of one mode of an (intra-camera) protocol."""

    map: float
    rank1: float
    rank5: float
    num_queries: int
    num_gallery: int
    num_skipped_ids: int
    mode: str
    protocol: str = PROTOCOL
    options: str = ""
    queries_by: str = "first-appearance"
    identities: str = "gt tracks"

    def to_dict(self) -> dict:
        return asdict(self)


def embed_crops(protocol: ReidProtocol, embedder: Embedder, *, flip: bool = False) -> np.ndarray:
    """Embed every crop of ``protocol``; with ``flip``, average with the mirrored crop's embedding (TTA)."""
    features = np.asarray(embedder(protocol.crops), np.float32)
    if flip:
        features = features + np.asarray(embedder([np.ascontiguousarray(c[:, ::-1]) for c in protocol.crops]))
    return _normalise(features)


def _normalise(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=-1, keepdims=True)
    return (features / np.maximum(norms, 1e-12)).astype(np.float32)


def _template(
    protocol: ReidProtocol,
    features: np.ndarray,
    members: np.ndarray,
    height_weighted: bool,
    max_overlap_iou: float | None,
) -> np.ndarray:
    """L2-normalised (weighted) mean embedding of a tracklet's crops."""
    if max_overlap_iou is not None:
        clear = members[protocol.overlap[members] <= max_overlap_iou]
        members = clear if clear.size else members
    weights = protocol.heights[members] if height_weighted else np.ones(members.size)
    return _normalise((weights[:, None] * features[members]).sum(axis=0))


def _middle_crop(protocol: ReidProtocol, members: np.ndarray, max_overlap_iou: float | None) -> int:
    """The query tracklet's middle crop; with ``max_overlap_iou``, the clear crop closest to the middle."""
    middle = members.size // 2
    if max_overlap_iou is not None:
        clear = np.flatnonzero(protocol.overlap[members] <= max_overlap_iou)
        if clear.size:
            middle = int(clear[np.argmin(np.abs(clear - middle))])
    return int(members[middle])


def evaluate_reid(
    protocol: ReidProtocol,
    embedder: Embedder | None,
    mode: str = "multi",
    *,
    features: np.ndarray | None = None,
    flip: bool = False,
    height_weighted: bool = False,
    max_overlap_iou: float | None = None,
) -> ReidScores:
    """Score one mode (``single`` or ``multi``) of ``protocol`` with ``embedder`` (crops -> L2-normalised rows).

    Pass ``features`` (from :func:`embed_crops`) to reuse embeddings across modes; ``embedder`` may then be None.
    ``flip``, ``height_weighted`` and ``max_overlap_iou`` are the aggregation options of the module doc
    (``flip`` only applies when the features are computed here). The gallery never changes with them.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if features is None:
        if embedder is None:
            raise ValueError("evaluate_reid needs an embedder or precomputed features")
        features = embed_crops(protocol, embedder, flip=flip)
    if len(features) != len(protocol.crops):
        raise ValueError(f"{len(features)} feature rows for {len(protocol.crops)} crops")
    query_ids = np.asarray(sorted(protocol.queries), np.int64)
    if mode == "single":
        query_vectors = (
            np.stack([features[_middle_crop(protocol, protocol.queries[int(i)], max_overlap_iou)] for i in query_ids])
            if query_ids.size
            else np.zeros((0, features.shape[1]), np.float32)
        )
        gallery_vectors = features[protocol.gallery]
        gallery_ids = protocol.ids[protocol.gallery]
        gallery_tracks = protocol.track_of(protocol.gallery)
    else:

        def template(members: np.ndarray) -> np.ndarray:
            return _template(protocol, features, members, height_weighted, max_overlap_iou)

        query_vectors = (
            np.stack([template(protocol.queries[int(i)]) for i in query_ids])
            if query_ids.size
            else (np.zeros((0, features.shape[1]), np.float32))
        )
        gallery_vectors = (
            np.stack([template(t) for t in protocol.gallery_tracklets])
            if protocol.gallery_tracklets
            else np.zeros((0, features.shape[1]), np.float32)
        )
        gallery_ids = protocol.gallery_tracklet_ids
        gallery_tracks = (
            protocol.gallery_tracklet_tracks if protocol.gallery_tracklet_tracks is not None else gallery_ids
        )
    similarity = query_vectors @ gallery_vectors.T
    aps, curves = [], []
    for row, key in enumerate(query_ids):
        # re-entry queries (keyed by GT track) ignore their own visit; the rest rank the whole gallery.
        ranked = gallery_tracks != key if protocol.ignore_own_track else np.ones(len(gallery_ids), bool)
        matches = gallery_ids[ranked] == protocol.identity_of_query(int(key))
        aps.append(average_precision(similarity[row][ranked], matches))
        curves.append(cmc(similarity[row][ranked], matches, max_rank=5))
    options = ",".join(
        name
        for name, on in (
            ("flip", flip),
            ("height_weighted", height_weighted),
            (f"max_overlap_iou={max_overlap_iou}", max_overlap_iou is not None),
        )
        if on
    )
    curve = np.mean(curves, axis=0) if curves else np.full(5, np.nan)
    return ReidScores(
        map=float(np.mean(aps)) if aps else float("nan"),
        rank1=float(curve[0]),
        rank5=float(curve[4]),
        num_queries=int(query_ids.size),
        num_gallery=int(len(gallery_ids)),
        num_skipped_ids=len(protocol.skipped_ids),
        mode=mode,
        options=options,
        queries_by=protocol.queries_by,
        identities=protocol.identities,
    )


def embedding_throughput(embedder: Embedder, crops: Sequence[np.ndarray], repeats: int = 1) -> float:
    """Crops per second of ``embedder`` on ``crops`` (after one warm-up batch)."""
    embedder(list(crops[:8]))
    start = time.perf_counter()
    for _ in range(repeats):
        embedder(list(crops))
    return repeats * len(crops) / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tasks.evaluate_reid --video V --gt G --fps F``: print both modes' scores as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", required=True)
    parser.add_argument("--gt", required=True)
    parser.add_argument("--fps", type=float, required=True)
    parser.add_argument("--weights", default="osnet_x0_25_msmt17.pt")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--height-weighted", action="store_true")
    parser.add_argument("--max-overlap-iou", type=float, default=None)
    parser.add_argument("--throughput", action="store_true", help="also measure the embedder's crops/s")
    parser.add_argument("--persons", default=None, help="person map CSV (gt_id,person): identities = people")
    parser.add_argument("--queries", choices=QUERY_SETS, default="first-appearance")
    args = parser.parse_args(argv)

    from tasks.embed_reid import ReidEmbedder

    embedder = ReidEmbedder(args.weights)
    persons = load_person_map(args.persons) if args.persons else None
    protocol = build_reid_protocol(
        args.video, args.gt, args.fps, max_frames=args.max_frames, persons=persons, queries_by=args.queries
    )
    features = embed_crops(protocol, embedder, flip=args.flip)
    out: dict = {"sequence": protocol.sequence, "protocol": PROTOCOL, "crops": len(protocol.crops)}
    for mode in MODES:
        scores = evaluate_reid(
            protocol,
            embedder,
            mode,
            features=features,
            flip=args.flip,
            height_weighted=args.height_weighted,
            max_overlap_iou=args.max_overlap_iou,
        )
        out[mode] = scores.to_dict()
    if args.throughput:
        out["crops_per_s"] = embedding_throughput(embedder, protocol.crops)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
