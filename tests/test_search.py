"""The search library against a real embedded Qdrant index built by the real pipeline.

The index comes from `run_process` on short real clips (PETS09-S2L1 and TUD-Campus) under a real,
temporary Prefect API; the queries are crops cut from the same videos. Nothing of our stack is
mocked. The run folder lives in `runs/.test-cache/search-run` and is shared with the dashboard
tests: the pipeline's own stage cache makes the second build a no-op within a session, and a
stale folder from an older code version is rebuilt because stage keys include the code.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import need

from search import (
    MAX_IMAGE_BYTES,
    NoIndexError,
    SearchEngine,
    SearchInputError,
    UnsafePathError,
    decode_image,
    load_engine,
)
from smarttrace.config import EmbedConfig, load_config
from storage.index import scroll_all
from storage.index_settings import reid_dim

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SMARTTRACE_SHARED_DIR", REPO_ROOT.parent / "shared"))
PETS_VIDEO = SHARED / "data" / "PETS09-S2L1" / "vtest.avi"
CAMPUS_VIDEO = SHARED / "data" / "TUD-Campus" / "TUD-Campus.mp4"
SEARCH_RUN = REPO_ROOT / "runs" / ".test-cache" / "search-run"
PETS_FRAMES = 120
CAMPUS_FRAMES = 40


def write_search_config(folder: Path = SEARCH_RUN, run_dir: Path | None = None, index_path: Path | None = None) -> Path:
    """A two-camera config on short clips; `run_dir` defaults to `folder/run`, the index to `run_dir/qdrant`."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "cameras": [
            {"id": "pets", "video": str(PETS_VIDEO), "fps": 7, "max_frames": PETS_FRAMES,
             "start_time": "2009-03-01T09:00:00Z", "location": "campus crossing"},
            {"id": "campus", "video": str(CAMPUS_VIDEO), "fps": 25, "max_frames": CAMPUS_FRAMES,
             "start_time": "2009-03-01T09:00:10Z", "location": "TUD walkway"},
        ],
        "storage": {"run_dir": str(run_dir or folder / "run")},
        # Every frame detected: these tests judge search against the tracklets' own ids, so they need
        # tracklets without identity switches. On this 120-frame clip the keyframe default (stride 4)
        # swaps one person's track onto another at frames 30-36 (tests/test_keyframes.py covers it).
        "detector": {"stride": 1},
        # No attribute model: these tests cover the colour-rule path (indexes built without one);
        # the attribute path has its own tests below and in tests/test_attribute_search_e2e.py.
        "embed": {"attribute_weights": ""},
    }  # fmt: skip
    if index_path is not None:
        config["index"] = {"path": str(index_path)}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def build_search_run() -> Path:
    """Run the real pipeline on the short clips (skipped stage by stage when up to date); the config path."""
    need(PETS_VIDEO, CAMPUS_VIDEO, SHARED / "models" / "yolo11n-pose.pt")  # fails instead under CI's variable
    from flows.process import run_process

    config = write_search_config()
    run_process(config)
    return config


@pytest.fixture(scope="module")
def search_config(prefect_harness) -> Path:
    return build_search_run()


@pytest.fixture(scope="module")
def engine(search_config) -> SearchEngine:
    return load_engine(search_config)


def _tracks(config_path: Path, camera: str) -> pd.DataFrame:
    return pd.read_parquet(load_config(config_path).storage.run_dir / "tracks" / f"{camera}.parquet")


def _frame(video: Path, index: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(video))
    try:
        for _ in range(index + 1):
            ok, frame = capture.read()
            assert ok, f"{video} has no frame {index}"
        return frame
    finally:
        capture.release()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def person_crop(config_path: Path, engine: SearchEngine) -> tuple[np.ndarray, int, int]:
    """(crop, tracklet id, its global id): a detected, unoccluded PETS box of an indexed tracklet.

    Taken from a frame other than the tracklet's thumbnail frame, so the query is not the very
    image the index was built from.
    """
    tracks = _tracks(config_path, "pets")
    indexed = {(p["camera_id"], p["tracklet_id"]): p for _id, p in scroll_all(engine.index) if p["has_reid"]}
    detected = tracks.loc[~tracks["interpolated"] & ((tracks["y2"] - tracks["y1"]) >= 60)]
    for row in detected.sort_values(["frame_index", "track_id"]).itertuples():
        hit = indexed.get(("pets", int(row.track_id)))
        if hit is None or hit["global_id"] < 0 or row.frame_index % 10 or row.frame_index == hit["best_frame"]:
            continue
        box = np.array([row.x1, row.y1, row.x2, row.y2])
        same_frame = tracks.loc[(tracks["frame_index"] == row.frame_index) & (tracks["track_id"] != row.track_id)]
        if any(_iou(box, np.array([o.x1, o.y1, o.x2, o.y2])) > 0.05 for o in same_frame.itertuples()):
            continue
        frame = _frame(PETS_VIDEO, int(row.frame_index))
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        return frame[max(y1, 0) : y2, max(x1, 0) : x2].copy(), int(row.track_id), int(hit["global_id"])
    pytest.fail("no clean person crop in the test clip")


