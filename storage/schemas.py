"""Arrow schemas of every artifact, defined once.

Each stage's record has one schema here and a version number. Readers compare the file's
schema version and fields with these before any stage uses it, so an artifact from an older
release is a clear error instead of a KeyError three stages later.
"""

from __future__ import annotations

import pyarrow as pa

from tasks.attribute_vocab import ATTRIBUTE_NAMES

NUM_KEYPOINTS = 17  # COCO pose keypoints, as produced by YOLO *-pose models
KEYPOINT_VALUES = NUM_KEYPOINTS * 3  # (x, y, visibility) per keypoint, pixels

# One row per (camera, frame, track): the output of Stage 1 tracking.
TRACKS_SCHEMA = pa.schema(
    [
        pa.field("camera_id", pa.string(), nullable=False),
        pa.field("frame_index", pa.int32(), nullable=False),  # 0-based decoded frame
        pa.field("time_s", pa.float64(), nullable=False),  # seconds since the video start
        pa.field("timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),  # wall clock
        pa.field("track_id", pa.int32(), nullable=False),  # unique inside one camera's run
        pa.field("x1", pa.float32(), nullable=False),  # box in pixels of the source frame
        pa.field("y1", pa.float32(), nullable=False),
        pa.field("x2", pa.float32(), nullable=False),
        pa.field("y2", pa.float32(), nullable=False),
        pa.field("confidence", pa.float32(), nullable=False),  # detector score; 0 if interpolated
        pa.field("interpolated", pa.bool_(), nullable=False),  # box filled in, not detected
        # KEYPOINT_VALUES floats (17 x [x, y, visibility]), null for interpolated boxes. A plain list,
        # not a fixed-size one: pyarrow 23 cannot read back a fixed-size list column with nulls.
        pa.field("keypoints", pa.list_(pa.float32()), nullable=True),
    ]
)

COLOR_NAMES = (
    "black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "beige",
)

# One row per tracklet (a Stage 1 track after linking): the output of the embedding stage.
TRACKLETS_SCHEMA = pa.schema(
    [
        pa.field("camera_id", pa.string(), nullable=False),
        pa.field("tracklet_id", pa.int32(), nullable=False),  # = track_id in the tracks artifact
        pa.field("start_frame", pa.int32(), nullable=False),
        pa.field("end_frame", pa.int32(), nullable=False),  # inclusive
        pa.field("start_time_s", pa.float64(), nullable=False),
        pa.field("end_time_s", pa.float64(), nullable=False),
        pa.field("start_timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("end_timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("num_boxes", pa.int32(), nullable=False),  # detected, not interpolated
        pa.field("mean_box_height", pa.float32(), nullable=False),  # pixels
        pa.field("mean_box_width", pa.float32(), nullable=False),
        # Foot point (bottom-centre of the box) path, downsampled: x0, y0, x1, y1, ... pixels.
        pa.field("foot_path", pa.list_(pa.float32()), nullable=False),
        pa.field("video_path", pa.string(), nullable=False),
        pa.field("thumbnail_path", pa.string(), nullable=True),  # relative to the run folder
        pa.field("best_frame", pa.int32(), nullable=True),  # frame of the thumbnail crop
        pa.field("num_crops", pa.int32(), nullable=False),  # crops embedded (0: all too small)
        pa.field("reid_embedding", pa.list_(pa.float32()), nullable=True),  # quality-weighted mean, L2=1
        pa.field("reid_crop_embeddings", pa.list_(pa.list_(pa.float32())), nullable=True),
        # The same crops embedded under the camera's OWN BatchNorm statistics (camera BN), quality-weighted mean,
        # L2=1: what cross-camera matching compares. Null when camera BN is off or the camera had too few crops.
        pa.field("reid_camera_embedding", pa.list_(pa.float32()), nullable=True),
        pa.field("clip_embedding", pa.list_(pa.float32()), nullable=True),  # null when CLIP is unavailable
        pa.field("upper_color", pa.string(), nullable=True),  # one of COLOR_NAMES
        pa.field("upper_color_conf", pa.float32(), nullable=True),  # share of the region's pixels, 0..1
        pa.field("lower_color", pa.string(), nullable=True),
        pa.field("lower_color_conf", pa.float32(), nullable=True),
        # Pedestrian attribute probabilities (0..1), one per name of ATTRIBUTE_VOCABULARY in its order:
        # the quality-weighted mean over the tracklet's crops. Null when no attribute model ran.
        pa.field("attribute_probs", pa.list_(pa.float32()), nullable=True),
    ]
)
# The names `attribute_probs` is aligned to. Changing them changes the field's meaning: bump the
# tracklets schema version. The embed stage also writes them into the artifact's manifest.
ATTRIBUTE_VOCABULARY: tuple[str, ...] = ATTRIBUTE_NAMES

# One row per tracklet of one camera: its camera-local person (in-camera matching).
PERSONS_SCHEMA = pa.schema(
    [
        pa.field("camera_id", pa.string(), nullable=False),
        pa.field("tracklet_id", pa.int32(), nullable=False),
        pa.field("person_id", pa.int32(), nullable=False),  # unique inside a camera
    ]
)

# One row per tracklet: its camera-local person (in-camera matching) and global id (cross-camera).
IDENTITIES_SCHEMA = pa.schema(
    [
        pa.field("camera_id", pa.string(), nullable=False),
        pa.field("tracklet_id", pa.int32(), nullable=False),
        pa.field("person_id", pa.int32(), nullable=False),  # unique inside a camera
        pa.field("global_id", pa.int32(), nullable=False),  # unique over all cameras
        pa.field("start_timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("end_timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
    ]
)

SCHEMAS: dict[str, tuple[pa.Schema, int]] = {
    # kind -> (schema, version). Bump the version whenever a field changes meaning or type.
    "tracks": (TRACKS_SCHEMA, 1),
    "tracklets": (TRACKLETS_SCHEMA, 3),  # v2: attribute_probs; v3: reid_camera_embedding
    "persons": (PERSONS_SCHEMA, 1),
    "identities": (IDENTITIES_SCHEMA, 1),
}
