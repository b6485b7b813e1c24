"""The HTTP API over the search engine: what a web app, a video-management system or a script calls.

HTTP only: every endpoint reads its request, calls `search.SearchEngine` (the same library the CLI
and the dashboard use, so all three answer alike) and writes JSON; nothing here scores or
matches. Endpoints are plain `def` functions: FastAPI runs them in its thread pool, which suits the
engine (CPU-bound, thread-safe, models shared). OpenAPI docs are at /docs.

Untrusted input is handled in layers: `api.guards.RequestGuard` refuses over-rate, unauthenticated
and oversized requests before their body is read; the engine bounds an image's pixels from its
header; thumbnails are served only from inside the run's thumbnail folder. Every error is JSON
`{"error": message}` with its status, never a traceback.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.guards import RateLimiter, RequestGuard
from api.models import ErrorOut, HealthOut, SearchOut, TimelineOut, search_out, timeline_out
from search import SearchEngine, load_engine
from search.errors import (
    ImageTooLargeError,
    NoIndexError,
    NotInIndexError,
    SearchInputError,
    UnsafePathError,
    UnsupportedImageError,
)
from smarttrace.config import ApiConfig, SmartTraceConfig
from storage.index import IndexUnavailableError

log = logging.getLogger("smarttrace.api")

TOKEN_ENV = "SMARTTRACE_API_TOKEN"
MAX_RESULTS = 100  # persons per search response; the engine allows 1000, a page needs far fewer
CAMERA_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # = CameraConfig.id
THUMBNAIL_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})

# Engine errors -> HTTP status, most specific first (isinstance order matters: all are SearchInputError).
_STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (NotInIndexError, 404),
    (UnsafePathError, 404),
    (UnsupportedImageError, 415),
    (ImageTooLargeError, 413),
    (SearchInputError, 400),
    (NoIndexError, 503),
    (IndexUnavailableError, 503),  # e.g. the index folder is locked by a writer for too long
)
_ERRORS = {status: {"model": ErrorOut} for status in (400, 401, 404, 413, 415, 422, 429, 500, 503)}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _engine_of(source: SearchEngine | SmartTraceConfig | str | os.PathLike) -> SearchEngine:
    if isinstance(source, SearchEngine):
        return source
    if isinstance(source, SmartTraceConfig):
        return SearchEngine(source)
    return load_engine(source)


def api_token(settings: ApiConfig) -> str | None:
    """The bearer token: env SMARTTRACE_API_TOKEN, else `api.token`, else none (no auth)."""
    return os.environ.get(TOKEN_ENV) or settings.token or None


def create_app(
    engine_or_config: SearchEngine | SmartTraceConfig | str | os.PathLike, settings: ApiConfig | None = None
) -> FastAPI:
    """The API for one config's index. `settings` default to the config's `api:` section."""
    engine = _engine_of(engine_or_config)
    settings = settings or engine.config.api
    thumbnails_dir = engine.layout.thumbnails().resolve()
    app = FastAPI(
        title="SmartTrace API",
        summary="Multi-camera person search: by example image, by description, across cameras and time.",
        version="1",
        responses=_ERRORS,
    )
    app.state.engine = engine
    app.add_middleware(
        RequestGuard,
        token=api_token(settings),
        max_body_bytes=int(settings.max_body_mb * 2**20),
        limiter=RateLimiter(settings.rate_per_minute),
    )
    _add_error_handlers(app)
    _add_routes(app, engine, thumbnails_dir)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path"))
            problems.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
        return _error(422, "; ".join(problems) or "invalid request")

    async def engine_error(_request: Request, exc: Exception) -> JSONResponse:
        status = next(code for kind, code in _STATUS_OF if isinstance(exc, kind))
        return _error(status, str(exc))

    for kind, _status in _STATUS_OF:
        app.add_exception_handler(kind, engine_error)


def _utc(moment: datetime | None) -> datetime | None:
    """A naive time is UTC, as in the index and the CLI."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _split(values: list[str] | None) -> list[str]:
    """Repeated form fields and comma-separated lists alike: `cameras=a&cameras=b` or `cameras=a,b`."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _read_image(image: UploadFile | None) -> bytes | None:
    """The uploaded file's bytes; None when the form's file field was left empty (browsers send one)."""
    if image is None:
        return None
    data = image.file.read()
    if not data and not image.filename:
        return None
    return data


def _add_routes(app: FastAPI, engine: SearchEngine, thumbnails_dir: Path) -> None:
    @app.get("/health", response_model=HealthOut, summary="Index version, points, models loaded (no token)")
    def health() -> JSONResponse | HealthOut:
        try:
            return HealthOut(status="ok", index_version=engine.index_version(), points=engine.count(),
                             models_loaded=engine.models_loaded())
        except (NoIndexError, IndexUnavailableError):
            body = HealthOut(status="no index", index_version=None, points=0, models_loaded=engine.models_loaded())
            return JSONResponse(body.model_dump(mode="json"), status_code=503)

    @app.post("/search", response_model=SearchOut, summary="Find people by an image and/or a description")
    def search(
        image: Annotated[UploadFile | None, File(description="photo or crop of the person (JPEG, PNG, ...)")] = None,
        text: Annotated[str | None, Form(max_length=500, description="e.g. 'woman, red jacket, backpack'")] = None,
        cameras: Annotated[list[str] | None, Form(description="only these cameras (repeat or comma-separate)")] = None,
        start: Annotated[datetime | None, Form(description="only tracklets seen at or after (ISO 8601)")] = None,
        end: Annotated[datetime | None, Form(description="only tracklets seen at or before (ISO 8601)")] = None,
        limit: Annotated[int, Form(ge=1, le=MAX_RESULTS, description="persons to return")] = 10,
        filters: Annotated[list[str] | None, Form(description="attributes: female, bag, no-hat, ...")] = None,
    ) -> SearchOut:
        wanted = {name.removeprefix("no-"): not name.startswith("no-") for name in _split(filters)}
        time_range = (_utc(start), _utc(end)) if start or end else None
        results = engine.search(
            image=_read_image(image),
            text=text,
            camera_ids=_split(cameras) or None,
            time_range=time_range,
            limit=limit,
            attribute_filters=wanted or None,
        )
        return search_out(results, thumbnails_dir)

    @app.get("/persons/{global_id}", response_model=TimelineOut, summary="A person's timeline across cameras")
    def person(global_id: int) -> TimelineOut:
        return timeline_out(global_id, engine.person_timeline(global_id), thumbnails_dir)

    @app.get(
        "/tracklets/{camera_id}/{tracklet_id}/clip",
        response_class=FileResponse,
        responses={200: {"content": {"video/mp4": {}}, "description": "H.264 MP4 with the tracklet's box"}},
        summary="The tracklet's video clip with its box drawn",
    )
    def clip(
        camera_id: Annotated[str, PathParam(pattern=CAMERA_ID_PATTERN)],
        tracklet_id: Annotated[int, PathParam(ge=0)],
    ) -> FileResponse:
        path = engine.render_clip(engine.tracklet(camera_id, tracklet_id))
        return FileResponse(path, media_type="video/mp4", filename=path.name)

    @app.get("/thumbnails/{relative:path}", response_class=FileResponse, summary="A thumbnail of the run")
    def thumbnail(relative: str) -> FileResponse:
        return FileResponse(_thumbnail_file(thumbnails_dir, relative))


def _thumbnail_file(thumbnails_dir: Path, relative: str) -> Path:
    """A file inside the thumbnail folder, or an HTTP error: nothing outside it is ever served.

    `..`, absolute paths, backslashes and NUL bytes are refused outright (400); a symlink that leads
    out of the folder, a missing file or another kind of file is simply not found (404).
    """
    parts = relative.replace("\\", "/").split("/")
    if "\x00" in relative or "\\" in relative or relative.startswith("/") or ".." in parts:
        raise HTTPException(status_code=400, detail="invalid thumbnail path: it must stay inside the thumbnail folder")
    try:
        candidate = (thumbnails_dir / relative).resolve()
    except (OSError, ValueError):
        raise HTTPException(status_code=400, detail="invalid thumbnail path") from None
    inside = candidate.is_relative_to(thumbnails_dir) and candidate.suffix.lower() in THUMBNAIL_SUFFIXES
    if not inside or not candidate.is_file():
        raise HTTPException(status_code=404, detail=f"no thumbnail '{relative[:80]}'")
    return candidate
