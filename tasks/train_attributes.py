"""Train the PETA attribute model on a CPU in minutes: `smarttrace train attributes` runs this.

How it stays cheap on 2 cores (`tasks/attribute_inputs.py` prepares what the epochs read):
- default (`shared="stem"`): conv1-conv2 (79% of the compute) stay the ReID model's, so each image
  goes through them once and the output is cached (on disk, keyed by the images, input size, shared
  layers and weights); the epochs train conv3 onwards and the head on mirrored and shifted maps,
  ~20 s per epoch. `shared="trunk"` keeps conv3 frozen too (seconds per epoch).
- `shared="none"`: every layer is trained on images decoded once into memory and augmented every
  step (mirror, shift): ~1 min per epoch, no better on validation (`TrainConfig.shared` has the figures).
TownCentre holds ~31 near-identical video frames per person, so at most
`max_images_per_person` evenly spaced images of a person are used, in every split.

Data: the train people of all seven PETA subsets here by default. VIPeR, PRID and GRID are the
cross-camera ReID test sets, which the attribute model never feeds (see `tasks/peta.py`; `subsets` =
`REID_CLEAN_SUBSETS` gives a model that may). The split is person-disjoint per subset with a fixed seed
and written beside the weights. Outputs, each published by rename: the weights, `<stem>.split.json`
and `<stem>.manifest.json` (data, split, code, seed, settings, val/test metrics, sha256, licence).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from smarttrace.assets import cache_dir, manifest_path, resolve, sha256_of
from smarttrace.lineage import code_version
from tasks import attribute_metrics as metrics
from tasks.attribute_inputs import augment, decode_images, encode_trunk, images_to_tensor, trunk_cache_key
from tasks.attribute_model import DEFAULT_ATTRIBUTE_WEIGHTS, AttributeModel, AttributeNet, region_mask
from tasks.attribute_vocab import ATTRIBUTE_NAMES, PETA35
from tasks.peta import (
    DEFAULT_FRACTIONS,
    DEFAULT_SUBSETS,
    PETA_LICENCE,
    REID_TEST_SUBSETS,
    PetaData,
    PetaError,
    load_peta,
    reid_test_sets_seen,
    split_by_person,
    write_split,
)

log = logging.getLogger("smarttrace.train_attributes")

BACKBONE = "osnet_x0_25_msmt17.pt"


@dataclass
class TrainConfig:
    """Everything that decides the trained model; all of it goes into the manifest."""

    peta: Path
    out: Path = field(default_factory=lambda: cache_dir() / DEFAULT_ATTRIBUTE_WEIGHTS)
    # PETA subsets (their train people). All seven vs 3DPeS + MIT + TownCentre + i-LID, stem recipe, seed 0, on the
    # validation and the 771 test images of those four subsets (benchmarks/attributes.py, 2026-12-06): validation mA
    # 0.687 vs 0.669, test mA 0.686 vs 0.661, F1 0.707 vs 0.690; all seven subsets' test people: 0.683 / 0.708
    # (bands' means; band_pool below).
    subsets: tuple[str, ...] = DEFAULT_SUBSETS
    epochs: int = 12  # validation mA levels off by then (manifest "history" of the 2026-12-05 runs)
    max_steps: int | None = None  # stop after this many optimiser steps (smoke tests)
    seed: int = 0
    # The ReID embedder's input. trunk_pool (shared="trunk" only): its conv3 maps as they are (16x8), or pooled.
    # Pool 1 vs the earlier 2x2 pool (8x4) on PETA, same split and seed (benchmarks/attributes.py, 2026-12-05):
    # validation mA 0.651 vs 0.636; test mA 0.641 vs 0.628, F1 0.683 vs 0.664, text mAP 0.420 vs 0.371; the top
    # then costs 4x (0.23 of a ReID pass in PyTorch).
    input_hw: tuple[int, int] = (256, 128)
    trunk_pool: int = 1
    batch_size: int = 32
    lr: float = 1e-3  # head; the fine-tuned top uses lr * TOP_LR_FACTOR
    weight_decay: float = 5e-4
    max_images_per_person: int = 8
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    finetune_top: bool = True  # False: frozen backbone, head only (the ablation baseline)
    # Which layers stay the ReID model's (their maps come from the ReID pass in the embed stage): "stem" = conv1-conv2,
    # conv3 onwards trained (at TRUNK_LR_FACTOR x lr); "trunk" = conv1-conv3; "none" = every layer trained on augmented
    # images, the model's own pass. PETA, same split and seed, 12 epochs (benchmarks/attributes.py, 2026-12-05):
    #   validation mA / test mA / test F1: trunk 0.651 / 0.641 / 0.683 (8 epochs), stem 0.669 / 0.661 / 0.690,
    #   none 0.669 / 0.659 / 0.697;
    #   attribute seconds / the demo's embed stage without attributes: trunk 2.5%, stem 5.8%, none 14-19% (over the
    #   issue's 10%: its own OpenVINO pass costs 1.38 ReID passes, the stem model's layers 0.37).
    shared: str = "stem"
    loss_weights: str = "deepmar"  # "deepmar" exp(1-p)/exp(p), "balanced" 1/2p / 1/2(1-p), or "none"
    region_head: bool = True  # attributes read only their body region's bands (+ the global feature)
    # Each body band's features: "avg" (its mean) or "avgmax" (mean and maximum; attribute_model.BAND_POOLS).
    # PETA, all seven subsets, seed 0 (2026-12-06): validation mA 0.699 vs 0.693 (0.691 with training seed 1); test
    # on all 804 people mA 0.688 / F1 0.705 vs 0.683 / 0.708 (seed 1: 0.689 / 0.702): chosen on validation, the test
    # difference is within the run-to-run spread (benchmarks/attributes.md).
    band_pool: str = "avgmax"
    feature_cache: bool = True  # keep trunk outputs on disk for the next run on the same data
    backbone: str = BACKBONE


TOP_LR_FACTOR = 0.3
TRUNK_LR_FACTOR = 0.3  # the trained trunk's learning rate, x lr (as the top's)
ARCHITECTURES = {
    "none": "osnet_x0_25 from MSMT17 ReID weights, every layer fine-tuned on augmented images, region-aware head "
    "(its own pass)",
    "stem": "osnet_x0_25: conv1-conv2 frozen from MSMT17 (read from the ReID pass), conv3-conv5/fc fine-tuned on "
    "mirrored and shifted maps, region-aware head",
    "trunk": "osnet_x0_25 (frozen conv1-3 from MSMT17, pooled trunk_pool x trunk_pool if > 1) + fine-tuned "
    "conv4/conv5/fc + region-aware head (reads the ReID pass's trunk)",
}


def select_images(data: PetaData, max_per_person: int) -> PetaData:
    """At most `max_per_person` evenly spaced images (file-name order) of each person."""
    by_person: dict[str, list] = {}
    for record in data.records:
        by_person.setdefault(record.person, []).append(record)
    kept = []
    for records in by_person.values():
        if max_per_person and len(records) > max_per_person:
            picks = np.unique(np.linspace(0, len(records) - 1, max_per_person).round().astype(int))
            records = [records[i] for i in picks]
        kept.extend(records)
    return PetaData(data.root, data.subsets, kept, data.ids_without_images, data.unknown_labels)


LOSS_WEIGHTS = ("deepmar", "balanced", "none")
BALANCED_MIN_RATIO = 0.02  # positive ratio floor for "balanced": a 1-person attribute would weigh ~1000x


def loss_weights(labels: np.ndarray, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-attribute (positive, negative) BCE weights from the training positive ratio p.

    "deepmar": exp(1 - p), exp(p) (Li et al. 2015 as used by Jia et al. 2020): a mild push towards
    rare positives. "balanced": 1 / 2p, 1 / 2(1 - p): each class weighs half, the loss whose
    optimum at threshold 0.5 is the balanced accuracy that mA measures. Mean weight is ~1 for both.
    """
    ratio = torch.from_numpy(labels.mean(0).astype(np.float32))
    if kind == "deepmar":
        return torch.exp(1 - ratio), torch.exp(ratio)
    if kind == "balanced":
        ratio = ratio.clamp(BALANCED_MIN_RATIO, 1 - BALANCED_MIN_RATIO)
        return 0.5 / ratio, 0.5 / (1 - ratio)
    if kind == "none":
        return torch.ones_like(ratio), torch.ones_like(ratio)
    raise ValueError(f"loss weights '{kind}': expected one of {', '.join(LOSS_WEIGHTS)}")