def test_image_search_finds_the_person_a_crop_belongs_to(search_config, engine):
    crop, tracklet_id, global_id = person_crop(search_config, engine)
    ok, png = cv2.imencode(".png", crop)
    assert ok
    results = engine.search_image(png.tobytes(), limit=3)  # as uploaded: encoded bytes
    assert results, "image search returned nothing"
    assert global_id in [r.global_id for r in results], (tracklet_id, global_id, [r.to_dict() for r in results])
    match = next(r for r in results if r.global_id == global_id)
    assert match.thumbnail is not None and match.thumbnail.is_file()
    assert match.thumbnail.is_relative_to(engine.run_dir)
    assert 0.0 <= match.score <= 1.0 and match.explanation.startswith("appearance")
    assert any(t.tracklet_id == tracklet_id for t in match.tracklets)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert results.query_crop is not None and results.notes


def test_image_search_on_a_whole_frame_picks_a_person(engine):
    frame = _frame(PETS_VIDEO, 60)
    results = engine.search_image(frame, limit=5)
    assert results and results.query_box is not None
    x1, y1, x2, y2 = results.query_box
    assert 0 <= x1 < x2 <= frame.shape[1] and 0 <= y1 < y2 <= frame.shape[0]
    assert (y2 - y1) < frame.shape[0] / 2  # a person, not the whole frame


def test_text_search_returns_explained_identities(engine):
    results = engine.search_text("black top and blue jeans", limit=5)
    assert results
    assert len({r.global_id for r in results}) == len(results)  # one result per identity
    for result in results:
        assert 0.0 < result.score <= 1.0
        best = result.tracklets[0]  # the person's score and explanation are its best tracklet's
        assert result.explanation.startswith("colour rules:")
        # what matched carries its strength; a miss says "no" with the colour that was seen
        upper = r"upper black [01]\.\d\d" if best.upper_color == "black" else rf"upper black: no \({best.upper_color}\)"
        lower = r"lower blue [01]\.\d\d" if best.lower_color == "blue" else rf"lower blue: no \({best.lower_color}\)"
        assert re.search(upper, result.explanation) and re.search(lower, result.explanation), result.explanation
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    matched = [(r.tracklets[0].upper_color == "black", r.tracklets[0].lower_color == "blue", r.score) for r in results]
    both = [score for up, low, score in matched if up and low]
    one = [score for up, low, score in matched if up != low]
    assert both, "no person in black top and blue jeans was found"
    if one:  # the best match of both stated colours outranks every match of only one
        assert max(both) > max(one)
    assert any("attributes only" in note for note in results.notes)  # no CLIP weights here
    assert any("indexed without the attribute model" in note for note in results.notes)
    assert engine.clip_available is False and engine.clip_note


def test_camera_and_time_filters_are_respected(engine, search_config):
    campus_only = engine.search_text("black top and blue jeans", camera_ids=["campus"], limit=20)
    assert campus_only and all(t.camera_id == "campus" for r in campus_only for t in r.tracklets)
    crop, _tracklet, _gid = person_crop(search_config, engine)
    by_image = engine.search_image(crop, camera_ids=["campus"], limit=5)
    assert all(r.cameras == ["campus"] for r in by_image)
    assert engine.search_text("black top", camera_ids=["no-such-camera"]) == []
    start = pd.Timestamp("2009-03-01T09:00:10Z").to_pydatetime()
    late = engine.search_text("black top and blue jeans", time_range=(start, None), limit=50)
    assert all(t.end_time >= start for r in late for t in r.tracklets)
    with pytest.raises(SearchInputError, match="starts after it ends"):
        engine.search_text("black top", time_range=(start, start.replace(minute=0, second=0)))


