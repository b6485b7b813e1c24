"""Arrow schemas of every artifact, defined once.

Each stage's record has one schema here and a version number. Readers compare the file's
schema version and fields with these before any stage uses it, so an artifact from an older
release is a clear error instead of a KeyError three stages later.
"""

from __future__ import annotations

import pyarrow as pa

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

SCHEMAS: dict[str, tuple[pa.Schema, int]] = {
    # kind -> (schema, version). Bump the version whenever a field changes meaning or type.
    "tracks": (TRACKS_SCHEMA, 1),
}
