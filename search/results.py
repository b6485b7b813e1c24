"""What a search returns: tracklet hits grouped into persons, and a summary of the index.

Why results are grouped by identity: the index holds one point per *tracklet*, but a user looks
for a *person*. One person walking through three cameras is a dozen tracklets; listing them
separately would fill the first page with one person. Each `PersonResult` is one global id,
scored by its best tracklet, with its thumbnail, cameras and first/last time seen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TrackletHit:
    """One tracklet of a result or of a person's timeline, with its payload in typed form."""

    camera_id: str
    tracklet_id: int
    global_id: int
    person_id: int
    location: str
    start_time: datetime | None
    end_time: datetime | None
    start_frame: int
    end_frame: int
    video_path: str
    thumbnail: Path | None  # absolute, inside the run folder, existing; None otherwise
    upper_color: str | None = None
    lower_color: str | None = None
    score: float = 0.0
    explanation: str = ""

    @classmethod
    def from_payload(
        cls, payload: dict[str, Any], thumbnail: Path | None, score: float = 0.0, explanation: str = ""
    ) -> TrackletHit:
        """The typed form of an index payload; `thumbnail` already checked by the caller."""
        return cls(
            camera_id=str(payload.get("camera_id", "")),
            tracklet_id=int(payload.get("tracklet_id", -1)),
            global_id=int(payload.get("global_id", -1)),
            person_id=int(payload.get("person_id", -1)),
            location=str(payload.get("location") or ""),
            start_time=epoch_time(payload.get("start_epoch")),
            end_time=epoch_time(payload.get("end_epoch")),
            start_frame=int(payload.get("start_frame", 0)),
            end_frame=int(payload.get("end_frame", 0)),
            video_path=str(payload.get("video_path") or ""),
            thumbnail=thumbnail,
            upper_color=payload.get("upper_color"),
            lower_color=payload.get("lower_color"),
            score=float(score),
            explanation=explanation,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (ISO 8601 times, string paths)."""
        return {
            "camera_id": self.camera_id,
            "tracklet_id": self.tracklet_id,
            "global_id": self.global_id,
            "person_id": self.person_id,
            "location": self.location,
            "start_time": iso(self.start_time),
            "end_time": iso(self.end_time),
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "video_path": self.video_path,
            "thumbnail": str(self.thumbnail) if self.thumbnail else None,
            "upper_color": self.upper_color,
            "lower_color": self.lower_color,
            "score": round(self.score, 4),
            "explanation": self.explanation,
        }


@dataclass(frozen=True)
class PersonResult:
    """One identity found by a query: scored by its best tracklet.

    `cameras`, `first_seen` and `last_seen` cover the identity's tracklets that matched the query
    and its filters (`tracklets`, best first); `person_timeline` lists all of them.
    """

    global_id: int
    score: float
    explanation: str
    thumbnail: Path | None
    cameras: list[str]
    first_seen: datetime | None
    last_seen: datetime | None
    tracklets: list[TrackletHit]

    def to_dict(self) -> dict[str, Any]:
        return {
            "global_id": self.global_id,
            "score": round(self.score, 4),
            "explanation": self.explanation,
            "thumbnail": str(self.thumbnail) if self.thumbnail else None,
            "cameras": list(self.cameras),
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "tracklets": [t.to_dict() for t in self.tracklets],
        }


class SearchResults(list[PersonResult]):
    """The results, best first, plus what the user should know about how they were found.

    A list, so callers that only want results iterate it; `notes` (e.g. "text search uses
    clothing attributes only", words not understood) and `query_crop` (the person cut from an
    uploaded image, BGR) are for front ends that show them.
    """

    def __init__(
        self,
        results: Iterable[PersonResult] = (),
        notes: Sequence[str] = (),
        query_crop: np.ndarray | None = None,
        query_box: tuple[int, int, int, int] | None = None,
    ) -> None:
        super().__init__(results)
        self.notes: list[str] = list(notes)
        self.query_crop = query_crop
        self.query_box = query_box


@dataclass(frozen=True)
class QueryPerson:
    """The person found in an uploaded image: the crop to embed and how it was chosen."""

    crop: np.ndarray  # BGR
    box: tuple[int, int, int, int]  # xyxy in the uploaded image's pixels
    confidence: float | None  # detector score; None when the image was used whole without detection
    people_found: int
    note: str


@dataclass(frozen=True)
class IndexSummary:
    """What the index holds: for the dashboard's header and filters."""

    points: int
    identities: int
    cameras: list[str]
    first_seen: datetime | None
    last_seen: datetime | None
    has_clip: bool

    @classmethod
    def of_payloads(cls, payloads: Sequence[dict[str, Any]]) -> IndexSummary:
        """The summary of every indexed tracklet's payload."""
        starts = [p["start_epoch"] for p in payloads if p.get("start_epoch") is not None]
        ends = [p["end_epoch"] for p in payloads if p.get("end_epoch") is not None]
        return cls(
            points=len(payloads),
            identities=len({int(p.get("global_id", -1)) for p in payloads if int(p.get("global_id", -1)) >= 0}),
            cameras=sorted({str(p.get("camera_id")) for p in payloads}),
            first_seen=epoch_time(min(starts)) if starts else None,
            last_seen=epoch_time(max(ends)) if ends else None,
            has_clip=any(p.get("has_clip") for p in payloads),
        )


def iso(value: datetime | None) -> str | None:
    """ISO 8601 text of a time, None for an unknown one (JSON output)."""
    return value.isoformat() if value else None


def epoch_time(epoch: Any) -> datetime | None:
    """A payload's epoch seconds (UTC) as an aware datetime; None when missing or NaN."""
    if epoch is None or (isinstance(epoch, float) and math.isnan(epoch)):
        return None
    return datetime.fromtimestamp(float(epoch), tz=UTC)


def group_by_identity(
    payloads: Sequence[dict[str, Any]],
    scores: np.ndarray,
    explain: Callable[[int], str],
    limit: int,
    make_hit: Callable[[dict[str, Any], float, str], TrackletHit],
) -> list[PersonResult]:
    """Tracklet scores -> one result per global id (tracklets without one stand alone), best first.

    Walks the tracklets best first until `limit` identities are found, then builds typed hits
    (`make_hit`: thumbnail checked on disk, explanation written) for those identities' tracklets
    only: a text query scores every tracklet, and 50k explanations nobody reads cost 0.5 s.
    """
    if len(payloads) == 0:
        return []
    gids = np.fromiter((int(p.get("global_id", -1)) for p in payloads), np.int64, len(payloads))
    keys = np.where(gids >= 0, gids, -1 - np.arange(len(payloads)))  # no identity: a group of its own
    chosen: list[int] = []
    seen: set[int] = set()
    for i in np.argsort(-scores, kind="stable"):
        key = int(keys[i])
        if key not in seen:
            seen.add(key)
            chosen.append(key)
            if len(chosen) == limit:
                break
    members_of: dict[int, list[int]] = {key: [] for key in chosen}
    for i in np.flatnonzero(np.isin(keys, chosen)):
        members_of[int(keys[i])].append(int(i))
    return [_person(members_of[key], payloads, scores, explain, make_hit) for key in chosen]


def _person(
    rows: list[int],
    payloads: Sequence[dict[str, Any]],
    scores: np.ndarray,
    explain: Callable[[int], str],
    make_hit: Callable[[dict[str, Any], float, str], TrackletHit],
) -> PersonResult:
    """One identity's result from its matching rows: scored and explained by its best tracklet."""
    members = [make_hit(payloads[i], float(scores[i]), explain(i)) for i in rows]
    members.sort(key=lambda t: (-t.score, t.camera_id, t.tracklet_id))
    top = members[0]
    starts = [t.start_time for t in members if t.start_time]
    ends = [t.end_time for t in members if t.end_time]
    return PersonResult(
        global_id=top.global_id,
        score=top.score,
        explanation=f"{top.explanation} ({top.camera_id} #{top.tracklet_id})",
        thumbnail=next((t.thumbnail for t in members if t.thumbnail is not None), None),
        cameras=sorted({t.camera_id for t in members}),
        first_seen=min(starts) if starts else None,
        last_seen=max(ends) if ends else None,
        tracklets=members,
    )
