"""CLIP image and text embeddings (open_clip), optional by design.

No CLIP weights can be fetched on our machines, so CLIP must degrade cleanly: when the
configured weights are not available locally, `load_clip` logs ONE warning and returns None,
the pipeline writes no CLIP vectors, and text search falls back to clothing attributes.
`pretrained: random` builds a randomly initialised model: it exercises the code path in tests
and must never be presented as search quality (`ClipEmbedder.is_random` says so).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

log = logging.getLogger("smarttrace.clip")
RANDOM = "random"


@dataclass
class ClipEmbedder:
    """An open_clip model with its preprocessing and tokenizer; vectors are L2-normalised."""

    model: torch.nn.Module
    preprocess: object
    tokenizer: object
    model_name: str
    pretrained: str

    @property
    def is_random(self) -> bool:
        return self.pretrained == RANDOM

    @property
    def dim(self) -> int:
        return int(self.model.text_projection.shape[1]) if hasattr(self.model, "text_projection") else 512

    @torch.inference_mode()
    def embed_images(self, crops_bgr: Sequence[np.ndarray]) -> np.ndarray:
        if len(crops_bgr) == 0:
            return np.zeros((0, self.dim), np.float32)
        images = [self.preprocess(Image.fromarray(cv2.cvtColor(c, cv2.COLOR_BGR2RGB))) for c in crops_bgr]
        features = self.model.encode_image(torch.stack(images))
        return torch.nn.functional.normalize(features, dim=1).numpy().astype(np.float32)

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        features = self.model.encode_text(self.tokenizer(list(texts)))
        return torch.nn.functional.normalize(features, dim=1).numpy().astype(np.float32)


def load_clip(model_name: str, pretrained: str | None, cache_dir: Path | None = None) -> ClipEmbedder | None:
    """Build CLIP from a local file, a cached pretrained tag, or `random`; None (one warning) if unavailable.

    `pretrained` may be a path to a weights file, an open_clip tag (looked up in the cache only:
    HF_HUB_OFFLINE is forced so a missing file fails fast instead of hanging on the network),
    `random`, or None/"" (CLIP disabled).
    """
    import open_clip

    if not pretrained:
        log.warning("CLIP disabled (no pretrained weights configured): text search uses clothing attributes only")
        return None
    tag: str | None = None if pretrained == RANDOM else pretrained
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=tag, cache_dir=str(cache_dir) if cache_dir else None
        )
    except Exception as exc:  # open_clip raises RuntimeError/OSError/HF errors for missing weights
        log.warning(
            "CLIP weights '%s' for %s are not available locally (%s): no CLIP vectors will be written; "
            "text search uses clothing attributes only",
            pretrained, model_name, str(exc).splitlines()[0][:200],
        )
        return None
    if tag is None:
        log.warning("CLIP %s is RANDOMLY initialised: for testing the code path only, not for search", model_name)
    return ClipEmbedder(model.eval(), preprocess, open_clip.get_tokenizer(model_name), model_name, pretrained)
