"""Person search over the tracklet index: by example image, by description, or both.

The library behind `smarttrace search` and the dashboard; no Streamlit in here, so both front
ends show the same results and the same error messages.

Why results are grouped by identity: the index holds one point per *tracklet*, but a user looks
for a *person*. One person walking through three cameras is a dozen tracklets; listing them
separately would fill the first page with one person. Each `PersonResult` is one global id,
scored by its best tracklet, with its thumbnail, cameras and first/last time seen.

Why scores are in [0, 1] and explained: image search ranks by OSNet cosine similarity (OSNet's
features pass a ReLU, so the cosine is already in [0, 1]); text search by how much of the
described colours the tracklet's clothes showed (`tasks.text_query.score_attributes`) and, when
CLIP weights are present, by a rescaled CLIP similarity. A combined query mixes them with the
named weights below. Every score carries a one-line explanation of what matched, so a user can
tell an appearance match from a colour match.

Untrusted input: an uploaded image is bounded in bytes and in pixels (checked on the header,
before decoding, so a 20000x20000 PNG of a few hundred bytes is refused without allocating
1.2 GB), and every path read from the index payload (thumbnails) is resolved and must stay inside
the run folder.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import re
import struct
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import cv2
import numpy as np

from smarttrace.config import CameraConfig, SmartTraceConfig
from smarttrace.errors import SmartTraceError
from storage.index import (
    CLIP_VECTOR,
    REID_VECTOR,
    IndexConfig,
    IndexLockedError,
    IndexSchemaError,
    IndexUnavailableError,
    PayloadColumns,
    SearchHit,
    TimeBound,
    count_points,
    payload_columns,
    scroll_all,
    search_vectors,
)
from storage.index_settings import index_config
from storage.layout import RunLayout

if TYPE_CHECKING:  # heavy imports (torch, ultralytics, open_clip) stay lazy at run time
    from tasks.embed_clip import ClipEmbedder
    from tasks.embed_reid import ReidEmbedder
    from tasks.text_query import AttributeQuery, Description

log = logging.getLogger("smarttrace.search")

# ---------------------------------------------------------------------------- upload limits
# An uploaded query image is untrusted. 20 MB holds any phone photo as JPEG; 50 megapixels is an
# 8K frame with room to spare. Both are checked before the pixels are decoded.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 50_000_000
MIN_IMAGE_SIDE = 16  # pixels: below this there is no person to see

# ---------------------------------------------------------------------------- finding the person
# The query detector sees the image letterboxed into a fixed square canvas, so the (OpenVINO)
# detector is exported once per size instead of once per upload size. 640 finds people in crops and
# photos in ~60 ms; people ~80 px tall in a CCTV frame need 1280 (measured on PETS09: none found at
# 640, most at 1280), so 1280 is tried only when 640 found nobody.
QUERY_DETECT_SIZES = (640, 1280)
QUERY_MIN_CONFIDENCE = 0.3  # the tracker's 0.1 keeps doubtful boxes; a query needs a real person
# A detected box covering at least this share of the image means the upload already is a person crop:
# the whole image is used, framed like the indexed crops (which are detector boxes too).
TIGHT_CROP_COVERAGE = 0.5
# No detection but the image is shaped like a standing person (height / width; PETS09 boxes are
# 2.2-3.7) and not blank: a small crop the detector missed; it is used whole, with a note.
PERSON_ASPECT_RANGE = (1.4, 5.0)
MIN_TEXTURE_STD = 6.0  # grey-level standard deviation below which an image is blank
# Average the query embedding with its mirror image: people are seen walking both ways.
QUERY_FLIP_AUGMENT = True

# ---------------------------------------------------------------------------- scoring
# Tracklets fetched per requested identity for image search: one person is many tracklets, and a
# person result lists its tracklets (those that match the filters), not just the best one.
TRACKLETS_PER_RESULT = 10
MIN_IMAGE_CANDIDATES = 200
# CLIP text-image cosine similarities of ViT-B-32 live in a narrow band (~0.15 unrelated, ~0.35 a
# good match); rescaled linearly to [0, 1] so they can be averaged with the attribute score.
CLIP_SCORE_FLOOR = 0.15
CLIP_SCORE_CEIL = 0.35
CLIP_PROMPT = "a photo of a person wearing {}"
# Text score when both are available: the colour attributes are measured on the tracklet's own
# crops and explainable, CLIP on 80 px crops is the weaker signal, so attributes weigh more.
TEXT_ATTRIBUTE_WEIGHT = 0.6
TEXT_CLIP_WEIGHT = 0.4
# Attribute-model text score (a geometric mean of the constraints' probabilities) below which a
# tracklet is not a result: 0.1 = each stated attribute is on average ~10x less likely than not, i.e.
# the description contradicts what the model saw ("man" for someone at p(male) 0.05).
MIN_ATTRIBUTE_SCORE = 0.1
# Image + text together: appearance (OSNet) identifies a person, 12 colour names only narrow it
# down, so the image dominates and the description re-ranks among look-alikes.
COMBINED_IMAGE_WEIGHT = 0.7
COMBINED_TEXT_WEIGHT = 0.3

# ---------------------------------------------------------------------------- clips
CLIP_MAX_WIDTH = 960  # pixels; larger frames are scaled down: a dashboard tile is smaller
MAX_CLIP_FRAMES = 900  # longer tracklets are subsampled in time (the clip keeps its real duration)
CLIP_CRF = "23"  # libx264 quality: visually clean, ~1 MB per minute at 768x576
_CAMERA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # = CameraConfig.id: safe in file names
BOX_DETECTED_BGR = (60, 220, 60)
BOX_INTERPOLATED_BGR = (0, 170, 255)

ImageInput = np.ndarray | bytes | bytearray | memoryview | str | os.PathLike | IO[bytes]


class SearchInputError(SmartTraceError):
    """A query the user must change: not an image, too large, nobody in it, an empty description."""


class NoIndexError(SmartTraceError):
    """Nothing has been indexed yet for this config: the pipeline has to run first."""


class UnsafePathError(SearchInputError):
    """A path from the index points outside the run folder (`..`, absolute path or symlink)."""


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (ISO 8601 times, string paths)."""
        return {
            "camera_id": self.camera_id,
            "tracklet_id": self.tracklet_id,
            "global_id": self.global_id,
            "person_id": self.person_id,
            "location": self.location,
            "start_time": _iso(self.start_time),
            "end_time": _iso(self.end_time),
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
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _time(epoch: Any) -> datetime | None:
    if epoch is None or (isinstance(epoch, float) and math.isnan(epoch)):
        return None
    return datetime.fromtimestamp(float(epoch), tz=UTC)


# ---------------------------------------------------------------------------- image decoding


def _read_upload(source: ImageInput) -> bytes:
    """The upload's bytes, refusing anything over MAX_IMAGE_BYTES before reading it all."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise SearchInputError(f"image file not found: {path}")
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise SearchInputError(
                f"image file {path.name} is {size / 2**20:.1f} MB; the limit is {MAX_IMAGE_BYTES / 2**20:.0f} MB"
            )
        data = path.read_bytes()
    elif hasattr(source, "read"):
        data = source.read(MAX_IMAGE_BYTES + 1)
        if not isinstance(data, bytes | bytearray):
            raise SearchInputError("the uploaded file did not yield bytes")
        data = bytes(data)
    else:
        raise SearchInputError(f"cannot read an image from a {type(source).__name__}")
    if len(data) > MAX_IMAGE_BYTES:
        raise SearchInputError(
            f"the image is larger than {MAX_IMAGE_BYTES / 2**20:.0f} MB: upload a smaller photo or a crop of the person"
        )
    if not data:
        raise SearchInputError("the uploaded file is empty")
    return data


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise SearchInputError(
            f"the image is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); the limit is "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels: downscale it or crop the person"
        )
    if min(width, height) < MIN_IMAGE_SIDE:
        raise SearchInputError(
            f"the image is {width}x{height} pixels: too small to show a person (at least {MIN_IMAGE_SIDE} px a side)"
        )


# Magic numbers of the formats we accept. Anything else is refused before any decoder sees it.
_IMAGE_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"BM", "BMP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (8, b"WEBP", "WEBP"),
)


def _image_format(data: bytes) -> str | None:
    for offset, magic, name in _IMAGE_SIGNATURES:
        if data[offset : offset + len(magic)] == magic and (name != "WEBP" or data[:4] == b"RIFF"):
            return name
    return None


def _pil_open() -> Callable[..., Any]:
    """PIL's own `Image.open`, not ultralytics' replacement of it.

    Importing ultralytics swaps `PIL.Image.open` for a wrapper that, on a file PIL cannot identify,
    tries to pip-install pi-heif at run time. An uploaded file must never trigger an install.
    """
    import sys

    from PIL import Image

    patches = sys.modules.get("ultralytics.utils.patches")
    original = getattr(patches, "_image_open", None) if patches is not None else None
    return original if callable(original) else Image.open


def decode_image(source: ImageInput) -> np.ndarray:
    """An uploaded image (bytes, path, file object or array) as a BGR uint8 array, within the limits.

    The format is checked on its magic number and the size on its header (PIL opens lazily), so an
    oversized image is refused before its pixels are decoded; then OpenCV decodes it, applying
    the EXIF orientation of phone photos.
    """
    if isinstance(source, np.ndarray):
        return _as_bgr(source)
    data = _read_upload(source)
    kind = _image_format(data)
    if kind is None:
        raise SearchInputError("the upload is not an image that can be read (use a JPEG, PNG, WebP, BMP or TIFF photo)")
    from PIL import Image

    open_image = _pil_open()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with open_image(io.BytesIO(data), formats=[kind]) as header:
                width, height = header.size
    except Image.DecompressionBombError as exc:
        raise SearchInputError(
            f"the image is too large to decode safely ({exc}); the limit is {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels"
        ) from None
    except (OSError, ValueError, SyntaxError, struct.error, IndexError, TypeError):  # UnidentifiedImageError: OSError
        raise SearchInputError(f"the {kind} image is corrupt: its header cannot be read") from None
    _check_pixels(width, height)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:  # a format PIL knows and OpenCV does not (GIF), or a truncated file
        try:
            with open_image(io.BytesIO(data), formats=[kind]) as pil:
                image = cv2.cvtColor(np.asarray(pil.convert("RGB")), cv2.COLOR_RGB2BGR)
        except (OSError, ValueError, SyntaxError, struct.error, IndexError, TypeError):
            raise SearchInputError("the image file is corrupt or truncated: its pixels cannot be decoded") from None
    return image


def _as_bgr(array: np.ndarray) -> np.ndarray:
    """Accept grey, BGR and BGRA uint8 arrays (what OpenCV produces)."""
    if array.dtype != np.uint8:
        raise SearchInputError(f"the image array must be uint8, got {array.dtype}")
    if array.ndim == 2:
        array = cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    elif not (array.ndim == 3 and array.shape[2] == 3):
        raise SearchInputError(f"the image array must be HxW, HxWx3 or HxWx4, got shape {array.shape}")
    _check_pixels(array.shape[1], array.shape[0])
    return np.ascontiguousarray(array)


def _letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """The image scaled to fit a size x size grey canvas (top-left aligned), and the scale used."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    resized = cv2.resize(
        image,
        (max(1, round(width * scale)), max(1, round(height * scale))),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )
    canvas = np.full((size, size, 3), 114, np.uint8)  # YOLO's padding grey
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    return canvas, scale


