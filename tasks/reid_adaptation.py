"""Adapt OSNet to a deployment's own cameras, with labels taken for free from its own tracklets.

Why: the zoo weights (MSMT17) meet new viewpoints, lighting and resolution in every deployment.
Inside one camera the tracker already says which boxes are one person (a tracklet), and two
tracklets on screen at the same time are two people. That gives identity labels without anyone
annotating: positives = crops of one tracklet; negatives = crops of a tracklet of the same camera
that co-occurs with it in time. Tracklets that never co-occur are NOT used as negatives: they may
well be one person leaving and coming back, which is exactly what ReID must learn to join.

Recipe (small data, CPU, minutes): start from the current weights, freeze the stem (`conv1`,
`conv2`) and the BatchNorm statistics, fine-tune the rest with a low learning rate and a
batch-hard triplet loss over P tracklets x K crops per step, batches built around a tracklet and
its co-occurring ones so every batch holds real negatives. An optional classification head over
tracklet ids (label smoothing) exists but is off by default: it pushes every pair of tracklets
apart, re-entries of one person included.

Plain PyTorch: no Prefect, Qdrant or Streamlit here; the CLI (`smarttrace adapt-reid`) wraps it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch

from tasks.detections import crop_xyxy, iou_xyxy
from tasks.embed_reid import IMAGENET_MEAN, IMAGENET_STD, INPUT_HW, model_name_of
from tasks.select_crops import crop_quality, select_crops
from tasks.video import DecodeReport, iter_frames

log = logging.getLogger("smarttrace.adapt")
ADAPTED_NAME = "osnet_x0_25_adapted.pt"  # keeps the osnet_x0_25 prefix: model_name_of() reads the architecture
FROZEN_PREFIXES = ("conv1.", "conv2.")  # the stem: generic edges/colours, least to gain, most to overfit


@dataclass(frozen=True)
class AdaptConfig:
    """What the adaptation set and the fine-tuning use; defaults sized for a demo run on 2 CPU cores."""

    # --- adaptation set
    crops_per_tracklet: int = 16  # training crops per tracklet, one per equal slice of its life
    min_crops: int = 4  # a tracklet with fewer usable crops teaches nothing reliable about its person
    min_crop_height: float = 40.0  # pixels; as EmbedConfig.min_crop_height (OSNet sees noise below ~40 px)
    max_overlap_iou: float = 0.3  # as EmbedConfig.max_overlap_iou: a crop showing two people is a bad label
    # Two tracklets are negatives when both are detected on at least this many frames together with
    # boxes apart (IoU below max_cooccur_iou): one co-occurring frame can be a tracker glitch, and two
    # heavily overlapping boxes may be one person detected twice.
    min_cooccur_frames: int = 3
    max_cooccur_iou: float = 0.5
    max_tracklets: int | None = None  # keep the N tracklets with the most usable crops (cost cap)
    min_tracklets: int = 3  # fewer usable tracklets than this: nothing worth adapting to
    # --- training
    epochs: int = 4
    tracklets_per_batch: int = 8  # P
    crops_per_batch_tracklet: int = 4  # K
    learning_rate: float = 5e-5  # Adam; low on purpose: a few hundred crops must nudge, not retrain
    weight_decay: float = 5e-4
    margin: float = 0.3  # triplet margin on Euclidean distance of L2-normalised features (range 0..2)
    ce_weight: float = 0.0  # weight of the tracklet-id classification loss (0 = off, see module doc)
    label_smoothing: float = 0.1
    freeze_bn: bool = True  # keep the zoo's BatchNorm statistics: a batch of 32 crops estimates them badly
    seed: int = 0


@dataclass
class AdaptationSet:
    """Labelled crops of one run: which tracklets, which boxes, and which tracklet pairs are strangers.

    ``tracklets``: one row per label (0..n-1, in camera / tracklet order) with ``camera_id``,
    ``tracklet_id``, ``start_frame``, ``end_frame``, ``num_crops``. ``crops``: the boxes to cut
    (``label``, ``camera_id``, ``tracklet_id``, ``frame_index``, ``x1..y2`` pixels, ``quality``).
    ``negatives``: (n, n) symmetric bool, True where two tracklets surely show different people.
    ``skipped``: tracklets left out, by reason.
    """

    tracklets: pd.DataFrame
    crops: pd.DataFrame
    negatives: np.ndarray
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def num_labels(self) -> int:
        return len(self.tracklets)

    def negative_pairs(self) -> list[tuple[int, int]]:
        """Label pairs (a < b) that are negatives."""
        rows, cols = np.nonzero(np.triu(self.negatives, k=1))
        return [(int(a), int(b)) for a, b in zip(rows, cols, strict=True)]


def _cooccurring_pairs(tracks: pd.DataFrame, min_frames: int, max_iou: float) -> set[tuple[int, int]]:
    """Track id pairs (a < b) of one camera detected together, boxes apart, on >= min_frames frames."""
    detected = tracks.loc[~tracks["interpolated"], ["frame_index", "track_id", "x1", "y1", "x2", "y2"]]
    counts: dict[tuple[int, int], int] = {}
    for _, rows in detected.groupby("frame_index"):
        if len(rows) < 2:
            continue
        ids = rows["track_id"].to_numpy()
        iou = iou_xyxy(rows[["x1", "y1", "x2", "y2"]].to_numpy(np.float64), rows[["x1", "y1", "x2", "y2"]].to_numpy(
            np.float64))
        first, second = np.triu_indices(len(rows), k=1)
        for i, j in zip(first, second, strict=True):
            if iou[i, j] < max_iou and ids[i] != ids[j]:
                key = (int(min(ids[i], ids[j])), int(max(ids[i], ids[j])))
                counts[key] = counts.get(key, 0) + 1
    return {pair for pair, n in counts.items() if n >= min_frames}


def build_adaptation_set(
    tracks: pd.DataFrame,
    tracklets: pd.DataFrame,
    frame_sizes: Mapping[str, tuple[int, int]],
    config: AdaptConfig = AdaptConfig(),
) -> AdaptationSet:
    """Pick the tracklets worth training on, their crops spread over their life, and the negative pairs.

    ``tracks``: rows of the tracks artifacts (all cameras; ``camera_id``, ``frame_index``, ``track_id``,
    box, ``confidence``, ``interpolated``). ``tracklets``: rows of the tracklets artifacts (``camera_id``,
    ``tracklet_id``): only tracklets listed there are candidates. ``frame_sizes``: (height, width)
    pixels of each camera's frames, for the cut-by-the-edge test. A tracklet qualifies when at least
    ``min_crops`` of its sampled crops are usable (tall enough, inside the frame, not overlapped,
    detected: the rules of the embed stage); labels are contiguous 0..n-1 in (camera, tracklet) order.
    """
    candidates = set(zip(tracklets["camera_id"].astype(str), tracklets["tracklet_id"].astype(int), strict=True))
    skipped = {"no usable crops": 0, "too few usable crops": 0, "over max_tracklets": 0}
    chosen_by_camera: dict[str, pd.DataFrame] = {}
    tracks_by_camera: dict[str, pd.DataFrame] = {}
    usable_boxes: dict[tuple[str, int], int] = {}
    for camera_id, camera_tracks in tracks.groupby("camera_id", sort=True):
        camera_id = str(camera_id)
        camera_tracks = camera_tracks.loc[[(camera_id, int(t)) in candidates for t in camera_tracks["track_id"]]]
        if camera_tracks.empty:
            continue
        if camera_id not in frame_sizes:
            raise ValueError(f"camera '{camera_id}': frame size unknown (needed to drop crops cut by the edge)")
        quality = crop_quality(camera_tracks, frame_sizes[camera_id], config.min_crop_height, config.max_overlap_iou)
        chosen = select_crops(camera_tracks, quality, config.crops_per_tracklet)
        picked = chosen.groupby("track_id").size()
        boxes = (quality > 0).groupby(camera_tracks["track_id"]).sum()
        for track_id in sorted(camera_tracks["track_id"].unique()):
            n = int(picked.get(track_id, 0))
            if n == 0:
                skipped["no usable crops"] += 1
            elif n < config.min_crops:
                skipped["too few usable crops"] += 1
            else:
                usable_boxes[(camera_id, int(track_id))] = int(boxes[track_id])
        chosen_by_camera[camera_id], tracks_by_camera[camera_id] = chosen, camera_tracks
    kept = sorted(usable_boxes)
    if config.max_tracklets is not None and len(kept) > config.max_tracklets:
        ranked = sorted(kept, key=lambda key: (-usable_boxes[key], key))  # most usable boxes first
        skipped["over max_tracklets"] = len(kept) - config.max_tracklets
        kept = sorted(ranked[: config.max_tracklets])
    label_of = {key: label for label, key in enumerate(kept)}
    negatives = np.zeros((len(kept), len(kept)), bool)
    tracklet_rows, crop_frames = [], []
    for camera_id, camera_tracks in tracks_by_camera.items():
        ids = [t for (c, t) in kept if c == camera_id]
        if not ids:
            continue
        chosen = chosen_by_camera[camera_id]
        chosen = chosen.loc[chosen["track_id"].isin(ids)]
        crop_frames.append(chosen.assign(camera_id=camera_id,
                                         label=[label_of[(camera_id, int(t))] for t in chosen["track_id"]]))
        mine = camera_tracks.loc[camera_tracks["track_id"].isin(ids)]
        for track_id, rows in mine.groupby("track_id"):
            tracklet_rows.append({
                "label": label_of[(camera_id, int(track_id))], "camera_id": camera_id, "tracklet_id": int(track_id),
                "start_frame": int(rows["frame_index"].min()), "end_frame": int(rows["frame_index"].max()),
                "num_crops": int((chosen["track_id"] == track_id).sum()),
            })
        for a, b in _cooccurring_pairs(mine, config.min_cooccur_frames, config.max_cooccur_iou):
            la, lb = label_of[(camera_id, a)], label_of[(camera_id, b)]
            negatives[la, lb] = negatives[lb, la] = True
    columns = ["label", "camera_id", "tracklet_id", "frame_index", "x1", "y1", "x2", "y2", "quality"]
    crops = (
        pd.concat(crop_frames).rename(columns={"track_id": "tracklet_id"})[columns]
        .sort_values(["label", "frame_index"]).reset_index(drop=True)
        if crop_frames else pd.DataFrame(columns=columns)
    )
    table = pd.DataFrame(tracklet_rows, columns=["label", "camera_id", "tracklet_id", "start_frame", "end_frame",
                                                 "num_crops"])
    return AdaptationSet(table.sort_values("label").reset_index(drop=True), crops, negatives,
                         {k: v for k, v in skipped.items() if v})


# ------------------------------------------------------------------------------------------------ crops


def _timeline(videos: Sequence[Path], camera_id: str, last_frame: int) -> Iterator[tuple[int, np.ndarray]]:
    """Frames of a camera's files back to back (the indices of the tracks artifact), up to last_frame."""
    offset = 0
    for path in videos:
        report = DecodeReport()
        for local_index, frame in iter_frames(Path(path), camera_id, report):
            yield offset + local_index, frame
            if offset + local_index >= last_frame:
                return
        offset += report.frames