def test_combined_search_mixes_image_and_text(search_config, engine):
    crop, _tracklet, global_id = person_crop(search_config, engine)
    results = engine.search(image=crop, text="black top and blue jeans", limit=3)
    assert results and "appearance" in results[0].explanation and "text" in results[0].explanation
    assert all(0.0 <= r.score <= 1.0 for r in results)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels in a few dozen bytes (its pixel data is a stub)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_bad_uploads_get_clear_errors(engine, tmp_path):
    with pytest.raises(SearchInputError, match="not an image"):
        engine.search_image(b"GIF? no, a text file pretending to be a photo")
    with pytest.raises(SearchInputError, match="corrupt"):  # never handed to ultralytics' PIL patch (pip install)
        engine.search_image(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(SearchInputError, match="megapixels"):
        engine.search_image(_png_header(20000, 20000))  # refused from its header: 1.2 GB never allocated
    with pytest.raises(SearchInputError, match="megapixels"):
        decode_image(_png_header(9000, 6000))  # over our limit, under PIL's own bomb limit
    with pytest.raises(SearchInputError, match="MB"):
        decode_image(b"\xff\xd8" + b"\0" * MAX_IMAGE_BYTES)
    with pytest.raises(SearchInputError, match="no person found"):
        engine.search_image(np.full((480, 640, 3), 200, np.uint8))
    with pytest.raises(SearchInputError, match="not found"):
        engine.search_image(tmp_path / "missing.jpg")
    with pytest.raises(SearchInputError, match="empty"):
        engine.search_text("   ")
    with pytest.raises(SearchInputError, match="not understood: walking, fast"):
        engine.search_text("someone walking fast")
    with pytest.raises(SearchInputError):
        engine.search()


def test_thumbnail_paths_cannot_leave_the_run_folder(engine, tmp_path):
    with pytest.raises(UnsafePathError):
        engine.thumbnail_path("../../../etc/passwd")
    with pytest.raises(UnsafePathError):
        engine.thumbnail_path("/etc/passwd")
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"x")
    link = engine.run_dir / "thumbnails" / "escape.jpg"
    link.unlink(missing_ok=True)
    link.symlink_to(outside)
    try:
        with pytest.raises(UnsafePathError):
            engine.thumbnail_path("thumbnails/escape.jpg")
    finally:
        link.unlink()
    assert engine.thumbnail_path("thumbnails/pets/does-not-exist.jpg") is None


def test_person_timeline_lists_every_tracklet_of_an_identity(engine):
    per_identity = Counter(p["global_id"] for _id, p in scroll_all(engine.index))
    global_id, tracklets = per_identity.most_common(1)[0]
    timeline = engine.person_timeline(global_id)
    assert {t.global_id for t in timeline} == {global_id}
    assert len(timeline) == tracklets
    assert [t.start_time for t in timeline] == sorted(t.start_time for t in timeline)
    assert all(t.location and t.video_path for t in timeline)
    with pytest.raises(SearchInputError, match="no person with global id"):
        engine.person_timeline(987654)


def test_render_clip_writes_a_cached_h264_mp4(engine, tmp_path):
    import av

    result = engine.search_text("black top", camera_ids=["campus"], limit=1)[0]
    tracklet = result.tracklets[0]
    clip = engine.render_clip(tracklet, tmp_path)
    assert clip.suffix == ".mp4" and clip.parent == tmp_path
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.width % 2 == 0 and stream.height % 2 == 0
        frames = sum(1 for _ in container.decode(stream))
    assert frames == tracklet.end_frame - tracklet.start_frame + 1
    mtime = clip.stat().st_mtime_ns
    assert engine.render_clip(tracklet, tmp_path) == clip and clip.stat().st_mtime_ns == mtime  # rendered once
    assert [p.name for p in tmp_path.iterdir()] == [clip.name]  # no temp file left behind


