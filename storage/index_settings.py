"""Build the index's runtime config from the validated SmartTrace config (one place)."""

from __future__ import annotations

from smarttrace.config import SmartTraceConfig
from storage.index import IndexConfig


def index_config(config: SmartTraceConfig, clip_dim: int | None = None) -> IndexConfig:
    """Embedded index under the run folder unless `index.url` names a server."""
    settings = config.index
    return IndexConfig(
        path=settings.path or config.storage.run_dir / "qdrant",
        url=settings.url,
        api_key=settings.api_key,
        collection=settings.collection,
        lock_timeout_s=settings.lock_timeout_s,
        clip_dim=clip_dim,
    )