def cut_crops(crops: pd.DataFrame, videos: Mapping[str, Sequence[Path]]) -> list[np.ndarray]:
    """Decode each camera once and cut the listed boxes (clipped to the frame), in ``crops`` row order."""
    out: list[np.ndarray | None] = [None] * len(crops)
    for camera_id, rows in crops.groupby("camera_id"):
        wanted: dict[int, list[int]] = {}
        positions = np.flatnonzero((crops["camera_id"] == camera_id).to_numpy())
        for position, frame_index in zip(positions, rows["frame_index"].to_numpy(), strict=True):
            wanted.setdefault(int(frame_index), []).append(int(position))
        boxes = crops[["x1", "y1", "x2", "y2"]].to_numpy()
        for frame_index, frame in _timeline(videos[str(camera_id)], str(camera_id), max(wanted)):
            for position in wanted.get(frame_index, []):
                out[position] = crop_xyxy(frame, boxes[position])
    missing = [i for i, crop in enumerate(out) if crop is None or crop.size == 0]
    if missing:
        raise RuntimeError(f"{len(missing)} training crops lie beyond the decodable video (first: row {missing[0]})")
    return out  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------- training


def batch_hard_triplet_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, negatives: torch.Tensor, margin: float
) -> tuple[torch.Tensor, int]:
    """Batch-hard triplet loss where only KNOWN strangers count as negatives.

    ``embeddings`` (B, d); ``labels`` (B,) tracklet labels; ``negatives`` (n, n) bool over labels.
    For each anchor: the farthest crop of its own tracklet and the closest crop of a tracklet marked
    negative to it (Euclidean distance); loss = mean of relu(d_pos - d_neg + margin) over anchors
    having both. Returns (loss, number of such anchors); with none, a zero that keeps the graph.
    """
    distances = torch.cdist(embeddings, embeddings).clamp_min(0)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=embeddings.device)
    positive = same & ~eye
    negative = negatives[labels][:, labels]
    valid = positive.any(dim=1) & negative.any(dim=1)
    if not bool(valid.any()):
        return embeddings.sum() * 0.0, 0
    hardest_positive = distances.masked_fill(~positive, float("-inf")).amax(dim=1)
    hardest_negative = distances.masked_fill(~negative, float("inf")).amin(dim=1)
    losses = torch.relu(hardest_positive - hardest_negative + margin)
    return losses[valid].mean(), int(valid.sum())