def test_cli_search_prints_results_and_clean_json(search_config, capsys):
    import json

    from smarttrace.cli import main

    assert main(["search", "--text", "black top and blue jeans", "--config", str(search_config), "--limit", "3"]) == 0
    table = capsys.readouterr().out
    assert " 1. person " in table and "score" in table and "colour rules:" in table
    assert main(["search", "--text", "black top", "--camera", "campus", "--config", str(search_config), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)  # stdout holds the JSON and nothing else
    assert payload["results"] and all(r["cameras"] == ["campus"] for r in payload["results"])
    assert main(["search", "--text", "  ", "--config", str(search_config)]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["search", "--text", "zorblax quux", "--config", str(search_config)]) == 2
    assert "not understood: zorblax, quux" in capsys.readouterr().err


def test_no_index_yet_tells_the_user_to_run_the_pipeline(tmp_path):
    engine = load_engine(write_search_config(tmp_path, run_dir=tmp_path / "empty-run"))
    with pytest.raises(NoIndexError, match="smarttrace process"):
        engine.search_text("black top")
    with pytest.raises(NoIndexError, match="smarttrace process"):
        engine.search_image(np.full((200, 80, 3), 90, np.uint8))


def test_clip_code_path_with_a_random_model(search_config, tmp_path):
    """CLIP vectors in the index and a (random, test-only) CLIP model: scores mix, the note warns.

    One tracklet's CLIP vector is set to the query's own text vector, so a CLIP-only query must
    rank that tracklet first with the top score; the model's weights being random does not matter.
    """
    import pyarrow as pa

    from search.text import CLIP_PROMPT
    from storage.artifacts import read_artifact
    from storage.index import IndexConfig, upload_tracklets

    config = load_config(search_config)
    run_dir = config.storage.run_dir
    config = config.model_copy(update={
        "storage": config.storage.model_copy(update={"run_dir": tmp_path}),
        "embed": config.embed.model_copy(update={"clip_pretrained": "random"}),
    })  # fmt: skip
    engine = SearchEngine(config)
    assert engine.clip_available and "randomly initialised" in (engine.clip_note or "")
    tracklets = pa.concat_tables([read_artifact(run_dir / "tracklets" / f"{c}.parquet", "tracklets")
                                  for c in ("pets", "campus")])
    vectors = np.random.default_rng(0).normal(size=(tracklets.num_rows, 512)).astype(np.float32)
    query = "someone walking fast"
    vectors[0] = engine.clip.embed_texts([CLIP_PROMPT.format(query)])[0]
    tracklets = tracklets.set_column(
        tracklets.column_names.index("clip_embedding"), "clip_embedding",
        pa.array(vectors.tolist(), pa.list_(pa.float32())),
    )
    identities = read_artifact(run_dir / "identities.parquet", "identities")
    upload_tracklets(IndexConfig.for_run_dir(tmp_path, clip_dim=512, reid_dim=reid_dim(EmbedConfig())), tracklets,
                     identities)
    results = engine.search_text("black top and blue jeans", limit=5)
    assert results and all(0.0 <= r.score <= 1.0 for r in results)
    assert all("clip" in r.explanation and "colour rules:" in r.explanation for r in results)
    assert any("randomly initialised" in note for note in results.notes)
    only_clip = engine.search_text(query, limit=3)  # no colour words: CLIP alone
    first = tracklets.slice(0, 1).to_pylist()[0]
    assert only_clip[0].score == pytest.approx(1.0)
    assert (only_clip[0].tracklets[0].camera_id, only_clip[0].tracklets[0].tracklet_id) == (
        first["camera_id"], first["tracklet_id"],
    )
    assert "colour rules" not in only_clip[0].explanation and "clip 1.00" in only_clip[0].explanation


def _attribute_index(search_config: Path, tmp_path: Path, with_probs: int | None = None) -> tuple[SearchEngine, dict]:
    """An engine on the real pipeline's tracklets re-indexed in `tmp_path` (see `upload_attribute_index`)."""
    config = load_config(search_config)
    women = upload_attribute_index(search_config, tmp_path / "qdrant", with_probs)
    storage = config.storage.model_copy(update={"run_dir": tmp_path})
    return SearchEngine(config.model_copy(update={"storage": storage})), women


def upload_attribute_index(search_config: Path, index_path: Path, with_probs: int | None = None) -> dict:
    """The real pipeline's tracklets indexed at `index_path` with hand-built attribute probabilities.

    Tracklet 0 of each camera is a woman with a backpack in a red top; every other one a man in
    black without a bag. `with_probs`: only the first N tracklets get probabilities (an index mixing
    tracklets embedded with and without the attribute model). Returns the women's
    (camera, tracklet) -> global id.
    """
    import pyarrow as pa

    from storage.artifacts import read_artifact
    from storage.index import IndexConfig, upload_tracklets
    from storage.schemas import ATTRIBUTE_VOCABULARY

    config = load_config(search_config)
    run_dir = config.storage.run_dir
    tracklets = pa.concat_tables([read_artifact(run_dir / "tracklets" / f"{c}.parquet", "tracklets")
                                  for c in ("pets", "campus")])
    index = {name: i for i, name in enumerate(ATTRIBUTE_VOCABULARY)}
    rows = []
    first = {}
    for row, tracklet in enumerate(tracklets.select(["camera_id", "tracklet_id"]).to_pylist()):
        probs = np.full(len(ATTRIBUTE_VOCABULARY), 0.05, np.float32)
        woman = tracklet["camera_id"] not in first
        first.setdefault(tracklet["camera_id"], tracklet["tracklet_id"])
        for name, value in ({"personalFemale": 0.95, "carryingBackpack": 0.9, "upperBodyRed": 0.8} if woman else
                            {"personalMale": 0.9, "upperBodyBlack": 0.85, "carryingNothing": 0.8}).items():
            probs[index[name]] = value
        rows.append(None if with_probs is not None and row >= with_probs else probs.tolist())
    tracklets = tracklets.set_column(tracklets.column_names.index("attribute_probs"), "attribute_probs",
                                     pa.array(rows, pa.list_(pa.float32())))
    identities = read_artifact(run_dir / "identities.parquet", "identities")
    upload_tracklets(IndexConfig(path=index_path, reid_dim=reid_dim(EmbedConfig())), tracklets, identities)
    gids = identities.to_pandas().set_index(["camera_id", "tracklet_id"])["global_id"]
    return {(c, t): int(gids.loc[(c, t)]) for c, t in first.items()}


def test_text_search_over_attribute_payloads_finds_and_explains_the_described_person(search_config, tmp_path):
    engine, women = _attribute_index(search_config, tmp_path)
    results = engine.search_text("a woman in a red top with a backpack", limit=3)
    assert results[0].global_id in set(women.values())
    assert results[0].explanation.startswith("woman 0.95, upper red 0.80, backpack 0.90")
    assert results[0].score == pytest.approx((0.95 * 0.8 * 0.9) ** (1 / 3), abs=1e-3)
    assert not any("indexed without" in note for note in results.notes)
    denied = engine.search_text("man without a backpack", limit=50)
    assert set(women.values()).isdisjoint({r.global_id for r in denied[:3]})
    assert "no backpack 0.95" in denied[0].explanation
    with_words = engine.search_text("woman with headphones, walking", limit=1)
    assert "not understood: walking" in with_words.notes and any("headphones" in n for n in with_words.notes)
    with pytest.raises(SearchInputError, match="not understood: zorblax"):
        engine.search_text("zorblax")


def test_attribute_filters_narrow_text_image_and_alone(search_config, tmp_path):
    engine, women = _attribute_index(search_config, tmp_path)
    only_women = engine.search(attribute_filters={"female": True}, limit=20)  # the filters are the query
    assert only_women and {r.global_id for r in only_women} <= set(women.values())
    assert any("filters: woman" in note for note in only_women.notes)
    men_in_black = engine.search_text("black top", attribute_filters={"male": True, "bag": False}, limit=50)
    assert men_in_black and set(women.values()).isdisjoint(r.global_id for r in men_in_black)
    crop, _tracklet, _gid = person_crop(search_config, engine)
    by_image = engine.search_image(crop, attribute_filters={"female": True}, limit=5)
    assert {r.global_id for r in by_image} <= set(women.values())
    with pytest.raises(SearchInputError, match="unknown attribute filter 'tall'"):
        engine.search_text("black top", attribute_filters={"tall": True})


def test_cli_search_with_attribute_filters(search_config, tmp_path, capsys):
    import json

    from smarttrace.cli import main

    women = upload_attribute_index(search_config, tmp_path / "qdrant")
    config = write_search_config(tmp_path, run_dir=load_config(search_config).storage.run_dir,
                                 index_path=tmp_path / "qdrant")
    assert main(["search", "--filter", "female", "--filter", "no-hat", "--config", str(config), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["results"] and {r["global_id"] for r in payload["results"]} <= set(women.values())
    assert payload["results"][0]["explanation"].startswith("woman 0.95, no hat 0.95")
    assert main(["search", "--text", "man", "--filter", "female", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"] == []


def test_tracklets_without_attributes_fall_back_to_colour_rules(search_config, tmp_path):
    engine, _women = _attribute_index(search_config, tmp_path, with_probs=3)
    results = engine.search_text("black top and blue jeans", limit=50)
    explanations = [t.explanation for r in results for t in r.tracklets]
    assert any(e.startswith("colour rules:") for e in explanations)
    assert any(e.startswith("upper black") for e in explanations)
    assert any("indexed without the attribute model: they are scored by clothing colours only" in n
               for n in results.notes)
    nobody_old = engine.search_text("woman with a backpack", limit=50)  # colour rules cannot say "woman"
    assert all(not t.explanation.startswith("colour rules") for r in nobody_old for t in r.tracklets)
