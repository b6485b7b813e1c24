"""Build the index's runtime config from the validated SmartTrace config (one place)."""

from __future__ import annotations

from smarttrace.config import EmbedConfig, SmartTraceConfig
from storage.index import IndexConfig

# Every OSNet (x0.25 ... x1.0) ends in a 512-d embedding layer; an ensemble concatenates its models' vectors.
OSNET_DIM = 512


def reid_dim(embed: EmbedConfig) -> int:
    """Size of the `reid` vectors the embed stage writes with this config (the ensemble's concatenation)."""
    return OSNET_DIM * len(embed.reid_weights)


def index_config(config: SmartTraceConfig, clip_dim: int | None = None) -> IndexConfig:
    """Embedded index under the run folder unless `index.url` names a server."""
    settings = config.index
    return IndexConfig(
        path=settings.path or config.storage.run_dir / "qdrant",
        url=settings.url,
        api_key=settings.api_key,
        collection=settings.collection,
        lock_timeout_s=settings.lock_timeout_s,
        delta_min_points=settings.delta_min_points,
        max_delta_parts=settings.max_delta_parts,
        max_delta_share=settings.max_delta_share,
        reid_dim=reid_dim(config.embed),
        clip_dim=clip_dim,
    )
