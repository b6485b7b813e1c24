"""Pedestrian attribute model: OSNet x0.25 (MSMT17 ReID weights) with a region-aware multi-label head.

Why this shape:
- Shared layers (`AttributeNet.shared`): the first layers stay the MSMT17 ReID network's, frozen, so
  the embed stage reads their maps from the ReID pass it runs anyway and the attribute model costs
  only the rest. Default since 2026-12-05 (format 3): "stem" = conv1-conv2 (79% of an OSNet pass in
  PyTorch), conv3 onwards trained: PETA validation mA 0.669, test 0.661 vs 0.641 when conv3 also
  stays frozen ("trunk"), at 5.8% of the demo's embed stage (`tasks/train_attributes.py` has the
  figures). "none": every layer trained, the model's own pass (no better on validation, 14-19%).
  What follows the shared layers runs on OpenVINO (`backend`, FP32, same logits as PyTorch).
- Training caches the shared layers' output once per image, so epochs run only the trained layers.
- `shares_trunk_with` checks that the ReID model's shared layers really are this model's (same input
  size, weights and statistics) before the pipeline takes that path (`ReidEmbedder.embed_sharing_trunk`).
- Format 2 models share conv1-conv3 ("trunk"): the 256x128 conv3 maps as they are (16x8, `trunk_pool`
  1: PETA test mA 0.641 vs 0.628) or average pooled 2x2 (`trunk_pool` 2: a 4x cheaper top). Format 1
  models (128x64 input, no pool) still load and run on their own input.
- Region-aware head: the last feature map is pooled over the whole person and over
  `STRIPES` horizontal bands; a fixed mask lets each attribute read only the bands where it lives
  (hair: head band; upper-body garment and colour: the upper bands; lower body: the lower bands;
  footwear: the bottom band) besides the global feature. So "red upper body" is read from the
  torso, not from red trousers.
- Each band is pooled two ways since 2026-12-06 (format 4, `band_pool="avgmax"`): its mean and its
  maximum, side by side. A bag strap or a hat fills little of a band, so its mean is mostly the
  clothes around it; the maximum keeps it. PETA validation mA 0.699 vs 0.693 for the mean alone
  (0.691 with another training seed); on the test people the difference is within the run-to-run
  spread (`benchmarks/attributes.md`). Models of formats 1-3 pool the mean only and still load.
- Trained with weighted BCE (DeepMAR-style weights exp(1-p) / exp(p) for positives / negatives,
  p = the positive ratio): that is the loss the PETA mA figures assume. Those probabilities sit
  above the true frequency for rare attributes; `calibrated=True` removes the weighting's prior
  shift (the logit offset log(w+/w-) = 1 - 2p) for scores that should read as frequencies.

The weights carry PETA's terms: research use only, no commercial use; cite Deng et al. ACM MM 2014.
By default it is trained on the train people of all seven PETA subsets here, VIPeR, PRID and GRID
(the cross-camera ReID test sets) included, so it must never feed a ReID figure on those: its
manifest lists them under `reid_test_sets_seen` (see `tasks/peta.py`).
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from smarttrace.assets import cache_dir, resolve, sha256_of, verify_against_manifest
from smarttrace.errors import AssetError
from tasks.attribute_vocab import ATTRIBUTE_NAMES
from tasks.embed_reid import INPUT_HW as REID_INPUT_HW
from tasks.embed_reid import SHARED_DEPTH, ReidEmbedder, osnet_trunk, quiet_stdout, resolve_backend

log = logging.getLogger("smarttrace.attributes")

DEFAULT_ATTRIBUTE_WEIGHTS = "peta_attributes_osnet_x0_25.pt"
ARCHITECTURE = "osnet_x0_25"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
STRIPES = 4  # horizontal bands of the feature map: head, upper torso, hips/thighs, legs/feet
TOP_CHANNELS = 128  # conv5 channels of OSNet x0.25
FC_DIM = 512  # OSNet's pretrained embedding layer
FORMAT_VERSION = 4  # 4: band_pool; 3: `shared` layers; 2: trunk_pool (shared-trunk models); 1: 128x64 input, no pool
SHARED_CHOICES = ("trunk", "stem", "none")  # see AttributeNet; absent from a checkpoint (formats 1-2): "trunk"
# How each band is pooled: its mean ("avg", formats 1-3) or its mean and its maximum side by side ("avgmax": a small
# thing such as a bag or a hat shows in a band's maximum even where its mean is the clothes around it).
BAND_POOLS = {"avg": 1, "avgmax": 2}

# Which bands (0 = top of the image) an attribute may read, by its PETA name prefix; the global
# feature is always read. Prefixes not listed (personal, carrying, accessory) read every band.
REGION_BANDS = {
    "hair": (0,),
    "upperBody": (0, 1, 2),
    "lowerBody": (2, 3),
    "footwear": (3,),
}


def n_features(band_pool: str = "avg", stripes: int = STRIPES) -> int:
    """Width of the head's input: the global embedding, then `stripes` bands per pooling of `band_pool`."""
    return FC_DIM + BAND_POOLS[band_pool] * stripes * TOP_CHANNELS


