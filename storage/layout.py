"""Where each artifact lives inside a run folder: one place, so paths never drift apart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunLayout:
    """Paths of a run's artifacts. `root` is `storage.run_dir` from the config."""

    root: Path

    def tracks(self, camera_id: str) -> Path:
        return self.root / "tracks" / f"{camera_id}.parquet"

    def tracks_dir(self) -> Path:
        return self.root / "tracks"