# ---------------------------------------------------------------------------- the engine


@dataclass(frozen=True)
class _TextScores:
    """A description scored against every tracklet in the filters (parallel lists, best not first)."""

    ids: list[str]
    payloads: list[dict[str, Any]]
    scores: np.ndarray  # (n,) float64 in [0, 1]
    explain: Callable[[int], str]  # explanation of row i, written only for rows shown
    notes: list[str]


class _AttributeScorer:
    """`score_attributes` for one query over many tracklets, memoised per (upper, lower) colour pair.

    The index payload holds each region's dominant colour and its confidence (no per-colour
    shares), and for fixed colours `score_attributes` is then (A*u + B*l + C*max(u, l)) / W in the
    two confidences u, l: a stated region's credit is its confidence when the colour matches, an
    `any` colour takes the better region. Three calls per colour pair give A, B, C and a fourth
    call checks them; a pair that fails the check (should `score_attributes` ever change shape)
    is scored by calling it for every tracklet. Text search over 50k tracklets needs this: one
    call per tracklet costs ~0.3 s.
    """

    _CHECK = (0.37, 0.81)

    def __init__(self, query: AttributeQuery) -> None:
        from tasks.text_query import score_attributes

        self._query = query
        self._score_attributes = score_attributes
        self._coefficients: dict[tuple[str | None, str | None], tuple[float, float, float] | None] = {}

    def _call(self, upper: str | None, up: float | None, lower: str | None, low: float | None) -> tuple[float, str]:
        return self._score_attributes(self._query, upper, up, lower, low)

    def _fit(self, upper: str | None, lower: str | None) -> tuple[float, float, float] | None:
        s10 = self._call(upper, 1.0, lower, 0.0)[0]
        s01 = self._call(upper, 0.0, lower, 1.0)[0]
        s11 = self._call(upper, 1.0, lower, 1.0)[0]
        a, b, c = s11 - s01, s11 - s10, s10 + s01 - s11
        up, low = self._CHECK
        if abs(a * up + b * low + c * max(up, low) - self._call(upper, up, lower, low)[0]) > 1e-9:
            return None
        return a, b, c

    def score(self, upper: str | None, up: float | None, lower: str | None, low: float | None) -> float:
        key = (upper, lower)
        if key not in self._coefficients:
            self._coefficients[key] = self._fit(upper, lower)
        coefficients = self._coefficients[key]
        if coefficients is None:
            return self._call(upper, up, lower, low)[0]
        up, low = float(up or 0.0), float(low or 0.0)
        a, b, c = coefficients
        return min(max(a * up + b * low + c * max(up, low), 0.0), 1.0)

    def explain(self, upper: str | None, up: float | None, lower: str | None, low: float | None) -> str:
        return self._call(upper, up, lower, low)[1]


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
        self._load_lock = threading.Lock()
        self._infer_lock = threading.Lock()  # ultralytics predictors and torch modules: one call at a time
        self._render_lock = threading.Lock()
        self._reid: ReidEmbedder | None = None
        self._detectors: dict[int, Any] = {}
        self._clip: ClipEmbedder | None = None
        self._clip_loaded = False

    # ------------------------------------------------------------------ models

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

        return self._lazy("_reid", lambda: ReidEmbedder(self.config.embed.reid_weights, self.config.embed.reid_batch))

    def _detector(self, size: int) -> Any:
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
    def clip_available(self) -> bool:
        """Whether text search can use CLIP (weights loaded); otherwise colours only."""
        return self.clip is not None

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
            self._detector(size)([np.zeros((size, size, 3), np.uint8)])

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

    def summary(self) -> IndexSummary:
        """Points, identities, cameras and time span of the index."""
        payloads = [p for _pid, p in self._guard(lambda: scroll_all(self.index))]
        starts = [p["start_epoch"] for p in payloads if p.get("start_epoch") is not None]
        ends = [p["end_epoch"] for p in payloads if p.get("end_epoch") is not None]
        return IndexSummary(
            points=len(payloads),
            identities=len({int(p.get("global_id", -1)) for p in payloads if int(p.get("global_id", -1)) >= 0}),
            cameras=sorted({str(p.get("camera_id")) for p in payloads}),
            first_seen=_time(min(starts)) if starts else None,
            last_seen=_time(max(ends)) if ends else None,
            has_clip=any(p.get("has_clip") for p in payloads),
        )

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
        return TrackletHit(
            camera_id=str(payload.get("camera_id", "")),
            tracklet_id=int(payload.get("tracklet_id", -1)),
            global_id=int(payload.get("global_id", -1)),
            person_id=int(payload.get("person_id", -1)),
            location=str(payload.get("location") or ""),
            start_time=_time(payload.get("start_epoch")),
            end_time=_time(payload.get("end_epoch")),
            start_frame=int(payload.get("start_frame", 0)),
            end_frame=int(payload.get("end_frame", 0)),
            video_path=str(payload.get("video_path") or ""),
            thumbnail=self._safe_thumbnail(payload),
            upper_color=payload.get("upper_color"),
            lower_color=payload.get("lower_color"),
            score=float(score),
            explanation=explanation,
        )

    # ------------------------------------------------------------------ queries

    def find_person(self, image: np.ndarray) -> QueryPerson:
        """The person to search for in a decoded image: the largest confident detection.

        A tight crop is used whole; a person-shaped, non-blank image without any detection is
        used whole with a note; anything else without a person is a SearchInputError.
        """
        height, width = image.shape[:2]
        boxes = np.zeros((0, 4), np.float32)
        confidences = np.zeros(0, np.float32)
        # A crop smaller than the first canvas is already upscaled there; a larger canvas only costs time.
        sizes = QUERY_DETECT_SIZES if max(height, width) > QUERY_DETECT_SIZES[0] else QUERY_DETECT_SIZES[:1]
        for size in sizes:
            canvas, scale = _letterbox(image, size)
            with self._infer_lock:
                detections = self._detector(size)([canvas])[0]
            keep = detections.confidence >= QUERY_MIN_CONFIDENCE
            if keep.any():
                boxes = detections.xyxy[keep] / scale
                confidences = detections.confidence[keep]
                break
        aspect = height / max(width, 1)
        if len(boxes):
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
            areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            best = int(np.argmax(areas * confidences))
            x1, y1, x2, y2 = (int(v) for v in np.round(boxes[best]))
            coverage = float(areas[best]) / float(width * height)
            others = f" (the largest of {len(boxes)} people found)" if len(boxes) > 1 else ""
            if coverage >= TIGHT_CROP_COVERAGE:
                return QueryPerson(image, (0, 0, width, height), float(confidences[best]), len(boxes),
                                   f"the image is a person crop: used whole{others}")
            if x2 - x1 < 4 or y2 - y1 < 8:
                raise SearchInputError("the person found in the image is too small to search for")
            return QueryPerson(image[y1:y2, x1:x2].copy(), (x1, y1, x2, y2), float(confidences[best]), len(boxes),
                               f"person detected with confidence {confidences[best]:.2f}{others}")
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if float(grey.std()) < MIN_TEXTURE_STD:
            raise SearchInputError("no person found in the image: it is blank")
        if PERSON_ASPECT_RANGE[0] <= aspect <= PERSON_ASPECT_RANGE[1]:
            return QueryPerson(image, (0, 0, width, height), None, 0,
                               "no person detected, but the image is shaped like a person crop: used whole")
        raise SearchInputError(
            "no person found in the image: upload a photo or a crop in which one person is clearly visible"
        )

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
            notes.append(_filters_note(attribute_filters or {}))
        scores = np.clip(np.array([hit.score for hit in hits], np.float64), 0.0, 1.0)
        results = self._group(
            [hit.payload for hit in hits], scores, lambda i: f"appearance {hits[i].score:.2f}", limit
        )
        return SearchResults(results, notes, person.crop, person.box)

    def _parse_text(self, text: str) -> Description:
        from tasks.text_query import parse_description

        if text is None or not str(text).strip():
            raise SearchInputError(
                "the description is empty: describe the person, e.g. 'woman in a red jacket with a backpack'"
            )
        if len(text) > 500:
            raise SearchInputError("the description is too long (500 characters at most)")
        return parse_description(text)

    def _columns(
        self, camera_ids: Sequence[str] | None, time_range: tuple[TimeBound, TimeBound] | None
    ) -> PayloadColumns:
        return self._guard(lambda: payload_columns(self.index, camera_ids, time_range))

    def _filtered_ids(
        self,
        attribute_filters: Mapping[str, bool] | None,
        camera_ids: Sequence[str] | None,
        time_range: tuple[TimeBound, TimeBound] | None,
    ) -> set[str] | None:
        """Ids of the points passing the attribute filters; None when there are no filters."""
        if not attribute_filters:
            return None
        columns = self._columns(camera_ids, time_range)
        keep = _filter_mask(attribute_filters, columns.attribute_probs)
        return {columns.ids[i] for i in np.flatnonzero(keep)}

    def _text_scores(
        self,
        text: str | None,
        camera_ids: Sequence[str] | None,
        time_range: tuple[TimeBound, TimeBound] | None,
        attribute_filters: Mapping[str, bool] | None = None,
    ) -> _TextScores:
        """The description's score (0..1) for every tracklet in the filters, and what the user should know.

        Tracklets with attribute probabilities are scored by `tasks.attribute_scoring` (geometric mean
        of the constraints' probabilities); those indexed without an attribute model by the colour
        rules (`_AttributeScorer`). `attribute_filters` drop tracklets that fail them (score 0) and,
        without a description, are the query themselves.
        """
        from tasks.attribute_scoring import filter_constraint, score_constraints

        notes: list[str] = []
        description = None
        if text is not None and str(text).strip():
            description = self._parse_text(text)
        elif not attribute_filters:
            self._parse_text("")  # raises the "empty description" error
        if description is not None:
            constraints = list(description.constraints)
            if description.unknown_words:
                notes.append(f"not understood: {', '.join(description.unknown_words)}")
            if description.unmeasured:
                notes.append(f"not measured by the attribute model: {', '.join(description.unmeasured)}")
        else:
            try:
                constraints = [filter_constraint(name, wanted) for name, wanted in (attribute_filters or {}).items()]
            except KeyError as exc:
                raise SearchInputError(str(exc.args[0])) from None
        clip = self.clip if description is not None else None
        clip_scores: dict[str, float] = {}
        if clip is not None:
            clip_scores = self._clip_scores(clip, str(text), camera_ids, time_range, notes)
        if description is not None and (clip is None or clip.is_random):
            notes.append(self.clip_note or "")
        if not constraints and not clip_scores:
            heard = (description.unknown_words + description.unmeasured) if description is not None else []
            raise SearchInputError(
                f"not understood: {', '.join(heard) or str(text).strip()[:80]}. Describe the person with words such "
                "as 'woman', 'old man', 'red jacket', 'blue jeans', 'long hair', 'backpack', 'no hat'"
            )
        columns = self._columns(camera_ids, time_range)
        ids, payloads, has = columns.ids, columns.payloads, columns.has_attributes
        learned = score_constraints(constraints, columns.attribute_probs[has]) if has.any() and constraints else None
        attribute = np.zeros(len(ids))
        position = np.cumsum(has) - 1  # row i of the index -> its row in `learned` (where has[i])
        if learned is not None:
            attribute[has] = np.where(learned.scores >= MIN_ATTRIBUTE_SCORE, learned.scores, 0.0)
        query = description.colour_query() if description is not None else None
        scorer = _AttributeScorer(query) if query is not None and not query.is_empty() else None
        old = np.flatnonzero(~has)
        if old.size:
            notes.append(
                f"{old.size} of {len(ids)} tracklets were indexed without the attribute model: "
                + ("they are scored by clothing colours only" if scorer else "they cannot match this description")
            )
            if scorer is not None:
                attribute[old] = [
                    scorer.score(p.get("upper_color"), p.get("upper_color_conf"), p.get("lower_color"),
                                 p.get("lower_color_conf"))
                    for p in (payloads[i] for i in old)
                ]
        if attribute_filters:
            attribute[~_filter_mask(attribute_filters, columns.attribute_probs)] = 0.0
            notes.append(_filters_note(attribute_filters))
        raw_clip = np.array([clip_scores.get(pid, np.nan) for pid in ids]) if clip_scores else None
        scores = attribute
        if raw_clip is not None:
            scaled = np.clip((raw_clip - CLIP_SCORE_FLOOR) / (CLIP_SCORE_CEIL - CLIP_SCORE_FLOOR), 0.0, 1.0)
            if not constraints:
                scores = np.where(np.isnan(raw_clip), 0.0, scaled)
            else:
                mixed = (TEXT_ATTRIBUTE_WEIGHT * attribute + TEXT_CLIP_WEIGHT * scaled) / (
                    TEXT_ATTRIBUTE_WEIGHT + TEXT_CLIP_WEIGHT
                )
                scores = np.where(np.isnan(raw_clip), attribute, mixed)

        def explain(i: int) -> str:
            parts = []
            if has[i] and learned is not None:
                parts.append(learned.explain(int(position[i])))
            elif scorer is not None:
                p = payloads[i]
                parts.append("colour rules: " + scorer.explain(p.get("upper_color"), p.get("upper_color_conf"),
                                                               p.get("lower_color"), p.get("lower_color_conf")))
            if raw_clip is not None and not np.isnan(raw_clip[i]):
                parts.append(f"clip {raw_clip[i]:.2f}")
            return "; ".join(parts)

        return _TextScores(ids, payloads, scores, explain, [n for n in notes if n])

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
        text_scores = self._text_scores(text, camera_ids, time_range, attribute_filters)
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
        """Tracklet scores -> one result per global id (tracklets without one stand alone), best first.

        Walks the tracklets best first until `limit` identities are found, then builds typed hits
        (thumbnail checked on disk, explanation written) for those identities' tracklets only: a
        text query scores every tracklet, and 50k explanations nobody reads cost 0.5 s.
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
        results = []
        for key in chosen:
            members = [self._hit(payloads[i], float(scores[i]), explain(i)) for i in members_of[key]]
            members.sort(key=lambda t: (-t.score, t.camera_id, t.tracklet_id))
            top = members[0]
            thumbnail = next((t.thumbnail for t in members if t.thumbnail is not None), None)
            starts = [t.start_time for t in members if t.start_time]
            ends = [t.end_time for t in members if t.end_time]
            results.append(
                PersonResult(
                    global_id=top.global_id,
                    score=top.score,
                    explanation=f"{top.explanation} ({top.camera_id} #{top.tracklet_id})",
                    thumbnail=thumbnail,
                    cameras=sorted({t.camera_id for t in members}),
                    first_seen=min(starts) if starts else None,
                    last_seen=max(ends) if ends else None,
                    tracklets=members,
                )
            )
        return results

    # ------------------------------------------------------------------ a person's appearances

    def person_timeline(self, global_id: int) -> list[TrackletHit]:
        """Every tracklet of one identity, in time order (camera, location, times, frames, video, thumbnail)."""
        if int(global_id) < 0:
            raise SearchInputError("this tracklet has no global identity: nothing to follow across cameras")
        rows = self._guard(lambda: scroll_all(self.index))
        hits = [self._hit(p) for _pid, p in rows if int(p.get("global_id", -1)) == int(global_id)]
        if not hits:
            raise SearchInputError(f"no person with global id {global_id} in the index (was the index rebuilt?)")
        far = datetime.max.replace(tzinfo=UTC)
        hits.sort(key=lambda t: (t.start_time or far, t.camera_id, t.tracklet_id))
        return hits

    # ------------------------------------------------------------------ video clips

    def default_clip_dir(self) -> Path:
        """Where clips are cached: `<run_dir>/clips`, or a temp folder when the run folder is read-only."""
        folder = self.run_dir / "clips"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
        except OSError:
            pass
        digest = hashlib.sha1(str(self.run_dir).encode()).hexdigest()[:12]
        fallback = Path(tempfile.gettempdir()) / f"smarttrace-clips-{digest}"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback

    def render_clip(self, tracklet: TrackletHit, out_dir: Path | None = None) -> Path:
        """An H.264 MP4 (yuv420p, browser-playable) of the tracklet's frames with its box drawn.

        Cached per (camera, tracklet, tracks artifact version): rendered once, reused until the
        pipeline rewrites that camera's tracks. Written to a temp file and renamed into place.
        """
        camera_id = str(tracklet.camera_id)
        if not _CAMERA_ID.match(camera_id):
            raise SearchInputError(f"invalid camera id '{camera_id[:40]}'")
        tracks_path = self.layout.tracks(camera_id)
        if not tracks_path.is_file():
            raise SearchInputError(f"no tracks artifact for camera '{camera_id}' at {tracks_path}: re-run the pipeline")
        stat = tracks_path.stat()
        stamp = hashlib.sha1(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
        folder = Path(out_dir) if out_dir is not None else self.default_clip_dir()
        target = folder / f"{camera_id}-{int(tracklet.tracklet_id)}-{stamp}.mp4"
        if target.is_file():
            return target
        with self._render_lock:  # one render per process at a time: each one is CPU-bound anyway
            if target.is_file():
                return target
            folder.mkdir(parents=True, exist_ok=True)
            self._render(tracklet, tracks_path, target)
        return target

    def _videos_of(self, tracklet: TrackletHit) -> tuple[list[Path], float]:
        """The camera's video files (from the config) and real frame rate."""
        from tasks.video import camera_videos

        camera = self._cameras.get(tracklet.camera_id)
        if camera is not None:
            return camera_videos(camera.video), camera.fps
        video = Path(tracklet.video_path)
        if not video.is_file():
            raise SearchInputError(
                f"camera '{tracklet.camera_id}' is not in the config and its video {video} is missing"
            )
        span = 0.0
        if tracklet.start_time and tracklet.end_time:
            span = (tracklet.end_time - tracklet.start_time).total_seconds()
        frames = tracklet.end_frame - tracklet.start_frame
        return [video], (frames / span if span > 0 and frames > 0 else 25.0)

    def _render(self, tracklet: TrackletHit, tracks_path: Path, target: Path) -> None:
        import av
        import pyarrow.compute as pc

        from storage.artifacts import read_artifact

        table = read_artifact(tracks_path, "tracks")
        rows = table.filter(pc.equal(table.column("track_id"), int(tracklet.tracklet_id))).to_pandas()
        if rows.empty:
            raise SearchInputError(
                f"tracklet {tracklet.camera_id} #{tracklet.tracklet_id} has no boxes in {tracks_path} "
                "(the pipeline re-ran since the index was built?)"
            )
        boxes = {
            int(r.frame_index): (float(r.x1), float(r.y1), float(r.x2), float(r.y2), bool(r.interpolated))
            for r in rows.itertuples()
        }
        start, end = min(boxes), max(boxes)
        videos, fps = self._videos_of(tracklet)
        step = max(1, math.ceil((end - start + 1) / MAX_CLIP_FRAMES))
        rate = Fraction(fps / step).limit_denominator(1001)
        label = f"{tracklet.camera_id} #{tracklet.tracklet_id}  person {tracklet.global_id}"
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".mp4.tmp")
        os.close(fd)
        written = 0
        try:
            with av.open(tmp_name, mode="w", format="mp4", container_options={"movflags": "+faststart"}) as output:
                stream = None
                for index, frame in _timeline_frames(videos, tracklet.camera_id, start, end):
                    if (index - start) % step:
                        continue
                    source_width = frame.shape[1]
                    frame = _fit_width(frame)
                    scale = frame.shape[1] / source_width
                    if stream is None:
                        stream = output.add_stream("libx264", rate=rate)
                        # yuv420p halves the chroma planes: both sides must be even
                        stream.width = frame.shape[1] - frame.shape[1] % 2
                        stream.height = frame.shape[0] - frame.shape[0] % 2
                        stream.pix_fmt = "yuv420p"
                        stream.options = {"crf": CLIP_CRF, "preset": "veryfast"}
                    frame = np.ascontiguousarray(frame[: stream.height, : stream.width])
                    _draw(frame, boxes.get(index), scale, label, _caption(tracklet, index, start, fps))
                    for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                        output.mux(packet)
                    written += 1
                if stream is not None:
                    for packet in stream.encode():
                        output.mux(packet)
            if written == 0:
                raise SearchInputError(
                    f"frames {start}-{end} of camera '{tracklet.camera_id}' could not be decoded from {videos[0]}"
                )
            os.replace(tmp_name, target)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        log.info("rendered %s (%d frames at %.2f fps)", target, written, float(rate))


