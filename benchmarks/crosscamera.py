"""Cross-camera benchmark on REAL multi-camera person data: ReID across cameras, and global ids.

    python benchmarks/crosscamera.py [--data DIR] [--sets viper,prid,grid,cuhk03] [--no-pooled]

Data (read ../shared/README.md): VIPeR, PRID 2011 and GRID (the PETA copies) and CUHK03's labelled
validation part: people photographed by two or more different cameras. They are evaluation sets:
nothing here is trained or tuned on them. Every default the product uses (feature recipe, matching
threshold) comes from other data (3DPeS = tuning, PETS09/TUD proxies), see configs and the note.

1. ReID, `all-gallery` protocol: every image a query, gallery = all images of the OTHER cameras of the
   set (distractors included); and the published single-shot protocols (VIPeR 316/316, PRID 100 vs 649,
   GRID 125 vs 900, CUHK03 100 vs 100; 10 random splits, 20 for CUHK03; mean and std). Rows per lever:
   `MSMT17 alone +centering` = the single OSNet x0.25 MSMT17 model (the product before the ensemble),
   `reference` = the product's embedding (`embed.reid_weights`: MSMT17 + Market-1501; `--flip`: flip TTA), trained
   BatchNorm statistics (what image search compares a query photo with), `+camera centering` (per-camera mean
   removed), `+re-ranking` (k-reciprocal, the paper's defaults), `+camera BN` (each camera's own BatchNorm
   statistics, with `embed.reid_camera_parts` body-part stripes) and `+camera BN +centering`: what
   cross-camera matching compares (`reid_camera_embedding`, then centred): the headline `<set>_rank1`.
   `--parts-sweep` (default on) prints stripes x weight on the TUNING half (where the defaults come from) and
   the chosen setting vs none on the HELD-OUT half (`<set>_rank1_heldout`, `<set>_rank1_heldout_no_parts`).
2. Cross-camera identities with the REAL matcher (`tasks.match_identities.match_cross_camera`, default
   `MatchConfig`): each (person, camera) image set is one tracklet (its images' mean embedding, and their mean
   under the camera's own BN statistics as `reid_camera_embedding`, as the embed stage makes them), per set
   and pooled (all sets at once: strangers of every set are candidates). Pairwise precision / recall /
   F1 over cross-camera tracklet pairs, share of multi-camera people given one global id holding only
   them, false merges; the same for the old product (MSMT17 alone, 0.85, no centering) as a ratio.
3. crops_per_s of the product's embedding (its backend, flip TTA when on) on this machine.
Ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from smarttrace.config import EmbedConfig, MatchConfig  # noqa: E402
from tasks.embed_reid import ReidEmbedder  # noqa: E402
from tasks.evaluate_crosscamera import (  # noqa: E402
    STANDARD_PROTOCOLS,
    PairFigures,
    ReidFigures,
    all_gallery,
    pair_metrics,
    standard_protocol,
)
from tasks.match_identities import match_cross_camera  # noqa: E402
from tasks.reid_datasets import DatasetError, load_images, load_set  # noqa: E402
from tasks.reid_rerank import center_by_camera, rerank_similarity  # noqa: E402

EVALUATION_SETS = ("viper", "prid", "grid", "cuhk03")
PRODUCT_ROW = "+camera BN +centering"  # what cross-camera matching compares (embed.reid_camera_bn + centering)
SINGLE_MODEL = "osnet_x0_25_msmt17.pt"  # the product's only ReID model before the ensemble
SPLIT_SEED = 0  # the named tuning split of the identity runs: half of each set's people
SWEEP = (0.4, 0.45, 0.5, 0.55, 0.6)  # cross-camera thresholds printed for the tuning split
# (stripes, weight) printed for the tuning half
PARTS_SWEEP = ((0, 0.0), (2, 0.5), (2, 1.0), (3, 0.5), (3, 1.0), (3, 1.5), (4, 1.0), (4, 1.5))
OLD_CROSS_CAMERA_THRESHOLD = 0.85  # the default before this benchmark existed (same-camera proxy)
log = logging.getLogger("crosscamera")


def _camera_bn_embed(embedder: ReidEmbedder, crops: list[np.ndarray], cameras: np.ndarray, parts: int,
                     parts_weight: float) -> np.ndarray:
    """Embeddings under each camera's own BatchNorm statistics with `parts` body-part stripes, as the embed stage
    makes them (`ReidEmbedder.embed_camera_bn`, flip TTA when the embedder has it); a camera with a single image
    keeps the trained statistics and has no stripes (zeros, as `match_identities.pad_vectors` pads them)."""
    features = np.zeros((len(crops), embedder.camera_dim(parts)), np.float32)
    for camera in np.unique(cameras):
        index = np.flatnonzero(cameras == camera)
        subset = [crops[i] for i in index]
        if len(subset) < 2:
            features[index, : embedder.dim] = embedder(subset)
        else:
            features[index] = embedder.embed_camera_bn(subset, parts, parts_weight)
    return features


def _reid_rows(images: pd.DataFrame, features: np.ndarray, camera_bn: np.ndarray | None,
               single: np.ndarray | None = None) -> dict[str, ReidFigures]:
    """All-gallery figures per lever on one set (`single`: the one-model features, centred, for comparison).

    The last row is the product's cross-camera recipe: camera BN + centering when camera BN ran, else centering.
    """
    persons, cameras = images.person.to_numpy(), images.camera.to_numpy()
    centred = center_by_camera(features, cameras)
    rows = {}
    if single is not None:
        alone = center_by_camera(single, cameras)
        rows["MSMT17 alone +centering"] = all_gallery(alone @ alone.T, persons, cameras)
    rows |= {
        "reference": all_gallery(features @ features.T, persons, cameras),
        "+camera centering": all_gallery(centred @ centred.T, persons, cameras),
        "+re-ranking": all_gallery(rerank_similarity(features @ features.T), persons, cameras),
        "+centering +re-ranking": all_gallery(rerank_similarity(centred @ centred.T), persons, cameras),
    }
    if camera_bn is not None:
        both = center_by_camera(camera_bn, cameras)
        rows["+camera BN"] = all_gallery(camera_bn @ camera_bn.T, persons, cameras)
        rows["+camera BN +centering"] = all_gallery(both @ both.T, persons, cameras)
    return rows


def _standard(name: str, images: pd.DataFrame, features: np.ndarray, centre: bool) -> ReidFigures:
    """Published protocol; with `centre`, camera means are taken over the split's probe and gallery images."""

    def similarity_of(probe: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        index = np.concatenate([probe, gallery])
        block = features[index]
        if centre:
            block = center_by_camera(block, images.camera.to_numpy()[index])
        return block[: len(probe)] @ block[len(probe):].T

    return standard_protocol(name, images, similarity_of)


def _unit_mean(vectors: np.ndarray) -> list[float]:
    mean = vectors.mean(axis=0)
    return (mean / np.linalg.norm(mean)).tolist()


def tracklets_of(name: str, images: pd.DataFrame, features: np.ndarray,
                 camera_features: np.ndarray | None = None) -> pd.DataFrame:
    """One tracklet per (person, camera): the mean of its images' embeddings, as the embed stage makes it
    (`camera_features`: the images under their camera's own BN statistics -> `reid_camera_embedding`)."""
    rows = []
    frame = images.assign(row=np.arange(len(images)))
    for (person, camera), group in frame.groupby(["person", "camera"], sort=True):
        index = group["row"].to_numpy()
        rows.append({"person": f"{name}/{person}", "camera_id": f"{name}-cam{camera}",
                     "reid_embedding": _unit_mean(features[index]), "num_crops": len(group),
                     "reid_camera_embedding": None if camera_features is None else _unit_mean(camera_features[index])})
    tracklets = pd.DataFrame(rows)
    tracklets["person_id"] = np.arange(1, len(tracklets) + 1)  # every tracklet its own in-camera person
    stamp = pd.Timestamp("2026-01-01", tz="UTC")  # the sets carry no times: no transit windows apply
    tracklets["start_timestamp"] = stamp
    tracklets["end_timestamp"] = stamp
    return tracklets


def identities(tracklets: pd.DataFrame, config: MatchConfig) -> tuple[PairFigures, float]:
    started = time.perf_counter()
    global_ids = match_cross_camera(tracklets, config).to_numpy()
    figures = pair_metrics(tracklets.person.to_numpy(), tracklets.camera_id.to_numpy(), global_ids)
    return figures, time.perf_counter() - started


def _print_reid(name: str, rows: dict[str, ReidFigures]) -> None:
    for label, f in rows.items():
        print(f"  {name:7s} {label:26s} rank-1 {f.rank1:.3f}  rank-5 {f.rank5:.3f}  mAP {f.mAP:.3f}  "
              f"({f.queries} queries)")


def _print_pairs(label: str, f: PairFigures, seconds: float) -> None:
    print(f"  {label:34s} P {f.precision:.3f}  R {f.recall:.3f}  F1 {f.f1:.3f}  one-id people "
          f"{f.people_whole}/{f.people_multi_camera} ({f.whole_share:.3f})  false merges {f.false_merges}  "
          f"[{f.predicted_pairs} predicted / {f.true_pairs} true pairs, {seconds:.1f} s]")


def tuning_people(people: np.ndarray, seed: int = SPLIT_SEED) -> np.ndarray:
    """The TUNING half of one set's people ("set/person" labels): half of them, drawn with a fixed seed."""
    people = np.array(sorted(set(people)))
    return np.random.default_rng(seed).choice(people, size=len(people) // 2, replace=False)


def tuning_mask(name: str, persons: np.ndarray, seed: int = SPLIT_SEED) -> np.ndarray:
    """True for images of the TUNING half of a set's people: the same draw as `split_people` makes."""
    labels = np.array([f"{name}/{p}" for p in persons])
    return np.isin(labels, tuning_people(labels, seed))


def _parts_sweep(name: str, crops: list[np.ndarray], images: pd.DataFrame, embedder: ReidEmbedder,
                 chosen: tuple[int, float]) -> dict[str, float]:
    """Camera-BN + centering rank-1 per (stripes, weight) on the TUNING half (printed: where the defaults come
    from), and the chosen setting vs no stripes on the HELD-OUT half (all-gallery within each half)."""
    persons, cameras = images.person.to_numpy(), images.camera.to_numpy()
    tuning = tuning_mask(name, persons)
    held: dict[tuple[int, float], float] = {}
    line = []
    for parts, weight in sorted(set(PARTS_SWEEP) | {chosen, (0, 0.0)}):
        vectors = center_by_camera(_camera_bn_embed(embedder, crops, cameras, parts, weight), cameras)
        figures = []
        for mask in (tuning, ~tuning):
            index = np.flatnonzero(mask)
            figures.append(all_gallery(vectors[index] @ vectors[index].T, persons[index], cameras[index]).rank1)
        line.append(f"{parts}x{weight:g} {figures[0]:.3f}")
        held[(parts, weight)] = figures[1]
    print(f"  {name:7s} TUNING half, camera BN + centering + stripes (parts x weight: rank-1): {', '.join(line)}")
    print(f"  {name:7s} HELD-OUT half: rank-1 {held[chosen]:.3f} with {chosen[0]} stripes x {chosen[1]:g}, "
          f"{held[(0, 0.0)]:.3f} without")
    return {f"{name}_rank1_heldout": held[chosen], f"{name}_rank1_heldout_no_parts": held[(0, 0.0)]}


def _reid_set(name: str, crops: list[np.ndarray], images: pd.DataFrame, embedder: ReidEmbedder,
              single_embedder: ReidEmbedder | None, camera_bn: bool, parts: int = 0,
              parts_weight: float = 0.0) -> tuple[dict[str, float], pd.DataFrame]:
    """One set's ReID figures (printed, and as JSON keys) and its tracklets for the identity runs."""
    out: dict[str, float] = {}
    features = embedder(crops)
    bn = _camera_bn_embed(embedder, crops, images.camera.to_numpy(), parts, parts_weight) if camera_bn else None
    single = None if single_embedder is None else single_embedder(crops)
    rows = _reid_rows(images, features, bn, single)
    _print_reid(name, rows)
    product = rows[PRODUCT_ROW if bn is not None else "+camera centering"]
    out[f"{name}_rank1"], out[f"{name}_rank5"], out[f"{name}_map"] = product.rank1, product.rank5, product.mAP
    out[f"{name}_rank1_reference"] = rows["reference"].rank1
    out[f"{name}_rank1_centred"] = rows["+camera centering"].rank1
    if single is not None:
        out[f"{name}_rank1_msmt17_alone"] = rows["MSMT17 alone +centering"].rank1
    out[f"{name}_rank1_rerank"] = rows["+centering +re-ranking"].rank1
    out[f"{name}_map_rerank"] = rows["+centering +re-ranking"].mAP
    for label, vectors, suffix in (("reference", features, "_reference"), ("product", bn, "")):
        std = _standard(name, images, features if vectors is None else vectors, label == "product")
        print(f"  {name:7s} standard ({label}){'':12s} rank-1 {std.rank1:.3f} ± {std.rank1_std:.3f}  rank-5 "
              f"{std.rank5:.3f}  mAP {std.mAP:.3f} ± {std.mAP_std:.3f}  [{STANDARD_PROTOCOLS[name][2]}]")
        out[f"{name}_rank1_std{suffix}"], out[f"{name}_map_std{suffix}"] = std.rank1, std.mAP
    reference = tracklets_of(name, images, features if single is None else single)
    return out, pd.concat({"product": tracklets_of(name, images, features, bn), "reference": reference})


def split_people(tracklets: pd.DataFrame, seed: int = SPLIT_SEED) -> pd.Series:
    """True for the TUNING half: half of each set's people, drawn with a fixed seed (the rest is held out)."""
    tuning = pd.Series(False, index=tracklets.index)
    sets = tracklets["person"].str.split("/").str[0]
    for name in sorted(sets.unique()):
        chosen = tuning_people(tracklets.loc[sets == name, "person"].to_numpy(), seed)
        tuning |= (sets == name) & tracklets["person"].isin(chosen)
    return tuning


def _numbered(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.reset_index(drop=True).assign(person_id=lambda f: np.arange(1, len(f) + 1))


def _identity_runs(tracklets: list[pd.DataFrame], pooled: bool) -> dict[str, float]:
    """Real match_cross_camera per set and pooled, on the HELD-OUT half of each set's people (the other half is
    the named tuning split the cross-camera threshold was read from: its sweep is printed, never a headline)."""
    config = MatchConfig()
    old = MatchConfig(cross_camera_min_similarity=OLD_CROSS_CAMERA_THRESHOLD, cross_camera_centering=False,
                      cross_camera_camera_bn=False)
    frames = [(frame.person.iloc[0].split("/")[0], frame) for frame in tracklets]
    if pooled and frames:
        frames.append((f"pooled {len(frames)} sets", pd.concat([f for _, f in frames])))
    out: dict[str, float] = {}
    if pooled and frames:
        product = frames[-1][1].loc["product"]
        tuning = _numbered(product[split_people(product).to_numpy()])
        print(f"\nTUNING split (seed {SPLIT_SEED}: half of each set's people), pooled, threshold sweep (this is what "
              "match.cross_camera_min_similarity was read from; not a result):")
        for threshold in SWEEP:
            figures, seconds = identities(tuning, config.model_copy(update={"cross_camera_min_similarity": threshold}))
            _print_pairs(f"tuning, threshold {threshold:.2f}", figures, seconds)
    print(f"\nCross-camera identities on the HELD-OUT half of each set's people, real match_cross_camera, default "
          f"MatchConfig (threshold {config.cross_camera_min_similarity}, centering {config.cross_camera_centering}, "
          f"camera BN {config.cross_camera_camera_bn}); each (person, camera) = one tracklet; reference = "
          f"{SINGLE_MODEL} alone at {OLD_CROSS_CAMERA_THRESHOLD}, no centering (the product before this benchmark)")
    for name, frame in frames:
        held_out = ~split_people(frame.loc["product"]).to_numpy()
        product = _numbered(frame.loc["product"][held_out])
        reference = _numbered(frame.loc["reference"][held_out])
        figures, seconds = identities(product, config)
        _print_pairs(f"{name} (product)", figures, seconds)
        before, seconds = identities(reference, old)
        _print_pairs(f"{name} (reference)", before, seconds)
        if name.startswith("pooled"):
            out.update(crosscam_pair_precision=figures.precision, crosscam_pair_recall=figures.recall,
                       crosscam_pair_f1=figures.f1, crosscam_one_id_share=figures.whole_share,
                       crosscam_false_merges=figures.false_merges,
                       crosscam_pair_f1_reference=before.f1, crosscam_pair_precision_reference=before.precision,
                       crosscam_pair_f1_ratio=figures.f1 / before.f1 if before.f1 else float("inf"))
        else:
            out[f"{name}_pair_f1"], out[f"{name}_pair_precision"] = figures.f1, figures.precision
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--sets", default=",".join(EVALUATION_SETS))
    parser.add_argument("--weights", default="+".join(EmbedConfig().reid_weights),
                        help="ReID weights, several joined by '+' (default: the product's embed.reid_weights)")
    parser.add_argument("--single", default=SINGLE_MODEL, help="the one-model comparison row ('' to skip)")
    parser.add_argument("--no-pooled", action="store_true", help="skip the pooled identity run")
    parser.add_argument("--camera-parts", type=int, default=EmbedConfig().reid_camera_parts,
                        help="body-part stripes in the camera vectors (default: embed.reid_camera_parts)")
    parser.add_argument("--parts-weight", type=float, default=EmbedConfig().reid_camera_parts_weight,
                        help="their weight (default: embed.reid_camera_parts_weight)")
    parser.add_argument("--parts-sweep", action=argparse.BooleanOptionalAction, default=True,
                        help="print the stripes x weight sweep on the tuning half and held-out figures")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=EmbedConfig().reid_flip,
                        help="flip TTA (default: the product's embed.reid_flip)")
    parser.add_argument("--no-camera-bn", action="store_true", help="skip camera BN (then the product row is "
                        "centering alone)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    embedder = ReidEmbedder(args.weights, flip=args.flip)
    single = args.single and args.single != args.weights
    single_embedder = ReidEmbedder(args.single, flip=args.flip) if single else None
    out: dict[str, float | int | str] = {}
    tracklets, crops_total, embed_seconds = [], 0, 0.0
    print(f"ReID across real cameras, OSNet {args.weights} ({embedder.dim}-d), flip TTA {'on' if args.flip else 'off'}"
          f", {embedder.backend}; protocol 'all-gallery' unless named")
    for name in args.sets.split(","):
        try:
            crops, reid_set = load_images(load_set(name, args.data))
        except DatasetError as exc:
            print(f"  {name}: skipped: {exc}")
            continue
        for line in reid_set.skipped:
            print(f"  {name}: skipped file {line}")
        started = time.perf_counter()
        embedder(crops[:256])  # the product's embedding speed, on this set's crops
        embed_seconds += time.perf_counter() - started
        crops_total += len(crops[:256])
        figures, frame = _reid_set(name, crops, reid_set.images, embedder, single_embedder, not args.no_camera_bn,
                                   args.camera_parts, args.parts_weight)
        out.update(figures)
        if args.parts_sweep and not args.no_camera_bn:
            out.update(_parts_sweep(name, crops, reid_set.images, embedder, (args.camera_parts, args.parts_weight)))
        tracklets.append(frame)
    out.update(_identity_runs(tracklets, not args.no_pooled))
    out["crops_per_s"] = crops_total / embed_seconds if embed_seconds else 0.0
    out["flip_tta"] = bool(args.flip)
    out["protocol"] = ("all-gallery (every image a query vs all images of the other cameras); <set>_rank1 = camera BN "
                       "+ centering (what cross-camera matching compares); *_std = published")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
