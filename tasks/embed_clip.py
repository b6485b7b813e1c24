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


def cached_weights(model_name: str, tag: str, cache_dir: Path | None = None) -> str | None:
    """Local path of an open_clip pretrained tag's weights if already downloaded, else None.

    Looks where open_clip itself caches (the Hugging Face hub cache or its URL cache) without
    touching the network, so a missing file is a fast, clear "not available".
    """
    from open_clip.pretrained import get_pretrained_cfg

    cfg = get_pretrained_cfg(model_name, tag)
    if not cfg:
        return None
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo = cfg["hf_hub"].rstrip("/")
        for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
            found = try_to_load_from_cache(repo, filename, cache_dir=str(cache_dir) if cache_dir else None)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    if cfg.get("url"):
        folder = cache_dir or Path(os.path.expanduser("~/.cache/clip"))
        candidate = Path(folder) / os.path.basename(cfg["url"])
        if candidate.is_file():
            return str(candidate)
    return None


def load_clip(model_name: str, pretrained: str | None, cache_dir: Path | None = None) -> ClipEmbedder | None:
    """Build CLIP from a local file, a cached pretrained tag, or `random`; None (one warning) if unavailable.

    `pretrained` may be a path to a weights file, an open_clip tag (looked up in the local cache
    only, never downloaded at run time), `random`, or None/"" (CLIP disabled).
    """
    import open_clip

    if not pretrained:
        log.warning("CLIP disabled (no pretrained weights configured): text search uses clothing attributes only")
        return None
    tag: str | None = None
    if pretrained != RANDOM:
        tag = pretrained if Path(pretrained).is_file() else cached_weights(model_name, pretrained, cache_dir)
        if tag is None:
            log.warning(
                "CLIP weights '%s' for %s are not in the local cache (no download is attempted): no CLIP "
                "vectors will be written; text search uses clothing attributes only",
                pretrained, model_name,
            )
            return None
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=tag)
    except Exception as exc:  # open_clip raises RuntimeError/OSError for a bad weights file
        log.warning(
            "CLIP weights '%s' for %s are not available locally (%s): no CLIP vectors will be written; "
            "text search uses clothing attributes only",
            pretrained, model_name, str(exc).splitlines()[0][:200],
        )
        return None
    if tag is None:
        log.warning("CLIP %s is RANDOMLY initialised: for testing the code path only, not for search", model_name)
    return ClipEmbedder(model.eval(), preprocess, open_clip.get_tokenizer(model_name), model_name, pretrained)
