"""The query-side models of a search engine, loaded lazily, once, on first use (thread-safe).

The ReID model, the query detector (one per canvas size) and CLIP take seconds to load and a
query tens of milliseconds, so one engine per config and process keeps them; `infer_lock` makes
calls into them one at a time (ultralytics predictors and torch modules are not re-entrant).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from search.person import QUERY_DETECT_SIZES
from smarttrace.config import SmartTraceConfig

if TYPE_CHECKING:  # heavy imports (torch, ultralytics, open_clip) stay lazy at run time
    from tasks.embed_clip import ClipEmbedder
    from tasks.embed_reid import ReidEmbedder


class QueryModels:
    """ReID, detector and CLIP for one config; each loads the first time it is asked for."""

    def __init__(self, config: SmartTraceConfig) -> None:
        self.config = config
        self.infer_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._reid: ReidEmbedder | None = None
        self._detectors: dict[int, Any] = {}
        self._clip: ClipEmbedder | None = None
        self._clip_loaded = False

    def _lazy(self, attribute: str, build: Callable[[], Any]) -> Any:
        value = getattr(self, attribute)
        if value is None:
            with self._load_lock:
                value = getattr(self, attribute)
                if value is None:
                    value = build()
                    setattr(self, attribute, value)
        return value

    @property
    def reid(self) -> ReidEmbedder:
        """The OSNet embedder the pipeline used for the index's `reid` vectors."""
        from tasks.embed_reid import ReidEmbedder

        return self._lazy("_reid", lambda: ReidEmbedder(
            self.config.embed.reid_weights, self.config.embed.reid_batch, backend=self.config.embed.reid_backend,
            flip=self.config.embed.reid_flip))

    def detector(self, size: int) -> Any:
        """One detector per canvas size: a detector reloads whenever its input shape changes."""
        detector = self._detectors.get(size)
        if detector is None:
            from tasks.detect import PersonDetector

            with self._load_lock:
                detector = self._detectors.get(size)
                if detector is None:
                    settings = self.config.detector.model_copy(update={"imgsz": size})
                    detector = self._detectors[size] = PersonDetector(settings)
        return detector

    @property
    def clip(self) -> ClipEmbedder | None:
        """The configured CLIP model, or None when its weights are not available locally."""
        if not self._clip_loaded:
            with self._load_lock:
                if not self._clip_loaded:
                    from tasks.embed_clip import load_clip

                    self._clip = load_clip(self.config.embed.clip_model, self.config.embed.clip_pretrained)
                    self._clip_loaded = True
        return self._clip

    @property
    def clip_note(self) -> str | None:
        """What the user should know about CLIP, or None when it is available and trained."""
        clip = self.clip
        if clip is None:
            return (
                f"CLIP weights ('{self.config.embed.clip_pretrained or 'none'}' for {self.config.embed.clip_model}) "
                "are not available: text search uses clothing attributes only"
            )
        if clip.is_random:
            return "CLIP is randomly initialised (test mode): its text scores carry no meaning"
        return None

    def warm_up(self) -> None:
        """Load the image-search models now (the CLI and benchmarks keep load time out of query time)."""
        _ = self.reid
        for size in QUERY_DETECT_SIZES:
            self.detector(size)([np.zeros((size, size, 3), np.uint8)])

    def loaded(self) -> dict[str, Any]:
        """Which models are loaded so far (they load on first use): for a health check.

        `clip` is None until text search first asked for it, then whether its weights were found.
        """
        return {
            "reid": self._reid is not None,
            "detector_sizes": sorted(self._detectors),
            "clip": (self._clip is not None) if self._clip_loaded else None,
        }
