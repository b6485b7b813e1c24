"""Where each artifact lives inside a run folder: one place, so paths never drift apart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STAGES = ("track", "embed", "match_in_camera", "match_cross_camera", "upload")


@dataclass(frozen=True)
class RunLayout:
    """Paths of a run's artifacts. `root` is `storage.run_dir` from the config."""

    root: Path

    def tracks(self, camera_id: str) -> Path:
        return self.root / "tracks" / f"{camera_id}.parquet"

    def tracklets(self, camera_id: str) -> Path:
        return self.root / "tracklets" / f"{camera_id}.parquet"

    def persons(self, camera_id: str) -> Path:
        return self.root / "persons" / f"{camera_id}.parquet"

    def identities(self) -> Path:
        return self.root / "identities.parquet"

    def thumbnails(self) -> Path:
        return self.root / "thumbnails"