def _fit_width(frame: np.ndarray) -> np.ndarray:
    """Scale a frame down to CLIP_MAX_WIDTH (aspect kept); smaller frames are returned as they are."""
    if frame.shape[1] <= CLIP_MAX_WIDTH:
        return frame
    scale = CLIP_MAX_WIDTH / frame.shape[1]
    return cv2.resize(frame, (CLIP_MAX_WIDTH, round(frame.shape[0] * scale)), interpolation=cv2.INTER_AREA)


def _caption(tracklet: TrackletHit, index: int, start: int, fps: float) -> str:
    """Wall-clock time of a frame (UTC) when known, else its frame number."""
    if tracklet.start_time is None:
        return f"frame {index}"
    moment = tracklet.start_time + timedelta(seconds=(index - start) / fps)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 100_000} UTC  frame {index}"


def _draw(frame: np.ndarray, box: tuple[float, float, float, float, bool] | None, scale: float, label: str,
          caption: str) -> None:
    """The tracklet's box (green detected, orange interpolated) with its label, and a time caption, in place."""
    thickness = max(1, round(frame.shape[0] / 400))
    if box is not None:
        x1, y1, x2, y2, interpolated = box
        colour = BOX_INTERPOLATED_BGR if interpolated else BOX_DETECTED_BGR
        p1 = (round(x1 * scale), round(y1 * scale))
        cv2.rectangle(frame, p1, (round(x2 * scale), round(y2 * scale)), colour, thickness + 1)
        _text(frame, label, p1[0], p1[1] - 4, 0.4 * thickness, colour, thickness)
    _text(frame, caption, 6, frame.shape[0] - 8, 0.45 * thickness, (255, 255, 255), thickness)


