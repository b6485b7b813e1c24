"""Where the tracklet index lives, the shape of its points, and the small records its readers return.

Its own module so that the index's other modules (clients, versions, reading) can all name `IndexConfig`
without importing each other; `storage.index` re-exports everything here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

REID_VECTOR = "reid"
CLIP_VECTOR = "clip"
VECTOR_NAMES = (REID_VECTOR, CLIP_VECTOR)

# Fixed forever: point ids are uuid5(POINT_NAMESPACE, "camera_id/tracklet_id"), so a re-run of the
# pipeline upserts the same points instead of adding duplicates.
POINT_NAMESPACE = uuid.UUID("6f1c2b0e-8d4a-5c3e-9b7f-2a4d6e8f1c3b")

UPSERT_BATCH = 256  # points per upsert request: small requests for the server, bounded memory here
SCROLL_PAGE = 1024
# Text search re-scores exactly this many of the engine's best points by the attribute query (at least;
# 10 per requested person otherwise). The engine's order is the scorer's own since the sparse attribute
# terms (`storage.attribute_vectors`), so this only has to cover the tracklets the default 20 persons
# are grouped from. Before them (alternatives approximated), 20k points around every PETA crop needed
# 1000 for recall@20 0.950 (0.894 with 500), and at 1M 1000 gave only 0.788.
TEXT_CANDIDATES = 200


class IndexConfig(BaseModel):
    """Where the tracklet index lives and the shape of its vectors.

    `path` is the embedded index folder (it holds `live/` and `published/`, see the module
    docstring); it is ignored when `url` names a Qdrant server.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Path("runs/demo/qdrant")  # = storage.run_dir / "qdrant" of the default config
    url: str | None = None  # e.g. http://localhost:6333; set -> server mode
    api_key: SecretStr | None = None
    collection: str = Field(default="tracklets", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # How long a writer or a loading reader waits for another process to release the folder.
    lock_timeout_s: float = Field(default=30.0, ge=0)
    reid_dim: int = Field(default=512, gt=0)
    clip_dim: int | None = Field(default=None, gt=0)  # None: no `clip` vector in the collection
    # Delta publishing (`storage.index_parts`); the defaults' reasons are in smarttrace.config.IndexSettings.
    delta_min_points: int = Field(default=20_000, ge=0)
    max_delta_parts: int = Field(default=8, ge=1)
    max_delta_share: float = Field(default=0.2, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"index url '{value}' must start with http:// or https://")
        return value or None

    @classmethod
    def for_run_dir(cls, run_dir: Path, **overrides: Any) -> IndexConfig:
        """The config of a run's embedded index, `run_dir/qdrant`."""
        return cls(path=Path(run_dir) / "qdrant", **overrides)

    @property
    def live_path(self) -> Path:
        """The qdrant storage folder writers open."""
        return self.path / "live"

    @property
    def published_path(self) -> Path:
        """The folder of published snapshots readers load."""
        return self.path / "published"

    def vector_dims(self) -> dict[str, int]:
        """Named vectors of the collection and their sizes."""
        dims = {REID_VECTOR: self.reid_dim}
        if self.clip_dim is not None:
            dims[CLIP_VECTOR] = self.clip_dim
        return dims


class SearchHit(NamedTuple):
    """One search result: (point id, cosine similarity, payload)."""

    point_id: str
    score: float
    payload: dict[str, Any]


TimeBound = datetime | float | int | None


def point_id(camera_id: str, tracklet_id: int) -> str:
    """The deterministic point id of a tracklet, so re-uploads replace instead of duplicating."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{camera_id}/{int(tracklet_id)}"))
