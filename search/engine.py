"""Person search over the tracklet index: by example image, by description, or both.

The library behind `smarttrace search`, the dashboard and the HTTP API; no Streamlit or HTTP in
here, so every front end shows the same results and the same error messages. This module holds
the engine (models, index access, finding the person in an upload, combining scores); decoding
uploads is in `search.images`, description scoring in `search.text`, grouping tracklets into
persons in `search.results`, video clips in `search.clips`.

Image search ranks by OSNet cosine similarity (OSNet's features pass a ReLU, so the cosine is
already in [0, 1]). A combined query mixes image and text with the named weights below. Every
path read from the index payload (thumbnails) is resolved and must stay inside the run folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from search.clips import ClipRenderer
from search.errors import NoIndexError, NotInIndexError, SearchInputError, UnsafePathError
from search.images import ImageInput, decode_image
from search.models import QueryModels
from search.person import find_person
from search.results import (
    IndexSummary,
    PersonResult,
    QueryPerson,
    SearchResults,
    TrackletHit,
    group_by_identity,
)
from search.text import CLIP_PROMPT, TextScores, check_understood, filter_mask, filters_note, read_query, score_columns
from smarttrace.config import CameraConfig, SmartTraceConfig
from storage.attribute_vectors import attribute_terms
from storage.index import (
    CLIP_VECTOR,
    REID_VECTOR,
    TEXT_CANDIDATES,
    IndexConfig,
    IndexLockedError,
    IndexSchemaError,
    IndexUnavailableError,
    PayloadColumns,
    SearchHit,
    TimeBound,
    count_points,
    current_version,
    payload_columns,
    scroll_all,
    search_vectors,
)
from storage.index_settings import index_config
from storage.layout import RunLayout

if TYPE_CHECKING:  # heavy imports (torch, ultralytics, open_clip) stay lazy at run time
    from tasks.embed_clip import ClipEmbedder
    from tasks.embed_reid import ReidEmbedder

log = logging.getLogger("smarttrace.search")

# ---------------------------------------------------------------------------- embedding the person
# Average the query embedding with its mirror image: people are seen walking both ways.
QUERY_FLIP_AUGMENT = True

# ---------------------------------------------------------------------------- scoring
# Tracklets fetched per requested identity for image search: one person is many tracklets, and a
# person result lists its tracklets (those that match the filters), not just the best one.
TRACKLETS_PER_RESULT = 10
MIN_IMAGE_CANDIDATES = 200
# Image + text together: appearance (OSNet) identifies a person, 12 colour names only narrow it
# down, so the image dominates and the description re-ranks among look-alikes.
COMBINED_IMAGE_WEIGHT = 0.7
COMBINED_TEXT_WEIGHT = 0.3


class SearchEngine:
    """Search one config's index. Models load lazily, once, on first use (thread-safe).

    One engine per config and process (the dashboard caches it across sessions): the ReID model,
    the query detector and CLIP take seconds to load, a query tens of milliseconds.
    """

    def __init__(self, config: SmartTraceConfig) -> None:
        self.config = config
        self.run_dir = Path(config.storage.run_dir).resolve()
        self.layout = RunLayout(self.run_dir)
        self.index: IndexConfig = index_config(config)
        self._cameras: dict[str, CameraConfig] = {camera.id: camera for camera in config.cameras}
        self.models = QueryModels(config)
        self._infer_lock = self.models.infer_lock  # ultralytics predictors and torch modules: one call at a time
        self._clips = ClipRenderer(self.run_dir, self._cameras)

    # ------------------------------------------------------------------ models (search.models)

    @property
    def reid(self) -> ReidEmbedder:
        """The OSNet embedder the pipeline used for the index's `reid` vectors."""
        return self.models.reid

    def _detector(self, size: int) -> Any:
        return self.models.detector(size)

    @property
    def clip(self) -> ClipEmbedder | None:
        """The configured CLIP model, or None when its weights are not available locally."""
        return self.models.clip

    @property
    def clip_available(self) -> bool:
        """Whether text search can use CLIP (weights loaded); otherwise colours only."""
        return self.models.clip is not None

    @property
    def clip_note(self) -> str | None:
        """What the user should know about CLIP, or None when it is available and trained."""
        return self.models.clip_note

    def warm_up(self) -> None:
        """Load the image-search models now (the CLI and benchmarks keep load time out of query time)."""
        self.models.warm_up()

    def models_loaded(self) -> dict[str, Any]:
        """Which models are loaded so far (they load on first use): for a health check."""
        return self.models.loaded()

    # ------------------------------------------------------------------ index access

    def _guard(self, call: Callable[[], Any]) -> Any:
        """Turn 'nothing indexed yet' into an error that tells the user what to run."""
        try:
            return call()
        except IndexLockedError:
            raise
        except IndexUnavailableError as exc:
            raise NoIndexError(
                f"no search index yet for this config ({exc}). Run `smarttrace process CONFIG` first; "
                "the index is built at its end"
            ) from None
        except ValueError as exc:  # e.g. a time range that ends before it starts
            raise SearchInputError(str(exc)) from None

    def count(self) -> int:
        """Tracklets in the index; NoIndexError when there is none yet."""
        return int(self._guard(lambda: count_points(self.index)))

    def index_version(self) -> str | None:
        """The published index version an embedded reader answers from; None with a Qdrant server."""
        if self.index.url:
            return None
        return self._guard(lambda: current_version(self.index))

    def tracklet(self, camera_id: str, tracklet_id: int) -> TrackletHit:
        """One indexed tracklet, by camera and tracklet id (to render its clip)."""
        rows = self._guard(lambda: scroll_all(self.index, camera_ids=[str(camera_id)]))
        for _pid, payload in rows:
            if int(payload.get("tracklet_id", -1)) == int(tracklet_id):
                return self._hit(payload)
        raise NotInIndexError(f"no tracklet {tracklet_id} of camera '{str(camera_id)[:64]}' in the index")

    def summary(self) -> IndexSummary:
        """Points, identities, cameras and time span of the index."""
        return IndexSummary.of_payloads([p for _pid, p in self._guard(lambda: scroll_all(self.index))])

    def thumbnail_path(self, relative: str | os.PathLike | None) -> Path | None:
        """Absolute path of a thumbnail named in the index, which must lie inside the run folder.

        Raises UnsafePathError for `..`, absolute paths or symlinks leading outside; None when the
        payload names none or the file is gone.
        """
        if relative is None or str(relative) == "":
            return None
        try:
            candidate = (self.run_dir / relative).resolve()
        except (OSError, ValueError):  # a NUL byte, a symlink loop
            raise UnsafePathError(f"thumbnail path '{str(relative)[:80]}' cannot be resolved") from None
        if not candidate.is_relative_to(self.run_dir):
            raise UnsafePathError(f"thumbnail path '{relative}' points outside the run folder {self.run_dir}")
        return candidate if candidate.is_file() else None

    def _safe_thumbnail(self, payload: dict[str, Any]) -> Path | None:
        try:
            return self.thumbnail_path(payload.get("thumbnail_path"))
        except UnsafePathError as exc:
            log.warning("ignoring a thumbnail: %s", exc)
            return None

    def _hit(self, payload: dict[str, Any], score: float = 0.0, explanation: str = "") -> TrackletHit:
        return TrackletHit.from_payload(payload, self._safe_thumbnail(payload), score, explanation)

    # ------------------------------------------------------------------ queries

    def find_person(self, image: np.ndarray) -> QueryPerson:
        """The person to search for in a decoded image (`search.person.find_person`)."""
        return find_person(image, self._detect)

    def _detect(self, canvas: np.ndarray) -> Any:
        """Detections on one square canvas, with the detector of that canvas size."""
        with self._infer_lock:
            return self._detector(canvas.shape[0])([canvas])[0]

    def embed_person(self, crop: np.ndarray) -> np.ndarray:
        """The OSNet vector of a person crop (mean with its mirror image, re-normalised)."""
        crops = [crop, crop[:, ::-1].copy()] if QUERY_FLIP_AUGMENT else [crop]
        with self._infer_lock:
            vectors = self.reid(crops)
        vector = vectors.mean(axis=0)
        return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)

    def _image_hits(
        self,
        image: ImageInput,
        camera_ids: Sequence[str] | None,
        time_range: tuple[TimeBound, TimeBound] | None,
        candidates: int,
    ) -> tuple[list[SearchHit], QueryPerson]:
        decoded = decode_image(image)
        person = self.find_person(decoded)
        vector = self.embed_person(person.crop)
        hits = self._guard(
            lambda: search_vectors(self.index, REID_VECTOR, vector, candidates, camera_ids, time_range)
        )
        return hits, person

    def search_image(
        self,
        image: ImageInput,
        camera_ids: Sequence[str] | None = None,
        time_range: tuple[TimeBound, TimeBound] | None = None,
        limit: int = 10,
        attribute_filters: Mapping[str, bool] | None = None,
    ) -> SearchResults:
        """People who look like the person in `image`, best first (at most `limit` identities).

        `attribute_filters` (e.g. {"female": True, "bag": True}) keep only tracklets whose attribute
        probabilities pass them (`tasks.attribute_scoring.ATTRIBUTE_FILTERS`).
        """
        _check_limit(limit)
        total = self.count()  # NoIndexError before any model is loaded for nothing
        allowed = self._filtered_ids(attribute_filters, camera_ids, time_range)
        candidates = _candidates(limit) if allowed is None else max(total, 1)
        hits, person = self._image_hits(image, camera_ids, time_range, candidates)
        notes = [person.note]
        if allowed is not None:
            hits = [hit for hit in hits if hit.point_id in allowed][: _candidates(limit)]
            notes.append(filters_note(attribute_filters or {}))
        scores = np.clip(np.array([hit.score for hit in hits], np.float64), 0.0, 1.0)
        results = self._group(
            [hit.payload for hit in hits], scores, lambda i: f"appearance {hits[i].score:.2f}", limit
        )
        return SearchResults(results, notes, person.crop, person.box)

    def _columns(
        self,
        camera_ids: Sequence[str] | None,
        time_range: tuple[TimeBound, TimeBound] | None,
        attribute_query: np.ndarray | None = None,
        top: int | None = None,
        attribute_filters: Mapping[str, bool] | None = None,
    ) -> PayloadColumns:
        try:
            return self._guard(
                lambda: payload_columns(self.index, camera_ids, time_range, attribute_query, top, attribute_filters)
            )
        except KeyError as exc:  # an unknown attribute filter name: the user's error
            raise SearchInputError(str(exc.args[0])) from None

    def _filtered_ids(
        self,
        attribute_filters: Mapping[str, bool] | None,
        camera_ids: Sequence[str] | None,
        time_range: tuple[TimeBound, TimeBound] | None,
    ) -> set[str] | None:
        """Ids of the points passing the attribute filters; None when there are no filters."""
        if not attribute_filters:
            return None
        columns = self._columns(camera_ids, time_range, attribute_filters=attribute_filters)
        keep = filter_mask(attribute_filters, columns.attribute_probs)
        return {columns.ids[i] for i in np.flatnonzero(keep)}

    def _text_scores(
        self,
        text: str | None,
        camera_ids: Sequence[str] | None,
        time_range: tuple[TimeBound, TimeBound] | None,
        attribute_filters: Mapping[str, bool] | None = None,
        top: int | None = None,
    ) -> TextScores:
        """The description's score (0..1) for every tracklet in the filters, and what the user should know.

        `top`: score only the engine's `top` best tracklets by the description's attribute query
        (plus those indexed without attributes) instead of every tracklet; exact scores either way.

        `search.text` scores; this reads what it scores from the index (payload columns, CLIP
        similarities). `attribute_filters` drop tracklets that fail them (score 0) and, without a
        description, are the query themselves.
        """
        query = read_query(text, attribute_filters)
        clip = self.clip if query.description is not None else None
        clip_scores: dict[str, float] = {}
        if clip is not None:
            clip_scores = self._clip_scores(clip, str(text), camera_ids, time_range, query.notes)
        if query.description is not None and (clip is None or clip.is_random):
            query.notes.append(self.clip_note or "")
        check_understood(query, clip_scores)
        attribute_query = attribute_terms(query.constraints) if top is not None and not clip_scores else None
        columns = self._columns(camera_ids, time_range, attribute_query, top, attribute_filters)
        return score_columns(query, columns, attribute_filters, clip_scores)

    def _clip_scores(
        self,
        clip: ClipEmbedder,
        text: str,
        camera_ids: Sequence[str] | None,
        time_range: tuple[TimeBound, TimeBound] | None,
        notes: list[str],
    ) -> dict[str, float]:
        """Raw CLIP cosine of the description against every tracklet's CLIP vector (empty if none indexed)."""
        with self._infer_lock:
            vector = clip.embed_texts([CLIP_PROMPT.format(text.strip())])[0]
        config = self.index.model_copy(update={"clip_dim": int(vector.size)})
        total = self.count()
        try:
            hits = self._guard(
                lambda: search_vectors(config, CLIP_VECTOR, vector, max(total, 1), camera_ids, time_range)
            )
        except IndexSchemaError:
            notes.append("the index holds no CLIP vectors (the pipeline ran without CLIP): attributes only")
            return {}
        return {hit.point_id: float(hit.score) for hit in hits}

    def search_text(
        self,
        text: str | None,
        camera_ids: Sequence[str] | None = None,
        time_range: tuple[TimeBound, TimeBound] | None = None,
        limit: int = 10,
        attribute_filters: Mapping[str, bool] | None = None,
    ) -> SearchResults:
        """People matching a description ("woman in a red jacket with a backpack"), best first.

        Without a description, `attribute_filters` alone are the query ("only women, with a bag").
        Tracklets failing a filter, scoring under MIN_ATTRIBUTE_SCORE by their attributes, or (colour
        rules) showing none of the described colours are not results.
        """
        _check_limit(limit)
        text_scores = self._text_scores(
            text, camera_ids, time_range, attribute_filters, top=max(TEXT_CANDIDATES, limit * TRACKLETS_PER_RESULT)
        )
        keep = np.flatnonzero(text_scores.scores > 0)
        results = self._group(
            [text_scores.payloads[i] for i in keep], text_scores.scores[keep],
            lambda j: text_scores.explain(int(keep[j])), limit,
        )
        return SearchResults(results, text_scores.notes)

    def search(
        self,
        image: ImageInput | None = None,
        text: str | None = None,
        camera_ids: Sequence[str] | None = None,
        time_range: tuple[TimeBound, TimeBound] | None = None,
        limit: int = 10,
        attribute_filters: Mapping[str, bool] | None = None,
    ) -> SearchResults:
        """Image, text, or both: both rank the image's nearest tracklets by the weighted mean
        COMBINED_IMAGE_WEIGHT * appearance + COMBINED_TEXT_WEIGHT * description. `attribute_filters`
        narrow any of them, or are the query on their own."""
        has_text = text is not None and str(text).strip() != ""
        if image is None and not has_text and not attribute_filters:
            raise SearchInputError("give an image of the person, a description, or both")
        if image is None:
            return self.search_text(str(text) if has_text else None, camera_ids, time_range, limit, attribute_filters)
        if not has_text:
            return self.search_image(image, camera_ids, time_range, limit, attribute_filters)
        _check_limit(limit)
        self.count()
        text_scores = self._text_scores(str(text), camera_ids, time_range, attribute_filters)
        hits, person = self._image_hits(image, camera_ids, time_range, _candidates(limit))
        position = {pid: i for i, pid in enumerate(text_scores.ids)}
        if attribute_filters:  # a hit failing a filter scored 0 as text: it is not a result
            hits = [hit for hit in hits if hit.point_id in position and text_scores.scores[position[hit.point_id]] > 0]
        rows = [position.get(hit.point_id) for hit in hits]
        appearance = np.clip(np.array([hit.score for hit in hits], np.float64), 0.0, 1.0)
        described = np.array([0.0 if i is None else text_scores.scores[i] for i in rows])
        scores = (COMBINED_IMAGE_WEIGHT * appearance + COMBINED_TEXT_WEIGHT * described) / (
            COMBINED_IMAGE_WEIGHT + COMBINED_TEXT_WEIGHT
        )

        def explain(j: int) -> str:
            i = rows[j]
            note = "not in the filters" if i is None else text_scores.explain(i)
            return f"appearance {hits[j].score:.2f}; text {described[j]:.2f} ({note})"

        results = self._group([hit.payload for hit in hits], scores, explain, limit)
        return SearchResults(results, [person.note, *text_scores.notes], person.crop, person.box)


    def _group(
        self, payloads: Sequence[dict[str, Any]], scores: np.ndarray, explain: Callable[[int], str], limit: int
    ) -> list[PersonResult]:
        """One result per identity, best first (`search.results.group_by_identity`)."""
        return group_by_identity(payloads, scores, explain, limit, self._hit)

    # ------------------------------------------------------------------ a person's appearances

    def person_timeline(self, global_id: int) -> list[TrackletHit]:
        """Every tracklet of one identity, in time order (camera, location, times, frames, video, thumbnail)."""
        if int(global_id) < 0:
            raise SearchInputError("this tracklet has no global identity: nothing to follow across cameras")
        rows = self._guard(lambda: scroll_all(self.index))
        hits = [self._hit(p) for _pid, p in rows if int(p.get("global_id", -1)) == int(global_id)]
        if not hits:
            raise NotInIndexError(f"no person with global id {global_id} in the index (was the index rebuilt?)")
        far = datetime.max.replace(tzinfo=UTC)
        hits.sort(key=lambda t: (t.start_time or far, t.camera_id, t.tracklet_id))
        return hits

    # ------------------------------------------------------------------ video clips

    def default_clip_dir(self) -> Path:
        """Where clips are cached: `<run_dir>/clips`, or a temp folder when the run folder is read-only."""
        return self._clips.default_clip_dir()

    def render_clip(self, tracklet: TrackletHit, out_dir: Path | None = None) -> Path:
        """An H.264 MP4 of the tracklet's frames with its box drawn (`search.clips.ClipRenderer`)."""
        return self._clips.render_clip(tracklet, out_dir)


def _check_limit(limit: int) -> None:
    if not 1 <= int(limit) <= 1000:
        raise SearchInputError(f"limit must be between 1 and 1000, got {limit}")


def _candidates(limit: int) -> int:
    return max(limit * TRACKLETS_PER_RESULT, MIN_IMAGE_CANDIDATES)


def load_engine(config_path: str | os.PathLike) -> SearchEngine:
    """A SearchEngine for a config file (ConfigError names the file and field when it is bad)."""
    from smarttrace.config import load_config

    return SearchEngine(load_config(config_path))