def _augmented(net: AttributeNet, inputs: torch.Tensor, flip: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A training batch as `head` reads it: images mirrored and shifted; conv1-conv2 maps (32 x 16 cells) mirrored
    and shifted by whole cells; conv3 maps (16 x 8) mirrored only (as those models were trained)."""
    x = _as_input(inputs)
    if inputs.dtype == torch.uint8 or net.shared == "stem":
        return augment(x, generator)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def _as_input(inputs: torch.Tensor) -> torch.Tensor:
    """What `head` reads from a batch of what the epochs read: uint8 images (nothing shared) or float16 maps."""
    return images_to_tensor(inputs) if inputs.dtype == torch.uint8 else inputs.float()


def _features(net: AttributeNet, inputs: torch.Tensor, mirror: bool) -> torch.Tensor:
    """The head's input features of cached maps or images (optionally mirrored), for the head-only ablation."""
    x = _as_input(inputs)
    return net.features(net.trunk[net.depth :](x.flip(3) if mirror else x))


@torch.inference_mode()
def predict_logits(net: AttributeNet, inputs: torch.Tensor, batch: int = 128) -> np.ndarray:
    """Eval-mode logits for decoded images or cached trunk maps (`tasks.attribute_inputs`)."""
    net.eval()
    out = [net.head(_as_input(inputs[i : i + batch])).numpy() for i in range(0, len(inputs), batch)]
    return np.concatenate(out) if out else np.zeros((0, net.classifier.out_features), np.float32)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def evaluate(labels: np.ndarray, probabilities: np.ndarray, names: Sequence[str] = ATTRIBUTE_NAMES,
             threshold: metrics.Threshold = metrics.DECISION_THRESHOLD) -> dict:  # fmt: skip
    """Headline figures: mA over PETA35 and over all attributes, instance acc / prec / rec / F1 (all attributes),
    at `threshold` (one for all attributes, or one per column of `probabilities`)."""
    columns = [list(names).index(n) for n in PETA35 if n in names]
    scores = metrics.attribute_scores(labels, probabilities, threshold)
    predicted = metrics.binarize(probabilities, threshold)
    return {
        "mA": metrics.mean_accuracy(labels[:, columns], predicted[:, columns]),
        "mA_all": scores.mA,
        "accuracy": scores.accuracy,
        "precision": scores.precision,
        "recall": scores.recall,
        "f1": scores.f1,
        "images": scores.n_images,
    }


class _Progress:
    """A tqdm bar on a terminal; otherwise a log line with counts, rate and ETA every ~5% of steps."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.monotonic()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="step", desc="train attributes")
        self.every = max(1, total // 20)

    def step(self, loss: float) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.3f}")
        elif self.done % self.every == 0 or self.done == self.total:
            elapsed = time.monotonic() - self.started
            rate = self.done / max(elapsed, 1e-6)
            log.info("step %d/%d  loss %.4f  %.2f steps/s  ETA %.0f s", self.done, self.total, loss, rate,
                     (self.total - self.done) / rate)  # fmt: skip

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _fit(net: AttributeNet, config: TrainConfig, maps: torch.Tensor, labels: np.ndarray,
         val_maps: torch.Tensor, val_labels: np.ndarray) -> tuple[list[dict], int]:  # fmt: skip
    """Optimise the unshared layers + head (or the head alone); keep the epoch with the best validation mA.

    `maps`: what `AttributeNet.encode` gives, cached (float16 maps of the shared layers), or uint8 images when
    nothing is shared; augmented every step (`_augmented`)."""
    generator = torch.Generator().manual_seed(config.seed)
    w_pos, w_neg = loss_weights(labels, config.loss_weights)
    target = torch.from_numpy(labels.astype(np.float32))
    frozen_features = None
    trained = [net.trunk[net.depth :], net.top, net.fc]  # after the shared layers
    for p in net.trunk.parameters():
        p.requires_grad_(False)
    for p in (p for module in trained for p in module.parameters()):
        p.requires_grad_(config.finetune_top)
    if not config.finetune_top:  # head only: the backbone's features (and their flips) never change
        net.eval()
        with torch.inference_mode():
            frozen_features = torch.stack([
                torch.cat([_features(net, maps[i : i + 256], mirror) for i in range(0, len(maps), 256)])
                for mirror in (False, True)
            ])  # fmt: skip
    groups = [{"params": net.classifier.parameters(), "lr": config.lr}]
    if config.finetune_top:
        groups.append({"params": list(net.top.parameters()) + list(net.fc.parameters()),
                       "lr": config.lr * TOP_LR_FACTOR})  # fmt: skip
        if net.depth < len(net.trunk):
            groups.append({"params": list(net.trunk[net.depth :].parameters()), "lr": config.lr * TRUNK_LR_FACTOR})
    optimiser = torch.optim.Adam(groups, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(maps) / config.batch_size))
    total = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    progress = _Progress(total)
    history: list[dict] = []
    best = (-1.0, copy.deepcopy(net.state_dict()), 0)
    step = 0
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(len(maps), generator=generator)
        losses = []
        net.train(config.finetune_top)  # BatchNorm statistics adapt only where layers are trained
        net.trunk[: net.depth].eval()  # the shared layers stay the ReID model's, statistics included
        net.dropout.train()
        for start in range(0, len(order), config.batch_size):
            if step >= total:
                break
            index = order[start : start + config.batch_size]
            flip = torch.rand(len(index), generator=generator) < 0.5
            y = target[index]
            if frozen_features is not None:
                features = torch.where(flip[:, None], frozen_features[1][index], frozen_features[0][index])
                logits = F.linear(net.dropout(features), net.classifier.weight * net.mask, net.classifier.bias)
            else:
                logits = net.head(_augmented(net, maps[index], flip, generator))
            weight = y * w_pos + (1 - y) * w_neg
            loss = F.binary_cross_entropy_with_logits(logits, y, weight=weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
            step += 1
            losses.append(loss.item())
            progress.step(losses[-1])
        val = evaluate(val_labels, sigmoid(predict_logits(net, val_maps))) if len(val_maps) else {}
        history.append({"epoch": epoch, "steps": step, "loss": float(np.mean(losses)) if losses else None, **val})
        log.info("epoch %d: loss %.4f, val mA %.4f F1 %.4f", epoch, history[-1]["loss"] or 0,
                 val.get("mA", float("nan")), val.get("f1", float("nan")))  # fmt: skip
        score = val.get("mA", float("nan"))
        if np.isnan(score) or score > best[0]:  # no usable validation set: keep the last epoch
            best = (-1.0 if np.isnan(score) else score, copy.deepcopy(net.state_dict()), epoch)
        if step >= total:
            break
    progress.close()
    net.load_state_dict(best[1])
    return history, best[2] or len(history)


def _write_atomic(path: Path, write) -> None:  # noqa: ANN001 - write(part_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    write(part)
    os.replace(part, path)


def _data_rule(subsets: Sequence[str]) -> str:
    """The manifest's word on where this model may be used, from the ReID test sets it saw (tasks/peta.py)."""
    seen = reid_test_sets_seen(subsets)
    if not seen:
        return (f"trained on the train people of {', '.join(subsets)} only: may feed ReID / cross-camera figures on "
                f"{', '.join(REID_TEST_SUBSETS)}, which it never saw (its cross-domain test set)")  # fmt: skip
    return (f"trained on the train people of {', '.join(subsets)}: it saw {', '.join(seen)} (cross-camera ReID test "
            "sets), so it must never feed a ReID or cross-camera figure reported on them; attribute figures are on "
            "their held-out people (person-disjoint)")  # fmt: skip


def split_path(weights: Path) -> Path:
    return weights.with_name(weights.stem + ".split.json")


def train_attributes(config: TrainConfig) -> dict:
    """Load PETA, split by person, train, evaluate val/test, write weights + split + manifest; returns the manifest."""
    started = time.monotonic()
    out = Path(config.out).expanduser()
    torch.manual_seed(config.seed)
    available = load_peta(config.peta, config.subsets)
    data = select_images(available, config.max_images_per_person)
    assignment = split_by_person(data.records, config.seed, config.fractions)
    write_split(split_path(out), assignment, config.seed, config.fractions)
    backbone = resolve(config.backbone)
    mask = region_mask(ATTRIBUTE_NAMES, band_pool=config.band_pool) if config.region_head else None
    net = AttributeNet(len(ATTRIBUTE_NAMES), mask, trunk_pool=config.trunk_pool, shared=config.shared,
                       band_pool=config.band_pool)  # fmt: skip
    net.load_reid_weights(backbone)
    paths = [r.path for r in data.records]
    if config.shared == "none":
        encoded = decode_images(paths, config.input_hw)
    else:
        key = trunk_cache_key(paths, config.input_hw, backbone, config.trunk_pool, config.shared) \
            if config.feature_cache else ""  # fmt: skip
        encoded = encode_trunk(net, paths, config.input_hw, key)
    kept = [r for r, ok in zip(data.records, encoded.keep, strict=True) if ok]
    labels = np.stack([r.labels for r in kept])
    sides = np.array([assignment[r.person] for r in kept])
    maps = {side: encoded.maps[torch.from_numpy(np.flatnonzero(sides == side))] for side in ("train", "val", "test")}
    ys = {side: labels[sides == side] for side in ("train", "val", "test")}
    if len(maps["train"]) == 0:
        raise PetaError(f"{config.peta}: no training images left after the split (subsets {config.subsets})")
    log.info("training on %d images (%d val, %d test), %d skipped", len(maps["train"]), len(maps["val"]),
             len(maps["test"]), len(encoded.skipped))  # fmt: skip
    history, best_epoch = _fit(net, config, maps["train"], ys["train"], maps["val"], ys["val"])
    w_pos, w_neg = loss_weights(ys["train"], config.loss_weights)
    net.logit_offset.copy_(torch.log(w_pos / w_neg))  # the prior shift the weighted loss puts into the logits
    figures = {}
    for side in ("val", "test"):
        if len(maps[side]):
            logits = predict_logits(net, maps[side])
            raw, calibrated = sigmoid(logits), sigmoid(logits - net.logit_offset.numpy())
            figures[side] = evaluate(ys[side], raw)
            figures[side]["ece"] = metrics.expected_calibration_error(ys[side], raw)
            figures[side]["brier"] = metrics.brier_score(ys[side], raw)
            figures[side]["ece_calibrated"] = metrics.expected_calibration_error(ys[side], calibrated)
            figures[side]["brier_calibrated"] = metrics.brier_score(ys[side], calibrated)
    model = AttributeModel(net, ATTRIBUTE_NAMES, config.input_hw)
    _write_atomic(out, lambda part: torch.save(model.checkpoint(), part))
    sha = sha256_of(out)
    counts = {s: int((sides == s).sum()) for s in ("train", "val", "test")}
    manifest = {
        "asset": "peta_attributes_osnet_x0_25",
        "file": out.name,
        "sha256": sha,
        "names": list(ATTRIBUTE_NAMES),
        "architecture": f"{ARCHITECTURES[config.shared]}; bands pooled: {config.band_pool}",
        "backbone": {"file": backbone.name, "sha256": sha256_of(backbone)},
        "data": {
            "peta_root": str(Path(config.peta).resolve()),
            "subsets": list(data.subsets),
            "images_available_per_subset": available.image_counts(),
            "images_used_per_subset": data.image_counts(),
            "people_per_subset": data.person_counts(),
            "max_images_per_person": config.max_images_per_person,
            "images_per_split": counts,
            "skipped_unreadable": encoded.skipped,
            "ids_without_images": data.ids_without_images,
            "labels_outside_vocabulary": dict(data.unknown_labels),
            "reid_test_sets_seen": sorted(reid_test_sets_seen(data.subsets)),
            "rule": _data_rule(data.subsets),
        },
        "split": {"file": split_path(out).name, "seed": config.seed, "fractions": list(config.fractions),
                  "unit": "person"},  # fmt: skip
        "settings": {**{k: v for k, v in asdict(config).items() if k not in ("peta", "out")},
                     "best_epoch": best_epoch},  # fmt: skip
        "metrics": {**figures, "history": history, "headline": "mA over PETA35 at threshold 0.5"},
        "code": code_version(),
        "training_seconds": round(time.monotonic() - started, 1),
        "licence": PETA_LICENCE,
    }
    _write_atomic(manifest_path(out), lambda part: part.write_text(json.dumps(manifest, indent=1, default=str)))
    log.info("wrote %s (sha256 %s) and %s in %.0f s", out, sha[:12], manifest_path(out).name,
             manifest["training_seconds"])
    return manifest