def region_mask(names: Sequence[str], stripes: int = STRIPES, band_pool: str = "avg") -> torch.Tensor:
    """(n_attributes, n_features(band_pool, stripes)) 0/1 mask of the features each attribute reads."""
    mask = torch.zeros(len(names), FC_DIM + stripes * TOP_CHANNELS)
    mask[:, :FC_DIM] = 1
    for i, name in enumerate(names):
        bands = next((b for prefix, b in REGION_BANDS.items() if name.startswith(prefix)), tuple(range(stripes)))
        for band in bands:
            mask[i, FC_DIM + band * TOP_CHANNELS : FC_DIM + (band + 1) * TOP_CHANNELS] = 1
    return torch.cat([mask] + [mask[:, FC_DIM:]] * (BAND_POOLS[band_pool] - 1), 1)


def _osnet() -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torchreid.reid.models import build_model

        return build_model(ARCHITECTURE, num_classes=1, pretrained=False)


class AttributeNet(nn.Module):
    """OSNet trunk (its first `shared` modules frozen as the ReID model's) -> top (conv4, conv5, fc) -> region-pooled
    linear head (logits).

    `shared`: which layers are the ReID pass's own, so the pipeline can read their maps instead of recomputing
    them: "trunk" (conv1-conv3), "stem" (conv1-conv2; conv3 is trained) or "none" (every layer trained, own pass).
    `encode` runs the shared layers (what training caches), `head` the rest.
    """

    def __init__(
        self, n_attributes: int, mask: torch.Tensor | None = None, dropout: float = 0.2, trunk_pool: int = 1,
        shared: str = "trunk", band_pool: str = "avg",
    ) -> None:  # fmt: skip
        super().__init__()
        if shared not in SHARED_CHOICES:
            raise ValueError(f"shared layers {shared!r}: expected one of {', '.join(SHARED_CHOICES)}")
        if band_pool not in BAND_POOLS:
            raise ValueError(f"band pooling {band_pool!r}: expected one of {', '.join(BAND_POOLS)}")
        self.band_pool = band_pool
        if trunk_pool != 1 and shared != "trunk":
            raise ValueError("trunk_pool pools the conv3 maps: it needs shared='trunk'")
        self.shared = shared
        self.depth = SHARED_DEPTH.get(shared, 0)  # modules of `trunk` computed by `encode`
        self.trunk_pool = int(trunk_pool)  # k x k average pool of the trunk maps before the top
        osnet = _osnet()
        self.trunk = osnet_trunk(osnet)
        self.top = nn.Sequential(osnet.conv4, osnet.conv5)
        self.fc = osnet.fc
        self.dropout = nn.Dropout(dropout)
        width = n_features(band_pool)
        if mask is not None and tuple(mask.shape) != (n_attributes, width):
            raise ValueError(f"region mask {tuple(mask.shape)}: expected {(n_attributes, width)} for {band_pool!r}")
        self.classifier = nn.Linear(width, n_attributes)
        self.register_buffer("mask", mask if mask is not None else torch.ones(n_attributes, width))
        # Prior shift of the weighted loss per attribute, subtracted for calibrated probabilities.
        self.register_buffer("logit_offset", torch.zeros(n_attributes))

    def load_reid_weights(self, path: Path) -> None:
        """Initialise trunk, top and fc from a torchreid OSNet checkpoint (the MSMT17 ReID model)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchreid.reid.utils import load_pretrained_weights
        osnet = _osnet()
        try:
            with quiet_stdout():
                load_pretrained_weights(osnet, str(path))
        except Exception as exc:
            raise AssetError(f"OSNet weights {path} could not be loaded: {exc}") from exc
        self.trunk.load_state_dict(osnet_trunk(osnet).state_dict())
        self.top.load_state_dict(nn.Sequential(osnet.conv4, osnet.conv5).state_dict())
        self.fc.load_state_dict(osnet.fc.state_dict())

    def features(self, trunk_maps: torch.Tensor) -> torch.Tensor:
        """(n, n_features(band_pool)): global embedding, then the bands' mean features (then their maxima)."""
        maps = self.top(trunk_maps)
        parts = [self.fc(maps.mean((2, 3))), _bands(F.adaptive_avg_pool2d(maps, (STRIPES, 1)))]
        if self.band_pool == "avgmax":
            parts.append(_bands(F.adaptive_max_pool2d(maps, (STRIPES, 1))))
        return torch.cat(parts, 1)

    def pool(self, trunk_maps: torch.Tensor) -> torch.Tensor:
        """The shared maps the rest reads: pooled `trunk_pool` x `trunk_pool` (the frozen part, cached in training)."""
        return F.avg_pool2d(trunk_maps, self.trunk_pool) if self.trunk_pool > 1 else trunk_maps

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Shared part: images -> (pooled) maps of the shared layers; the images themselves when nothing is shared."""
        return self.pool(self.trunk[: self.depth](images)) if self.depth else images

    def head(self, shared_maps: torch.Tensor) -> torch.Tensor:
        """Logits from `encode`'s output (what training runs on, from its cache when something is shared)."""
        maps = self.trunk[self.depth :](shared_maps)
        return F.linear(self.dropout(self.features(maps)), self.classifier.weight * self.mask,
                        self.classifier.bias)  # fmt: skip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(images))


