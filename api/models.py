"""The API's JSON: response models (they are the OpenAPI schema at /docs) and their conversion.

Why not `PersonResult.to_dict()` as it is: that form names server paths (the thumbnail file, the
video), which a web client cannot open and should not learn. Here a thumbnail is a URL under
`/thumbnails/`, a tracklet carries the URL of its clip, and no filesystem path leaves the server.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from pydantic import BaseModel

from search.results import PersonResult, SearchResults, TrackletHit


class TrackletOut(BaseModel):
    """One tracklet: where and when the person was seen, how well it matched, and its media."""

    camera_id: str
    tracklet_id: int
    global_id: int
    person_id: int
    location: str
    start_time: datetime | None
    end_time: datetime | None
    start_frame: int
    end_frame: int
    upper_color: str | None
    lower_color: str | None
    score: float
    explanation: str
    thumbnail_url: str | None
    clip_url: str


class PersonOut(BaseModel):
    """One identity found by a query, scored and explained by its best tracklet."""

    global_id: int
    score: float
    explanation: str
    thumbnail_url: str | None
    cameras: list[str]
    first_seen: datetime | None
    last_seen: datetime | None
    tracklets: list[TrackletOut]


class SearchOut(BaseModel):
    """Persons best first, and what the user should know about how they were found."""

    persons: list[PersonOut]
    notes: list[str]
    query_box: list[int] | None  # xyxy of the person cut from an uploaded image, in its pixels


class TimelineOut(BaseModel):
    """Every tracklet of one identity across cameras, in time order."""

    global_id: int
    cameras: list[str]
    first_seen: datetime | None
    last_seen: datetime | None
    tracklets: list[TrackletOut]


class HealthOut(BaseModel):
    """Whether the API can answer, from which index version, and which models are warm."""

    status: str  # "ok", or "no index" before the pipeline has built one
    index_version: str | None
    points: int
    models_loaded: dict[str, bool | list[int] | None]


class ErrorOut(BaseModel):
    """Every error response: a message a user can act on."""

    error: str


def thumbnail_url(thumbnail: Path | None, thumbnails_dir: Path) -> str | None:
    """`/thumbnails/<path inside the run's thumbnail folder>`; None for a file outside it or none."""
    if thumbnail is None or not thumbnail.is_relative_to(thumbnails_dir):
        return None
    return "/thumbnails/" + quote(thumbnail.relative_to(thumbnails_dir).as_posix())


def tracklet_out(hit: TrackletHit, thumbnails_dir: Path) -> TrackletOut:
    return TrackletOut(
        camera_id=hit.camera_id,
        tracklet_id=hit.tracklet_id,
        global_id=hit.global_id,
        person_id=hit.person_id,
        location=hit.location,
        start_time=hit.start_time,
        end_time=hit.end_time,
        start_frame=hit.start_frame,
        end_frame=hit.end_frame,
        upper_color=hit.upper_color,
        lower_color=hit.lower_color,
        score=round(hit.score, 4),
        explanation=hit.explanation,
        thumbnail_url=thumbnail_url(hit.thumbnail, thumbnails_dir),
        clip_url=f"/tracklets/{quote(hit.camera_id)}/{hit.tracklet_id}/clip",
    )


def person_out(result: PersonResult, thumbnails_dir: Path) -> PersonOut:
    return PersonOut(
        global_id=result.global_id,
        score=round(result.score, 4),
        explanation=result.explanation,
        thumbnail_url=thumbnail_url(result.thumbnail, thumbnails_dir),
        cameras=list(result.cameras),
        first_seen=result.first_seen,
        last_seen=result.last_seen,
        tracklets=[tracklet_out(t, thumbnails_dir) for t in result.tracklets],
    )


def search_out(results: SearchResults, thumbnails_dir: Path) -> SearchOut:
    return SearchOut(
        persons=[person_out(r, thumbnails_dir) for r in results],
        notes=list(results.notes),
        query_box=list(results.query_box) if results.query_box is not None else None,
    )


def timeline_out(global_id: int, hits: list[TrackletHit], thumbnails_dir: Path) -> TimelineOut:
    starts = [t.start_time for t in hits if t.start_time]
    ends = [t.end_time for t in hits if t.end_time]
    return TimelineOut(
        global_id=int(global_id),
        cameras=sorted({t.camera_id for t in hits}),
        first_seen=min(starts) if starts else None,
        last_seen=max(ends) if ends else None,
        tracklets=[tracklet_out(t, thumbnails_dir) for t in hits],
    )
