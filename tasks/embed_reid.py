"""Appearance embeddings (OSNet via torchreid) for person crops.

Why OSNet x0.25: 0.2 M parameters, runs at hundreds of crops/s on a 2-core CPU, and its
MSMT17 weights generalise across cameras better than Market-1501's.
Vectors are L2-normalised so a dot product is the cosine similarity.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from smarttrace.assets import resolve
from smarttrace.config import weight_names
from smarttrace.errors import AssetError

log = logging.getLogger("smarttrace.reid")
INPUT_HW = (256, 128)  # OSNet's training input size (height, width), pixels
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def model_name_of(weights: Path) -> str:
    """torchreid architecture from a zoo file name: osnet_x0_25_msmt17.pt -> osnet_x0_25."""
    for name in ("osnet_ain_x1_0", "osnet_x1_0", "osnet_x0_75", "osnet_x0_5", "osnet_x0_25"):
        if weights.name.startswith(name):
            return name
    raise AssetError(f"cannot tell the OSNet architecture from the weights name {weights.name}")



_STDOUT_LOCK = threading.Lock()


@contextlib.contextmanager
def quiet_stdout():  # noqa: ANN201 - a context manager
    """Swallow a library's prints, one thread at a time.

    redirect_stdout swaps the process-wide sys.stdout: two camera threads overlapping here restored
    each other's StringIO, and every later print of the process (the CLI's summary, a benchmark's
    JSON line) vanished.
    """
    with _STDOUT_LOCK, contextlib.redirect_stdout(io.StringIO()):
        yield


def osnet_trunk(osnet: torch.nn.Module) -> torch.nn.Sequential:
    """conv1, maxpool, conv2, conv3 of an OSNet as one module (sharing its layers): the trunk the
    attribute model reads, keyed the same way wherever it is built so state dicts compare directly."""
    return torch.nn.Sequential(osnet.conv1, osnet.maxpool, osnet.conv2, osnet.conv3)


# Shared layers a second model may read from the ReID pass: variant name -> how many modules of
# `osnet_trunk` it covers ("stem": conv1-conv2, 64 x 32 x 16 maps at 256x128; "trunk": conv1-conv3, 96 x 16 x 8).
SHARED_DEPTH = {"stem": 3, "trunk": 4}


def osnet_embedding(osnet: torch.nn.Module, conv5_maps: torch.Tensor) -> torch.Tensor:
    """OSNet's embedding from its conv5 maps (global average pool, then its fc), in any mode: in training mode
    forward() would return classifier logits instead."""
    pooled = osnet.global_avgpool(conv5_maps).flatten(1)
    return pooled if osnet.fc is None else osnet.fc(pooled)


def osnet_outputs(osnet: torch.nn.Module, batch: torch.Tensor, variant: str) -> list[torch.Tensor]:
    """What the embedder reads from one OSNet pass: the embedding (`plain`); plus the conv1-conv3 maps
    (`trunk`) or conv1-conv2 maps (`stem`) for an attribute model that reads them, or the conv5 maps averaged
    over their width, one value per channel and row (`camera_bn`: the rows body-part stripes are cut from).
    The same function runs in PyTorch and is what `tasks.reid_openvino` converts, so both backends compute
    one graph."""
    stem = osnet.conv2(osnet.maxpool(osnet.conv1(batch)))
    trunk = osnet.conv3(stem)
    maps = osnet.conv5(osnet.conv4(trunk))
    features = osnet_embedding(osnet, maps)
    if variant == "trunk":
        return [features, trunk]
    if variant == "stem":
        return [features, stem]
    if variant == "camera_bn":
        return [features, maps.mean(dim=3)]
    return [features]


_MEAN = torch.from_numpy(IMAGENET_MEAN)
_STD = torch.from_numpy(IMAGENET_STD)


def _batch_norms(model: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def _bn_state(norms: Sequence[torch.nn.modules.batchnorm._BatchNorm]) -> list[tuple]:
    """Running statistics, batch counter and momentum of each BatchNorm layer, to put back later."""
    return [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone(), m.momentum) for m in norms]


def _restore_bn(norms: Sequence[torch.nn.modules.batchnorm._BatchNorm], saved: Sequence[tuple]) -> None:
    with torch.no_grad():
        for m, (mean, var, count, momentum) in zip(norms, saved, strict=True):
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(count)
            m.momentum = momentum


def _conv5_channels(osnet: torch.nn.Module) -> int:
    """Channels of an OSNet's conv5 output (its last 1x1 conv block's width)."""
    convs = [m for m in osnet.conv5.modules() if isinstance(m, torch.nn.Conv2d)]
    return int(convs[-1].out_channels)


def _stripe(rows: torch.Tensor, index: int, parts: int) -> torch.Tensor:
    """Band `index` of `parts` equal horizontal bands of width-averaged conv5 maps (n, channels, rows), averaged."""
    height = rows.shape[2]
    return rows[:, :, height * index // parts : height * (index + 1) // parts].mean(dim=2)


def _mirrored(crops: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.ascontiguousarray(crop[:, ::-1]) for crop in crops]


def _with_mirror(vectors: np.ndarray, mirror: Callable[[], np.ndarray]) -> np.ndarray:
    """Flip TTA: the unit vectors plus their mirrors' (`mirror()`), re-normalised."""
    both = vectors + mirror()
    return (both / np.maximum(np.linalg.norm(both, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def resolve_backend(backend: str, device: torch.device) -> str:
    """"auto" -> OpenVINO on a CPU when it is installed (same vectors, ~3-6x faster), else PyTorch."""
    from tasks.reid_openvino import openvino_available  # imports this module: loaded on use

    if backend not in ("auto", "torch", "openvino"):
        raise ValueError(f"unknown ReID backend {backend!r}: use auto, torch or openvino")
    if backend == "openvino" and device.type != "cpu":
        raise ValueError(f"the OpenVINO ReID backend runs on the CPU, not on {device}")
    if backend == "openvino" and not openvino_available():
        raise AssetError("embed.reid_backend is openvino but OpenVINO is not installed (pip install openvino)")
    if backend == "auto":
        return "openvino" if device.type == "cpu" and openvino_available() else "torch"
    return backend


def reid_weight_names(weights: str | Sequence[str]) -> list[str]:
    """One weights name, or several (a list, or names joined by '+'), as a list of names."""
    names = list(weight_names(weights))
    if not names:
        raise AssetError("no ReID weights named (embed.reid_weights is empty)")
    return names


class ReidEmbedder:
    """OSNet feature extractor: BGR crops in, (n, d) L2-normalised float32 vectors out.

    Several weights make an ensemble: each model's L2-normalised vector, concatenated and scaled by
    1/sqrt(k), so the vector is unit length again and a dot product is the mean of the models' cosines.
    Why: the two zoo models (MSMT17, Market-1501) were trained on different cameras and make different
    mistakes on cameras neither saw (benchmarks/crosscamera.py). The first model is the primary one: its
    conv1-conv3 trunk is the one a shared-trunk attribute model reads.
    """

    def __init__(
        self,
        weights: str | Sequence[str] = "osnet_x0_25_msmt17.pt",
        batch_size: int = 64,
        device: str = "cpu",
        backend: str = "auto",
        flip: bool = False,
    ) -> None:
        self.weights_paths = [resolve(name) for name in reid_weight_names(weights)]
        self.weights_path = self.weights_paths[0]
        self.model_name = model_name_of(self.weights_path)
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.backend = resolve_backend(backend, self.device)
        self.flip = flip  # flip test-time augmentation: each vector = mean of the crop's and its mirror's
        self.models = [self._load(path) for path in self.weights_paths]
        self.model = self.models[0]
        self._openvino = []
        if self.backend == "openvino":
            from tasks.reid_openvino import OpenVinoOsnet  # imports this module: loaded on use

            pairs = zip(self.models, self.weights_paths, strict=True)
            self._openvino = [OpenVinoOsnet(model, path, INPUT_HW) for model, path in pairs]

    def _load(self, path: Path) -> torch.nn.Module:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchreid.reid.models import build_model
            from torchreid.reid.utils import load_pretrained_weights

        model = build_model(model_name_of(path), num_classes=1, pretrained=False)
        try:
            with quiet_stdout():  # torchreid prints per-layer notes
                load_pretrained_weights(model, str(path))
        except Exception as exc:
            raise AssetError(f"ReID weights {path} could not be loaded: {exc}") from exc
        # channels-last: oneDNN's convolutions run OSNet ~1.3-1.5x faster on our CPUs, same vectors (cosine 1 - 3e-7).
        return model.eval().to(self.device).to(memory_format=torch.channels_last)

    @property
    def dim(self) -> int:
        return sum(int(model.feature_dim) for model in self.models)

    def _combine(self, parts: Sequence[torch.Tensor]) -> np.ndarray:
        """Per-model features -> one unit vector per row (a single model: its own normalised vector)."""
        normalised = [torch.nn.functional.normalize(part, dim=1) for part in parts]
        joined = normalised[0] if len(normalised) == 1 else torch.cat(normalised, dim=1) / len(normalised) ** 0.5
        return joined.cpu().numpy()

    def _preprocess(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        """BGR uint8 crops -> normalised RGB (n, 3, H, W) float32: resized by OpenCV, the rest in torch (a third of
        a model pass when done in float64 numpy)."""
        resized = np.stack([cv2.resize(c, (INPUT_HW[1], INPUT_HW[0]), interpolation=cv2.INTER_LINEAR) for c in crops])
        batch = torch.from_numpy(resized).to(self.device).permute(0, 3, 1, 2).flip(1).float().div_(255.0)
        batch = batch.sub_(_MEAN.view(1, 3, 1, 1)).div_(_STD.view(1, 3, 1, 1))
        if self._openvino:
            return batch.contiguous()  # OpenVINO reads NCHW memory
        return batch.contiguous(memory_format=torch.channels_last)

    def _run(self, index: int, variant: str, batch: torch.Tensor) -> list[torch.Tensor]:
        """Model `index`'s outputs for `variant` ("plain", "camera_bn", "trunk", "stem") on the active backend."""
        if self._openvino:
            return [torch.from_numpy(a) for a in self._openvino[index].run(variant, batch.numpy())]
        model = self.models[index]
        if variant == "camera_bn":
            return self._outputs_batch_statistics(model, batch)
        return osnet_outputs(model, batch, variant)

    @torch.inference_mode()
    def embed_camera_bn(self, crops: Sequence[np.ndarray], parts: int = 0, parts_weight: float = 0.5) -> np.ndarray:
        """Vectors of ONE camera's crops under BatchNorm statistics of that camera's crops (camera-based BN), at the
        cost of one ordinary pass per model.

        The crops are shuffled (fixed seed: re-runs give the same vectors) and cut into chunks of about
        `batch_size`; each chunk goes through in training mode, so every BatchNorm layer normalises it with the
        chunk's own statistics: a random sample of the camera's, each layer's taken on the camera-normalised output
        of the layers before. The trained running statistics are left untouched. Why not measure the statistics
        first and embed after: that costs two passes, and one big batch runs at half speed on a CPU. Measured on
        real cross-camera sets (benchmarks/crosscamera.py, ensemble, flip, centred), rank-1 with chunks of 64 vs
        statistics of every crop: VIPeR 0.366 vs 0.355, CUHK03 val 0.616 vs 0.635.

        `parts` > 0 appends body-part stripes from the same pass (no extra cost): the conv5 maps cut into `parts`
        horizontal bands, each averaged, L2-normalised per model and joined across models like the embedding.
        The vector is [embedding, sqrt(w / parts) * stripe_1, ..., sqrt(w / parts) * stripe_parts] / sqrt(1 + w)
        (w = `parts_weight`): unit length, and a dot product is (embedding cosine + w * mean stripe cosine) /
        (1 + w). Why: the fc embedding pools the whole body into one vector; the stripes keep where on the body
        a colour or texture is (upper vs lower), which transfers across cameras (see `camera_dim`).
        """
        if len(crops) < 2:
            raise ValueError(f"camera BN needs at least 2 crops of a camera, got {len(crops)}")
        if parts < 0 or parts_weight < 0:
            raise ValueError(f"parts ({parts}) and parts_weight ({parts_weight}) must not be negative")
        out = self._camera_bn_pass(crops, parts, parts_weight)
        if self.flip:
            return _with_mirror(out, lambda: self._camera_bn_pass(_mirrored(crops), parts, parts_weight))
        return out

    def camera_dim(self, parts: int = 0) -> int:
        """Length of `embed_camera_bn(crops, parts)`'s vectors: the embedding plus `parts` stripes of every model's
        conv5 channels."""
        return self.dim + parts * sum(_conv5_channels(model) for model in self.models)

    def _camera_bn_pass(self, crops: Sequence[np.ndarray], parts: int, parts_weight: float) -> np.ndarray:
        order = np.random.default_rng(0).permutation(len(crops))
        out = np.zeros((len(crops), self.camera_dim(parts)), np.float32)
        for chunk in np.array_split(order, max(1, round(len(crops) / self.batch_size))):
            batch = self._preprocess([crops[i] for i in chunk])
            outputs = [self._run(i, "camera_bn", batch) for i in range(len(self.models))]
            vector = self._combine([features for features, _rows in outputs])
            if parts:
                stripes = [self._combine([_stripe(rows, p, parts) for _, rows in outputs]) for p in range(parts)]
                scale = (parts_weight / parts) ** 0.5
                vector = np.concatenate([vector, *(scale * s for s in stripes)], axis=1) / (1 + parts_weight) ** 0.5
            out[chunk] = vector
        return out

    def _outputs_batch_statistics(self, model: torch.nn.Module, batch: torch.Tensor) -> list[torch.Tensor]:
        """`osnet_outputs(model, batch, "camera_bn")` with every BatchNorm layer using the batch's own statistics."""
        norms = _batch_norms(model)
        saved = _bn_state(norms)
        try:
            for m in norms:
                m.momentum = 0.0  # training mode normalises with the batch's statistics; running ones stay trained
            model.train()
            return osnet_outputs(model, batch, "camera_bn")
        finally:
            model.eval()
            _restore_bn(norms, saved)

    def _trunk(self) -> torch.nn.Sequential:
        """OSNet's conv1-conv3 (the layers a shared-trunk attribute model reads), as one module."""
        m = self.model
        if not all(hasattr(m, name) for name in ("conv1", "maxpool", "conv2", "conv3", "conv4", "conv5", "fc")):
            raise ValueError(f"ReID model {self.model_name} is not an OSNet: it has no conv1-conv5 trunk to share")
        return osnet_trunk(m)

    def trunk_state_dict(self, variant: str = "trunk") -> dict[str, torch.Tensor]:
        """Weights and BatchNorm statistics of the layers `variant` shares (`SHARED_DEPTH`), keyed as the
        first modules of `nn.Sequential(conv1, maxpool, conv2, conv3)`."""
        try:
            return self._trunk()[: SHARED_DEPTH[variant]].state_dict()
        except ValueError:
            return {}

    @torch.inference_mode()
    def embed_sharing_trunk(
        self, crops: Sequence[np.ndarray], head: Callable[[torch.Tensor], np.ndarray], variant: str = "trunk"
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """ReID vectors plus `head(maps)` per crop from ONE pass, the maps being those of the layers `variant`
        names (`SHARED_DEPTH`: conv1-conv3 "trunk", conv1-conv2 "stem").

        Why: a second model that reads the same trunk (the attribute model, see
        `AttributeModel.shares_trunk_with`) then costs only its own top layers. The vectors are the
        same as `__call__`'s. Returns (vectors, head outputs concatenated, seconds spent in `head`).
        """
        self._trunk()  # raises for a model without an OSNet trunk
        if variant not in SHARED_DEPTH:
            raise ValueError(f"unknown shared layers {variant!r} (one of {', '.join(SHARED_DEPTH)})")
        vectors, heads, head_seconds = [], [], 0.0
        for start in range(0, len(crops), self.batch_size):
            batch = self._preprocess(crops[start : start + self.batch_size])
            features, maps = self._run(0, variant, batch)
            t0 = time.perf_counter()
            heads.append(head(maps))
            head_seconds += time.perf_counter() - t0
            others = [self._run(i, "plain", batch)[0] for i in range(1, len(self.models))]
            vectors.append(self._combine([features, *others]))
        if not vectors:
            return np.zeros((0, self.dim), np.float32), np.zeros((0, 0), np.float32), 0.0
        joined = np.concatenate(vectors).astype(np.float32)
        if self.flip:  # the head reads the unmirrored maps; the vectors get the mirrors' too, as __call__'s do
            joined = _with_mirror(joined, lambda: self._plain_pass(_mirrored(crops)))
        return joined, np.concatenate(heads), head_seconds

    @torch.inference_mode()
    def __call__(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Embed crops (any size, BGR uint8); empty input gives a (0, dim) array."""
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        vectors = self._plain_pass(crops)
        return _with_mirror(vectors, lambda: self._plain_pass(_mirrored(crops))) if self.flip else vectors

    def _plain_pass(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        out = []
        for start in range(0, len(crops), self.batch_size):
            batch = self._preprocess(crops[start : start + self.batch_size])
            out.append(self._combine([self._run(i, "plain", batch)[0] for i in range(len(self.models))]))
        return np.concatenate(out).astype(np.float32)