def _augment(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One training view of a BGR crop as RGB float (H, W, 3) in 0..1: translate/crop jitter, flip, mild colour."""
    height, width = INPUT_HW
    if rng.random() < 0.5:  # torchreid's Random2DTranslation: enlarge by 1/8, cut back at a random place
        big_h, big_w = int(round(height * 1.125)), int(round(width * 1.125))
        image = cv2.resize(crop, (big_w, big_h), interpolation=cv2.INTER_LINEAR)
        top, left = int(rng.integers(0, big_h - height + 1)), int(rng.integers(0, big_w - width + 1))
        image = image[top : top + height, left : left + width]
    else:
        image = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    rgb = image[:, :, ::-1].astype(np.float32) / 255.0
    brightness, contrast, saturation = rng.uniform(0.8, 1.2, size=3)  # mild: colour is part of identity
    rgb = rgb * brightness
    rgb = (rgb - rgb.mean()) * contrast + rgb.mean()
    grey = rgb.mean(axis=2, keepdims=True)
    rgb = (rgb - grey) * saturation + grey
    return np.clip(rgb, 0.0, 1.0)


def _to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    batch = (np.stack(images).astype(np.float32) - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(batch.transpose(0, 3, 1, 2).copy())


def _batches(adaptation: AdaptationSet, config: AdaptConfig, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Endless P x K batches (crop row indices): a seed tracklet with negatives, then its negatives, then others."""
    members = [np.flatnonzero(adaptation.crops["label"].to_numpy() == label) for label in range(adaptation.num_labels)]
    with_negatives = np.flatnonzero(adaptation.negatives.any(axis=1))
    k = config.crops_per_batch_tracklet
    while True:
        seed = int(rng.choice(with_negatives))
        partners = rng.permutation(np.flatnonzero(adaptation.negatives[seed]))
        others = rng.permutation(np.setdiff1d(np.arange(adaptation.num_labels), np.r_[seed, partners]))
        chosen = np.r_[seed, partners, others][: config.tracklets_per_batch].astype(int)
        yield np.concatenate([rng.choice(members[c], size=k, replace=len(members[c]) < k) for c in chosen])


def _build_model(base_weights: Path, num_classes: int) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torchreid.reid.models import build_model
        from torchreid.reid.utils import load_pretrained_weights

    model = build_model(model_name_of(base_weights), num_classes=num_classes, loss="triplet", pretrained=False)
    with contextlib.redirect_stdout(io.StringIO()):  # torchreid prints per-layer notes
        load_pretrained_weights(model, str(base_weights))
    return model


def _train_mode(model: torch.nn.Module, freeze_bn: bool) -> None:
    model.train()
    if freeze_bn:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


@dataclass
class AdaptResult:
    """The fine-tuned weights (classifier left out) and what training did."""

    state_dict: dict[str, torch.Tensor]
    steps: int
    seconds: float
    loss_first: float  # mean triplet loss over the first epoch's steps
    loss_last: float  # mean triplet loss over the last epoch's steps


def train_adapted(
    adaptation: AdaptationSet,
    crops: Sequence[np.ndarray],
    base_weights: Path,
    config: AdaptConfig = AdaptConfig(),
    steps: int | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> AdaptResult:
    """Fine-tune the base weights on the adaptation set (see the module doc for the recipe).

    An epoch is as many P x K batches as it takes to draw every crop once on average; ``steps``
    overrides epochs x that (tests). ``progress(step, total, loss)`` is called after every step;
    without it, a tqdm bar on a terminal, else a log line every tenth of the run.
    """
    if len(crops) != len(adaptation.crops):
        raise ValueError(f"{len(crops)} crops for {len(adaptation.crops)} rows of the adaptation set")
    if not adaptation.negatives.any():
        raise ValueError("no two tracklets co-occur in time: the adaptation set has no negative pair to learn from")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = _build_model(base_weights, adaptation.num_labels)
    trainable = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad = not name.startswith(FROZEN_PREFIXES)
        if parameter.requires_grad and (config.ce_weight > 0 or not name.startswith("classifier.")):
            trainable.append(parameter)
    optimiser = torch.optim.Adam(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    batch_crops = config.tracklets_per_batch * config.crops_per_batch_tracklet
    per_epoch = max(1, math.ceil(len(crops) / batch_crops))
    total = steps if steps is not None else config.epochs * per_epoch
    negatives = torch.from_numpy(adaptation.negatives)
    labels_all = torch.from_numpy(adaptation.crops["label"].to_numpy(np.int64))
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    bar = _progress_bar(total) if progress is None else None
    losses: list[float] = []
    started = time.perf_counter()
    _train_mode(model, config.freeze_bn)
    batches = _batches(adaptation, config, rng)
    for step in range(1, total + 1):
        rows = next(batches)
        images = _to_tensor([_augment(crops[i], rng) for i in rows])
        labels = labels_all[rows]
        logits, features = model(images)
        loss, _ = batch_hard_triplet_loss(torch.nn.functional.normalize(features, dim=1), labels, negatives,
                                                config.margin)
        losses.append(float(loss.detach()))
        if config.ce_weight > 0:
            loss = loss + config.ce_weight * criterion(logits, labels)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if progress is not None:
            progress(step, total, losses[-1])
        elif bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        elif step % max(1, total // 10) == 0 or step == total:
            log.info("adapt-reid: step %d/%d, triplet loss %.3f (%.0f s)", step, total, losses[-1],
                     time.perf_counter() - started)
    if bar is not None:
        bar.close()
    window = min(per_epoch, len(losses))
    state = {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("classifier.")}
    return AdaptResult(
        state_dict=state, steps=total, seconds=time.perf_counter() - started,
        loss_first=float(np.mean(losses[:window])), loss_last=float(np.mean(losses[-window:])),
    )


def _progress_bar(total: int):  # noqa: ANN202 - tqdm or None
    """A tqdm bar when stderr is a terminal; None (log lines instead) in CI and in files."""
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="adapt-reid", unit="step")


# ------------------------------------------------------------------------------------------------ output


def save_adapted(state_dict: Mapping[str, torch.Tensor], path: Path, manifest: dict[str, Any]) -> Path:
    """Write the weights (torchreid layout, manifest inside) and `<stem>.json` beside them, each by rename.

    The file loads with torchreid's ``load_pretrained_weights`` (it reads ``state_dict``) and so with
    ``ReidEmbedder(weights=path)``; its name must start with an OSNet architecture, as the zoo files do.
    """
    model_name_of(path)  # raises AssetError naming the file when the architecture cannot be told
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"state_dict": dict(state_dict), "smarttrace": json.loads(json.dumps(manifest, default=str))}
    _publish(path, lambda tmp: torch.save(payload, tmp))
    _publish(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=2, default=str)))
    return path


def _publish(path: Path, write: Callable[[str], Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def hyperparameters(config: AdaptConfig) -> dict[str, Any]:
    """The config as plain JSON values, for the manifest."""
    return {**asdict(config), "frozen": list(FROZEN_PREFIXES), "input_hw": list(INPUT_HW)}
