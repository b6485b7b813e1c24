"""Validated configuration, loaded from `configs/*.yaml`.

Why pydantic with `extra="forbid"`: a misspelt key (`imgsize:`) silently falling back to a
default is the most expensive kind of config bug in a pipeline that runs for hours. Every
threshold the pipeline uses has a name here, with where its default came from.
Relative paths are resolved against the config file's folder, so a config works from any cwd.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from smarttrace.errors import ConfigError

TRACKER_NAMES = ("bytetrack", "botsort", "deepocsort", "strongsort", "ocsort")


def weight_names(value: Any) -> tuple[str, ...]:
    """Model names from one name, a list of names, or names joined by '+' (an ensemble), blanks dropped."""
    names = [value] if isinstance(value, str | Path) else list(value or [])
    return tuple(part.strip() for name in names for part in str(name).split("+") if part.strip())


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraConfig(_Strict):
    """One camera: where its video is and how to place it in time and space."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    # A video file, a folder of video files (processed in name order), or "sample:<asset>".
    video: str
    # Real frame rate. Container headers lie (PETS09's AVI says 10 fps, the real rate is 7).
    fps: float = Field(gt=0, le=240)
    start_time: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    location: str = ""
    # Process only decoded frames [first_frame, first_frame + max_frames); frame indices in artifacts
    # stay those of the video, so ground truth lines up. For demos, tests and proxy scenarios.
    first_frame: int = Field(default=0, ge=0)
    max_frames: int | None = Field(default=None, gt=0)
    # For a folder of recordings: process each file as its own segment `<id>.<file stem>`, starting
    # at the file's modification time, so a watched folder's new files are processed and the
    # already processed ones are skipped (their artifacts are up to date).
    per_file: bool = False
    # Overrides of tracker.params for this camera only (merged over them). Views differ: a close-up,
    # crowded view with partial bodies wants a higher track_thresh than a far, sparse one.
    tracker_params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("start_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class DetectorConfig(_Strict):
    """Person detector (ultralytics YOLO). Defaults measured on PETS09-S2L1, see benchmarks/."""

    weights: str = "yolo11n-pose.pt"
    # Runtime: auto = OpenVINO when installed (~5x faster on CPU, same boxes), else PyTorch.
    backend: Literal["auto", "torch", "openvino", "onnx"] = "auto"
    # PETS09 people are ~80 px tall in 768x576: recall is 0.59 at 960 and 0.91 at 1280.
    imgsz: int = Field(default=1280, ge=320, le=2560)
    # Low on purpose: ByteTrack-style trackers use low-score boxes in a second association.
    conf: float = Field(default=0.1, gt=0, lt=1)
    iou: float = Field(default=0.6, gt=0, lt=1)
    # Run the detector on every `stride`-th frame (a keyframe) and on every frame after a crowded one
    # (`redetect_iou`); tasks/keyframes.py. Chosen on PETS09-S2L1 (clean + 2 invisible-noise runs, mean
    # MOTA / IDF1; stride 1: 0.880 / 0.846): stride 4 0.877 / 0.860 with the detector on 41% of the frames;
    # stride 5 0.840 / 0.777. Whole flow 1.98x the every-frame loop (benchmarks/throughput.py); the price:
    # PETS09 image search top-1 0.912 vs 0.976 (benchmarks/search.py). 1 = every frame.
    stride: int = Field(default=4, ge=1, le=10)
    # Frames between keyframes: "flow" moves the previous frame's boxes by sparse optical flow so the
    # tracker sees every frame; "skip" feeds the tracker keyframes only (PETS09 stride 2: MOTA 0.835,
    # IDF1 0.747: IoU association breaks at 3.5 fps). Either way only detected frames become rows; the
    # frames between are interpolated.
    between: Literal["flow", "skip"] = "flow"
    # With "flow": detect a frame anyway when two boxes of the previous frame overlap by more than this
    # IoU (people crossing: flow cannot tell them apart). PETS09 sweep at stride 4, mean MOTA / IDF1 /
    # share of frames detected: 0.05 0.886 / 0.860 / 52%; 0.1 0.877 / 0.860 / 41%; 0.15 0.877 / 0.845 /
    # 35%; 0.2 0.874 / 0.818 / 33%. 0.05 is the accuracy-first setting: PETS09 image search top-1 0.976
    # (0.912 at 0.1: one tracklet swaps people in a crossing) at 1.78x instead of ~2x. 1.0 = never.
    redetect_iou: float = Field(default=0.1, ge=0, le=1)
    device: str = "cpu"
    batch: int = Field(default=1, ge=1, le=64)
    # Detector threads per camera that detect frames t+1.. while frame t is tracked (tasks/detect.py
    # PersonDetector.stream); 0 = inline, one frame at a time. Same boxes either way. benchmarks/
    # throughput.py (PETS09 + TUD, 3 cameras, same run): 1 worker 17.68 vs 16.65 frames/s FP32 (+6%),
    # 22.17 vs 21.28 INT8 (+4%). 2 workers per camera were slower on 2 cores (53.8 vs 43.9 ms/frame,
    # detector alone): OpenVINO already uses both cores for one frame.
    workers: int = Field(default=1, ge=0, le=8)
    # fp32: the OpenVINO export as is. int8: NNCF post-training quantisation calibrated on frames of
    # the cameras' own videos (tasks/quantize_detector.py), cached like the FP32 export. FP32 is the
    # default: benchmarks/throughput.py measured INT8 at 1.39x the flow's frames/s but PETS09-S2L1 MOTA
    # 0.858 vs 0.880 and IDF1 0.794 vs 0.846 (TUD-Campus IDF1 0.619 vs 0.671): not within 0.01.
    precision: Literal["fp32", "int8"] = "fp32"
    # Frames sampled evenly over the cameras' videos to calibrate INT8: "a few hundred" (NNCF's default
    # subset is 300); PETS09-S2L1 has 795 frames.
    calibration_frames: int = Field(default=300, ge=1, le=5000)
    # Fewer readable calibration frames than this: the ranges are not trusted, FP32 is used (one warning).
    min_calibration_frames: int = Field(default=32, ge=1, le=5000)


class TrackerConfig(_Strict):
    """A boxmot tracker chosen by name; `params` go to its constructor unchanged."""

    name: str = "bytetrack"
    params: dict[str, Any] = Field(default_factory=dict)
    reid_weights: str = "osnet_x0_25_msmt17.pt"

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in TRACKER_NAMES:
            raise ValueError(f"unknown tracker '{value}', choose one of {', '.join(TRACKER_NAMES)}")
        return value


class PostprocessConfig(_Strict):
    """Offline clean-up of each camera's tracks after tracking."""

    # Fill gaps inside a track up to this many frames by linear interpolation (recovers
    # short occlusions and missed detections; 7 fps PETS09 -> 20 frames is ~3 s).
    max_gap_frames: int = Field(default=20, ge=0)
    # Drop tracks seen on fewer detected frames than this: mostly false positives.
    min_track_detections: int = Field(default=4, ge=1)
    # Drop boxes below this height (pixels): too small to be anyone we can describe.
    min_box_height: float = Field(default=0.0, ge=0)
    # Link tracklets broken by occlusions (tasks/link_tracklets.py): gates measured on PETS09.
    link: bool = True
    # Swept on PETS09-S2L1 (IDF1 without linking 0.73): gap 5 s, 1.0 heights/s, cosine 0.85 -> 0.85;
    # gap 10 s, 1.5 heights/s, cosine 0.75 over-merges different people (IDF1 0.73).
    link_max_gap_s: float = Field(default=5.0, gt=0)
    link_max_speed_heights_per_s: float = Field(default=1.0, gt=0)
    link_min_similarity: float = Field(default=0.85, ge=-1, le=1)
    # Crops kept per tracklet (spread over its life) to embed for linking.
    link_crops_per_track: int = Field(default=8, ge=1, le=64)
    # Crops shorter than this (pixels) are not embedded: OSNet sees noise below ~40 px.
    link_min_crop_height: float = Field(default=40.0, ge=8)
    link_reid_weights: str = "osnet_x0_25_msmt17.pt"


class EmbedConfig(_Strict):
    """Per-tracklet crops, appearance (OSNet), CLIP and clothing colours."""

    # K crops per tracklet, one per equal slice of its life, the best-quality box in each slice.
    crops_per_tracklet: int = Field(default=8, ge=1, le=64)
    # Boxes shorter than this (pixels) are not embedded; OSNet sees noise below ~40 px.
    min_crop_height: float = Field(default=40.0, ge=8)
    # A box overlapped by another (IoU above this) is a poor crop: it shows two people.
    max_overlap_iou: float = Field(default=0.3, ge=0, le=1)
    # ReID weights, one or several (an ensemble: each model's unit vector, concatenated; a YAML list or names
    # joined by '+'). Default: both zoo models. Real cross-camera sets (benchmarks/crosscamera.py, all-gallery
    # rank-1, flip TTA, camera centering; nothing tuned on them), MSMT17 alone -> MSMT17 + Market-1501:
    # VIPeR 0.265 -> 0.316, PRID 0.185 -> 0.285, GRID 0.132 -> 0.206, CUHK03 val 0.512 -> 0.544. Costs a
    # second OSNet x0.25 pass per crop. Tracking's own appearance linking keeps MSMT17 alone
    # (postprocess.link_reid_weights).
    reid_weights: tuple[str, ...] = ("osnet_x0_25_msmt17.pt", "osnet_x0_25_market1501.pt")
    reid_batch: int = Field(default=64, ge=1, le=1024)
    # OSNet runtime: auto = OpenVINO on a CPU when installed, else PyTorch. Same vectors (FP32, cosine 1 - 1e-7);
    # measured on 150 VIPeR crops, 2-core Xeon, ensemble: plain pass 4.4x, camera-BN pass 1.8x PyTorch's speed.
    # Also runs the attribute model's layers: those after the ones it shares with the ReID pass, or its own pass.
    reid_backend: Literal["auto", "torch", "openvino"] = "auto"
    # Flip test-time augmentation (each vector = mean of the crop's and its mirror's). Off: it doubles every OSNet
    # pass (the embed stage is 0.142 of tracking without it on the benchmarks/identities.py proxy; the budget
    # is 0.15) and bought nothing on the real cross-camera sets (benchmarks/crosscamera.py --flip / --no-flip,
    # all-gallery rank-1 of the product recipe: VIPeR 0.364 -> 0.366, PRID 0.348 -> 0.345, GRID 0.324 -> 0.326,
    # CUHK03 val 0.615 -> 0.616).
    reid_flip: bool = False
    # Also embed each camera's crops under BatchNorm statistics of its own crops (camera-based BN, an unsupervised
    # lever) into `reid_camera_embedding`, which cross-camera matching compares; `reid_embedding` (image search,
    # in-camera matching) keeps the trained statistics, because an uploaded query photo has no camera.
    # Real cross-camera sets (benchmarks/crosscamera.py, all-gallery rank-1, ensemble, flip TTA; nothing tuned on
    # them), centred -> camera BN: VIPeR 0.316 -> 0.358, PRID 0.285 -> 0.343, GRID 0.206 -> 0.338, CUHK03 val
    # 0.544 -> 0.627. A query under trained statistics vs a camera-BN gallery is worse than either (GRID 0.016):
    # hence two vectors. Costs a second pass over the camera's crops (ReidEmbedder.embed_camera_bn: chunks of
    # ~reid_batch shuffled crops, each normalised by its own statistics).
    reid_camera_bn: bool = True
    # Body-part stripes in the camera vector (ReidEmbedder.embed_camera_bn: the camera-BN pass's conv5 maps cut into
    # this many horizontal bands; free: same pass), and their weight against the whole-body embedding. Read off the
    # named TUNING half of the real cross-camera sets' people (benchmarks/crosscamera.py prints the sweep; camera BN
    # + centering rank-1 summed over VIPeR, PRID, GRID, CUHK03 val): none 1.902, 2 x 0.5 1.938, 3 x 1.0 1.989,
    # 3 x 1.5 1.994 (a tie), 4 x 1.0 1.984. HELD-OUT half, none -> 3 x 1.0: VIPeR 0.416 -> 0.422, PRID 0.432 -> 0.469,
    # GRID 0.359 -> 0.355, CUHK03 0.681 -> 0.708.
    reid_camera_parts: int = Field(default=3, ge=0, le=8)
    reid_camera_parts_weight: float = Field(default=1.0, ge=0, le=4)
    # A camera with fewer crops than this keeps the trained statistics (too few to estimate them): no camera vector.
    reid_camera_bn_min_crops: int = Field(default=32, ge=2)
    clip_model: str = "ViT-B-32"
    # open_clip tag (from the local cache only), a weights file path, "random" (tests), or "" (off).
    clip_pretrained: str = "laion2b_s34b_b79k"
    clip_crops_per_tracklet: int = Field(default=3, ge=1, le=16)
    thumbnail_height: int = Field(default=160, ge=32, le=1024)  # pixels, aspect kept
    # Pedestrian attribute model (PETA-trained, `smarttrace train attributes`), resolved by name like the
    # ReID weights; "" turns attributes off. Default = the file name that command writes. When the file
    # is absent the stage logs one line and text search falls back to the clothing colour rules.
    attribute_weights: str = "peta_attributes_osnet_x0_25.pt"
    # Crops per attribute forward pass: the ReID batch size, same backbone size (OSNet x0.25).
    attribute_batch: int = Field(default=64, ge=1, le=1024)
    # Store the model's calibrated probabilities (its weighted loss's prior shift removed) rather than the
    # raw ones PETA's mA is measured on: text search multiplies them, so they should read as frequencies.
    # Measured (benchmarks/attributes_text.py, PETA test split, 200 queries): text mAP 0.356 either way.
    attribute_calibrated: bool = True

    @field_validator("reid_weights", mode="before")
    @classmethod
    def _weights_list(cls, value: Any) -> tuple[str, ...]:
        names = weight_names(value)
        if not names:
            raise ValueError("name at least one ReID weights file")
        return names


class MatchConfig(_Strict):
    """In-camera and cross-camera matching thresholds (OSNet cosine similarity)."""

    # In-camera: join tracklets of one person separated by up to this long (seconds). Shorter gaps
    # (occlusions) are already bridged by Stage 1 linking with a position gate.
    in_camera_max_gap_s: float = Field(default=60.0, gt=0)
    # Within this gap (seconds) the position gate applies: a person walks ~1 body height/s.
    in_camera_position_gate_s: float = Field(default=5.0, ge=0)
    in_camera_max_speed_heights_per_s: float = Field(default=1.5, gt=0)
    # Decides by OSNet cosine of the tracklets' mean embeddings. Proxy sweep (benchmarks/identities.py,
    # PETS ground truth at person level; cross-camera 0.85): global IDF1 0.814 at 0.9, 0.855 at 0.85-0.8,
    # 0.861 at 0.75; in-camera IDF1 of PETS window A 0.727 -> 0.926. (Scored against raw MOT15 ids, where
    # a re-entering person has a new id, every such join looks like a merge and 0.98 looked best.)
    in_camera_min_similarity: float = Field(default=0.8, ge=-1, le=1)
    # Cross-camera: average-linkage threshold on person-level embeddings (camera-BN vectors where the embed stage made
    # them, camera-centred when centering is on). 0.5 from the TUNING split of the real cross-camera sets (half of
    # each set's people, seed 0; benchmarks/crosscamera.py prints the sweep and reports the other half): pooled
    # pair precision / recall 0.62 / 0.22 at 0.4, 0.67 / 0.20 at 0.45, 0.70 / 0.14 at 0.5, 0.77 / 0.08 at 0.55,
    # 0.77 / 0.03 at 0.6. 0.5 keeps precision at about 0.7 (a stranger merged is worse than a split) with recall
    # four times 0.6's. Checked on the PETS09/TUD proxy (benchmarks/identities.py: global IDF1 0.895, 0
    # cross-scene merges). Before the ensemble and camera BN it was 0.6 (one MSMT17 model).
    cross_camera_min_similarity: float = Field(default=0.5, ge=-1, le=1)
    # Remove each camera's mean person embedding before comparing across cameras (unsupervised; needs no
    # labels). Measured on real cross-camera sets (benchmarks/crosscamera.py, all-gallery rank-1):
    # VIPeR 0.264 -> 0.265 (mAP 0.346 -> 0.355), CUHK03 val 0.464 -> 0.512 (mAP 0.435 -> 0.474).
    cross_camera_centering: bool = True
    # Compare the tracklets' camera-BN vectors (`reid_camera_embedding`, made when embed.reid_camera_bn is on) where
    # a camera has them; a camera without them is compared by its trained-statistics vectors. Figures: see
    # embed.reid_camera_bn. Unsupervised, nothing to tune.
    cross_camera_camera_bn: bool = True
    # A camera with fewer persons than this is not centred: its mean would be mostly its people.
    cross_camera_centering_min_persons: int = Field(default=5, ge=2)
    # Only mutually most similar persons of two cameras give direct evidence (tasks.match_identities.mutual_best).
    # Parameter-free. Real sets at 0.6 (measured, not tuned on): VIPeR pair precision 0.70 -> 0.75, pooled 0.54 -> 0.56;
    # PETS09/TUD proxy unchanged (IDF1 0.892, 0 cross-scene merges).
    cross_camera_mutual_best: bool = True
    # Consistency pass: a member less similar than this to its cluster's mean is split off.
    consistency_min_similarity: float = Field(default=0.6, ge=-1, le=1)
    # Optional transit windows: "camA->camB": [min_s, max_s] between leaving A and entering B. A camera
    # pair with a window is restricted to its windows (so "a->b" alone forbids b-then-a). They gate
    # DIRECT evidence: a pair outside its window adds none, but may still end up in one identity through
    # a third camera (A -> C -> B is a longer, valid trip).
    transit_windows: dict[str, tuple[float, float]] = Field(default_factory=dict)

    @field_validator("transit_windows")
    @classmethod
    def _windows(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for key, (low, high) in value.items():
            if key.count("->") != 1 or not all(part.strip() for part in key.split("->")):
                raise ValueError(f"transit window key '{key}' must look like 'cameraA->cameraB'")
            if not 0 <= low <= high:
                raise ValueError(f"transit window '{key}': need 0 <= min <= max seconds, got [{low}, {high}]")
        return value


class IndexSettings(_Strict):
    """The Qdrant index. Embedded (a folder, no server) by default; `url` switches to a server."""

    url: str | None = None  # e.g. http://localhost:6333 or a Qdrant cluster URL
    api_key: str | None = None
    collection: str = Field(default="tracklets", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    path: Path | None = None  # embedded index folder; default storage.run_dir / "qdrant"
    # How long the upload waits for another process (e.g. a dashboard loading) to release the folder.
    lock_timeout_s: float = Field(default=30.0, ge=0)
    # Embedded index: an upload becomes a small delta part on top of the published version (readers load only
    # that part) once the base holds this many points. Below it a full version has no HNSW graph and is
    # written in about a second (storage.edge_index.HNSW_MIN_POINTS); at 1M points of 1024-d a full version
    # took 1248 s to write and 15-18 s to load (benchmarks/search_scale.py, this project's 2-core machine).
    delta_min_points: int = Field(default=20_000, ge=0)
    # More deltas than this are merged into one at the next upload: each part costs every query one more
    # engine search (a delta of 2k points: ~1 ms exact, benchmarks/search_scale.py --delta).
    max_delta_parts: int = Field(default=8, ge=1)
    # Deltas holding more than this share of the base's points mean a full version is written instead: the
    # deltas are exact scans (no graph) and hide their ids in the base by a filter, both costs growing with them.
    max_delta_share: float = Field(default=0.2, gt=0)


class StorageConfig(_Strict):
    """Where artifacts go; one run folder per config."""

    run_dir: Path = Path("runs/demo")


class FlowConfig(_Strict):
    """How Prefect runs the per-camera tasks."""

    task_runner: Literal["threads", "processes", "dask"] = "threads"
    max_workers: int = Field(default=2, ge=1, le=256)
    dask_address: str | None = None  # a remote Dask scheduler, e.g. tcp://host:8786


class ApiConfig(_Strict):
    """The HTTP API (`smarttrace api`): where it listens and what it accepts from a client."""

    # Loopback by default: the API has no user accounts, only the optional token below.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Bearer token for every endpoint but /health; None = no token (loopback use). The environment
    # variable SMARTTRACE_API_TOKEN overrides it, so the secret need not sit in a YAML file.
    token: str | None = Field(default=None, min_length=16)
    # Request body limit, checked on Content-Length and while streaming, before the body is parsed.
    # 10 MB: a phone photo as JPEG is 2-6 MB; the engine's own image limit (20 MB) is for local files.
    max_body_mb: float = Field(default=10.0, gt=0, le=100)
    # Requests per client address per minute (0 = unlimited). 120: two a second, far above a person
    # clicking in a web page; at the README's search figures (text p50 132 ms at 50k points, 2 cores)
    # it bounds one client to about a quarter of one core.
    rate_per_minute: int = Field(default=120, ge=0, le=100_000)


class SmartTraceConfig(_Strict):
    """The whole configuration of one SmartTrace deployment."""

    cameras: list[CameraConfig] = Field(min_length=1)
    detector: DetectorConfig = DetectorConfig()
    tracker: TrackerConfig = TrackerConfig()
    postprocess: PostprocessConfig = PostprocessConfig()
    embed: EmbedConfig = EmbedConfig()
    match: MatchConfig = MatchConfig()
    storage: StorageConfig = StorageConfig()
    index: IndexSettings = IndexSettings()
    flow: FlowConfig = FlowConfig()
    api: ApiConfig = ApiConfig()

    @model_validator(mode="after")
    def _unique_camera_ids(self) -> SmartTraceConfig:
        ids = [camera.id for camera in self.cameras]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"camera ids must be unique, repeated: {', '.join(duplicates)}")
        return self

    def section_hash(self, section: str) -> str:
        """Stable hash of one config section, used to key cached stage results."""
        payload = json.dumps(getattr(self, section).model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def expand_cameras(cameras: list[CameraConfig]) -> list[CameraConfig]:
    """Cameras with `per_file` folders replaced by one segment camera per video file."""
    from tasks.video import camera_videos

    expanded: list[CameraConfig] = []
    for camera in cameras:
        if not camera.per_file:
            expanded.append(camera)
            continue
        for path in camera_videos(camera.video):
            stem = "".join(ch if ch.isalnum() or ch in "_.-" else "-" for ch in path.stem)[:40]
            started = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
            expanded.append(
                camera.model_copy(
                    update={"id": f"{camera.id}.{stem}", "video": str(path), "per_file": False, "start_time": started}
                )
            )
    return expanded


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = [f"invalid config {path}:"]
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  {field}: {error['msg']}")
    return "\n".join(lines)


def _resolve_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make relative video and run_dir paths relative to the config file's folder."""
    for camera in raw.get("cameras") or []:
        video = camera.get("video") if isinstance(camera, dict) else None
        if isinstance(video, str) and not video.startswith("sample:") and not Path(video).is_absolute():
            camera["video"] = str((base / video).resolve())
    index = raw.get("index")
    if isinstance(index, dict) and isinstance(index.get("path"), str) and not Path(index["path"]).is_absolute():
        index["path"] = str((base / index["path"]).resolve())
    storage = raw.get("storage")
    if isinstance(storage, dict) and isinstance(storage.get("run_dir"), str):
        run_dir = Path(storage["run_dir"])
        storage["run_dir"] = str(run_dir if run_dir.is_absolute() else (base / run_dir).resolve())
    return raw


def parse_config(raw: dict[str, Any], base: Path, source: Path) -> SmartTraceConfig:
    """Validate an already-parsed mapping; `source` is only used in error messages."""
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid config {source}: expected a mapping at the top level")
    try:
        return SmartTraceConfig.model_validate(_resolve_paths(raw, base))
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None


def load_config(path: str | Path) -> SmartTraceConfig:
    """Load and validate a YAML config, raising ConfigError naming the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from None
    return parse_config(raw, path.resolve().parent, path)