def _text(frame: np.ndarray, text: str, x: int, y: int, font_scale: float, colour: tuple[int, int, int],
          thickness: int) -> None:
    """Text on a dark backing box, shifted to stay inside the frame."""
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
    x = int(min(max(x, 0), max(frame.shape[1] - width - 2, 0)))
    y = int(min(max(y, height + 2), frame.shape[0] - baseline - 1))
    cv2.rectangle(frame, (x - 2, y - height - 2), (x + width + 2, y + baseline), (0, 0, 0), cv2.FILLED)
    cv2.putText(frame, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour, thickness, cv2.LINE_AA)


def _timeline_frames(videos: list[Path], camera_id: str, start: int, end: int) -> Iterator[tuple[int, np.ndarray]]:
    """Frames [start, end] of a camera's timeline (its files back to back, as the pipeline numbers them).

    Frames before `start` are only grabbed, not converted: cheaper than decoding them fully,
    and unlike seeking it is exact for every codec.
    """
    from tasks.video import open_video

    offset = 0
    for path in videos:
        capture, _info = open_video(path, camera_id)
        local = 0
        try:
            while offset + local <= end:
                index = offset + local
                if index < start:
                    if not capture.grab():
                        break
                else:
                    ok, frame = capture.read()
                    if not ok or frame is None:
                        break
                    yield index, frame
                local += 1
        finally:
            capture.release()
        if offset + local > end:
            return
        offset += local


