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


class ReidEmbedder:
    """OSNet feature extractor: BGR crops in, (n, d) L2-normalised float32 vectors out."""

    def __init__(self, weights: str = "osnet_x0_25_msmt17.pt", batch_size: int = 64, device: str = "cpu") -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchreid.reid.models import build_model
            from torchreid.reid.utils import load_pretrained_weights

        self.weights_path = resolve(weights)
        self.model_name = model_name_of(self.weights_path)
        self.batch_size = batch_size
        self.device = torch.device(device)
        model = build_model(self.model_name, num_classes=1, pretrained=False)
        try:
            with quiet_stdout():  # torchreid prints per-layer notes
                load_pretrained_weights(model, str(self.weights_path))
        except Exception as exc:
            raise AssetError(f"ReID weights {self.weights_path} could not be loaded: {exc}") from exc
        self.model = model.eval().to(self.device)

    @property
    def dim(self) -> int:
        return int(self.model.feature_dim)

    def _preprocess(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        batch = np.stack(
            [cv2.resize(c, (INPUT_HW[1], INPUT_HW[0]), interpolation=cv2.INTER_LINEAR)[:, :, ::-1] for c in crops]
        ).astype(np.float32)
        batch = (batch / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        return torch.from_numpy(batch.transpose(0, 3, 1, 2).copy()).to(self.device)

    @contextlib.contextmanager
    def camera_statistics(self, crops: Sequence[np.ndarray]):  # noqa: ANN201 - a context manager
        """Within the block, BatchNorm uses statistics of ONE camera's crops (camera-based BN, Zhuang et al.,
        ECCV 2020): an unsupervised cross-camera lever, since each camera shifts the feature statistics.
        Outside it the trained statistics come back. Needs a few dozen crops to be meaningful."""
        norms = [m for m in self.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone(), m.momentum)
                 for m in norms]
        try:
            for m in norms:
                m.reset_running_stats()
                m.momentum = None  # cumulative average over every batch of the camera
            self.model.train()
            with torch.no_grad():
                for start in range(0, len(crops), self.batch_size):
                    batch = crops[start : start + self.batch_size]
                    if len(batch) > 1:
                        self.model(self._preprocess(batch))
            self.model.eval()
            yield self
        finally:
            self.model.eval()
            for m, (mean, var, count, momentum) in zip(norms, saved, strict=True):
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)
                m.momentum = momentum

    def _trunk(self) -> torch.nn.Sequential:
        """OSNet's conv1-conv3 (the layers a shared-trunk attribute model reads), as one module."""
        m = self.model
        if not all(hasattr(m, name) for name in ("conv1", "maxpool", "conv2", "conv3", "conv4", "conv5", "fc")):
            raise ValueError(f"ReID model {self.model_name} is not an OSNet: it has no conv1-conv5 trunk to share")
        return osnet_trunk(m)

    def trunk_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights and BatchNorm statistics of conv1-conv3, keyed as `nn.Sequential(conv1, maxpool, conv2, conv3)`."""
        try:
            return self._trunk().state_dict()
        except ValueError:
            return {}

    @torch.inference_mode()
    def embed_sharing_trunk(
        self, crops: Sequence[np.ndarray], head: Callable[[torch.Tensor], np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """ReID vectors plus `head(conv3 maps)` per crop from ONE pass through conv1-conv3.

        Why: a second model that reads the same trunk (the attribute model, see
        `AttributeModel.shares_trunk_with`) then costs only its own top layers. The vectors are the
        same as `__call__`'s. Returns (vectors, head outputs concatenated, seconds spent in `head`).
        """
        trunk = self._trunk()
        m = self.model
        vectors, heads, head_seconds = [], [], 0.0
        for start in range(0, len(crops), self.batch_size):
            maps = trunk(self._preprocess(crops[start : start + self.batch_size]))
            t0 = time.perf_counter()
            heads.append(head(maps))
            head_seconds += time.perf_counter() - t0
            pooled = m.global_avgpool(m.conv5(m.conv4(maps))).flatten(1)
            features = pooled if m.fc is None else m.fc(pooled)
            vectors.append(torch.nn.functional.normalize(features, dim=1).cpu().numpy())
        if not vectors:
            return np.zeros((0, self.dim), np.float32), np.zeros((0, 0), np.float32), 0.0
        return np.concatenate(vectors).astype(np.float32), np.concatenate(heads), head_seconds

    @torch.inference_mode()
    def __call__(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Embed crops (any size, BGR uint8); empty input gives a (0, dim) array."""
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for start in range(0, len(crops), self.batch_size):
            features = self.model(self._preprocess(crops[start : start + self.batch_size]))
            out.append(torch.nn.functional.normalize(features, dim=1).cpu().numpy())
        return np.concatenate(out).astype(np.float32)