def _bands(pooled: torch.Tensor) -> torch.Tensor:
    """(n, channels, STRIPES, 1) pooled maps -> (n, STRIPES * channels), band by band (the mask's layout)."""
    return pooled.flatten(2).transpose(1, 2).flatten(1)


class _Head(nn.Module):
    """The layers after the shared ones (pool, rest of the trunk, top, head) as one module, for the converter."""

    def __init__(self, net: AttributeNet) -> None:
        super().__init__()
        self.net = net.eval()

    def forward(self, shared_maps: torch.Tensor) -> torch.Tensor:
        return self.net.head(self.net.pool(shared_maps))


def preprocess(crops: Sequence[np.ndarray], input_hw: tuple[int, int]) -> torch.Tensor:
    """BGR uint8 crops of any size -> normalised (n, 3, H, W) float tensor, as the ReID embedder does."""
    batch = np.stack(
        [cv2.resize(c, (input_hw[1], input_hw[0]), interpolation=cv2.INTER_LINEAR)[:, :, ::-1] for c in crops]
    ).astype(np.float32)
    batch = (batch / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(batch.transpose(0, 3, 1, 2).copy())


class AttributeModel:
    """Trained attribute model: BGR crops in, (n, len(names)) float32 probabilities in [0, 1] out."""

    def __init__(
        self, net: AttributeNet, names: Sequence[str], input_hw: tuple[int, int],
        weights_path: Path | None = None, sha256: str = "", batch_size: int = 64, backend: str = "torch",
    ) -> None:  # fmt: skip
        self.net = net.eval()
        self.names: tuple[str, ...] = tuple(names)
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.weights_path = weights_path
        self.sha256 = sha256
        self.batch_size = batch_size
        # The model's own pass, and the layers after the ones it shares with the ReID pass, on OpenVINO: OSNet's
        # depthwise convolutions run several times faster there than in PyTorch on a CPU (tasks/reid_openvino.py).
        self.backend = resolve_backend(backend, torch.device("cpu")) if sha256 else "torch"
        self._openvino = self._openvino_head = None
        if self.backend == "openvino":
            from tasks.reid_openvino import OpenVinoModule

            stem = f"{Path(weights_path).stem}-{sha256[:12]}-v{FORMAT_VERSION}"
            folder = cache_dir() / "exports"
            self._openvino = OpenVinoModule(lambda: copy.deepcopy(self.net).eval(), folder / f"{stem}_openvino_attr",
                                            (3, *self.input_hw))  # fmt: skip
            if self.net.depth:  # the layers after the shared ones, for `logits_from_trunk`
                self._openvino_head = OpenVinoModule(lambda: _Head(copy.deepcopy(self.net)),
                                                     folder / f"{stem}_openvino_attr_head", self._shared_shape())

    @classmethod
    def load(
        cls, path_or_name: str | Path = DEFAULT_ATTRIBUTE_WEIGHTS, batch_size: int = 64, backend: str = "auto"
    ) -> AttributeModel:
        """Resolve (explicit path, then SMARTTRACE_MODEL_DIR, then the cache), check the manifest's sha256, load.

        `backend` runs the model's own pass: "auto" = OpenVINO when installed (same logits, FP32), else PyTorch.

        Raises AssetError when the file is absent, telling the user how to train it; the pipeline
        catches that and falls back to its colour rules.
        """
        explicit = Path(path_or_name).expanduser()
        if explicit.is_file():
            weights = verify_against_manifest(explicit)
        else:
            weights = resolve(path_or_name, allow_download=False)
        try:
            checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
            names = tuple(checkpoint["names"])
            net = AttributeNet(len(names), trunk_pool=int(checkpoint.get("trunk_pool", 1)),
                               shared=str(checkpoint.get("shared", "trunk")),
                               band_pool=str(checkpoint.get("band_pool", "avg")))  # fmt: skip
            net.load_state_dict(checkpoint["state_dict"])
            input_hw = tuple(checkpoint["input_hw"])
        except (OSError, RuntimeError, KeyError, TypeError, ValueError) as exc:
            raise AssetError(f"attribute model {weights} could not be loaded: {exc}") from exc
        return cls(net, names, input_hw, weights, sha256_of(weights), batch_size, backend)

    def checkpoint(self) -> dict:
        """What `load` reads back (tensors, strings and numbers only: loads with weights_only=True)."""
        return {
            "format_version": FORMAT_VERSION,
            "architecture": ARCHITECTURE,
            "names": list(self.names),
            "input_hw": list(self.input_hw),
            "stripes": STRIPES,
            "trunk_pool": self.net.trunk_pool,
            "shared": self.net.shared,
            "band_pool": self.net.band_pool,
            "state_dict": self.net.state_dict(),
        }

    @torch.inference_mode()
    def logits(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Raw (weighted-loss) logits, (n, len(names)) float32."""
        out = [np.zeros((0, len(self.names)), np.float32)]
        for start in range(0, len(crops), self.batch_size):
            batch = preprocess(crops[start : start + self.batch_size], self.input_hw)
            out.append(self._openvino.run(batch.numpy())[0] if self._openvino else self.net(batch).numpy())
        return np.concatenate(out).astype(np.float32)

    @property
    def shared_variant(self) -> str | None:
        """The ReID pass's output this model reads ("trunk": conv1-conv3 maps, "stem": conv1-conv2), or None."""
        return self.net.shared if self.net.depth else None

    def _shared_shape(self) -> tuple[int, ...]:
        """(C, h, w) of the shared layers' maps on this model's input."""
        with torch.inference_mode():
            return tuple(self.net.eval().trunk[: self.net.depth](torch.zeros(1, 3, *self.input_hw)).shape[1:])

    def shares_trunk_with(self, reid: ReidEmbedder) -> bool:
        """True when `reid`'s layers that this model shares (`shared_variant`) on its own input ARE this model's:
        same architecture, input size, weights and BatchNorm statistics (so not inside a camera-BN block). Then
        the pipeline runs them once for both (`ReidEmbedder.embed_sharing_trunk(..., shared_variant)` +
        `logits_from_trunk`) with the same result."""
        variant = self.shared_variant
        if variant is None or reid.model_name != ARCHITECTURE or tuple(self.input_hw) != tuple(REID_INPUT_HW):
            return False
        mine = self.net.trunk[: self.net.depth].state_dict()
        theirs = reid.trunk_state_dict(variant)
        return mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)

    @torch.inference_mode()
    def logits_from_trunk(self, shared_maps: torch.Tensor) -> np.ndarray:
        """Logits from the unpooled maps of the shared layers on this model's input (the ReID pass's output)."""
        if self._openvino_head is not None:
            return self._openvino_head.run(shared_maps.numpy())[0].astype(np.float32)
        return self.net.eval().head(self.net.pool(shared_maps)).numpy().astype(np.float32)

    def __call__(self, crops: Sequence[np.ndarray], calibrated: bool = False) -> np.ndarray:
        """Probabilities per crop and attribute; empty input gives (0, len(names)).

        Default: the probabilities the PETA metrics are measured on (thresholded at 0.5 for mA).
        `calibrated=True`: the weighted loss's prior shift removed, so a probability reads as
        how often the attribute is present (better for multiplying into text-search scores).
        """
        return self.probabilities(self.logits(crops), calibrated)

    def probabilities(self, logits: np.ndarray, calibrated: bool = False) -> np.ndarray:
        """Logits from `logits()` -> probabilities (so one forward pass serves both kinds)."""
        if calibrated:
            logits = logits - self.net.logit_offset.numpy()[None, :]
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def default_names() -> tuple[str, ...]:
    """The vocabulary a new model is trained with."""
    return ATTRIBUTE_NAMES