def _filters_note(attribute_filters: Mapping[str, bool]) -> str:
    """'filters: woman, bag, no hat (attribute probability >= 0.5)'."""
    from tasks.attribute_scoring import ATTRIBUTE_FILTERS, FILTER_MIN_PROBABILITY

    labels = [
        ("" if wanted else "no ") + ATTRIBUTE_FILTERS.get(name, (name, ()))[0]
        for name, wanted in attribute_filters.items()
    ]
    return f"filters: {', '.join(labels)} (attribute probability >= {FILTER_MIN_PROBABILITY:g})"


def _check_limit(limit: int) -> None:
    if not 1 <= int(limit) <= 1000:
        raise SearchInputError(f"limit must be between 1 and 1000, got {limit}")


def _candidates(limit: int) -> int:
    return max(limit * TRACKLETS_PER_RESULT, MIN_IMAGE_CANDIDATES)


def load_engine(config_path: str | os.PathLike) -> SearchEngine:
    """A SearchEngine for a config file (ConfigError names the file and field when it is bad)."""
    from smarttrace.config import load_config

    return SearchEngine(load_config(config_path))


def _filter_mask(attribute_filters: Mapping[str, bool], probs: np.ndarray) -> np.ndarray:
    """Rows passing every attribute filter; an unknown filter name is the user's error."""
    from tasks.attribute_scoring import filter_mask

    try:
        return filter_mask(dict(attribute_filters), probs)
    except KeyError as exc:
        raise SearchInputError(str(exc.args[0])) from None
