"""Search benchmark: query latency at 1k / 10k / 50k tracklets, image-search accuracy, text precision.

    python benchmarks/search.py [--data DIR] [--work DIR] [--runs N]     # DIR defaults to ../shared/data

1. The real pipeline (`run_process`) indexes the whole PETS09-S2L1 video (795 frames, one camera).
2. Image search accuracy, HEADLINE (held out): a second index is built by the same pipeline from
   frames 0-397 only; the queries are ground-truth boxes of frames 398-794 (`gt/gt.txt`, every 10th
   frame of each person, unoccluded, at least 40 px tall, inside the frame), cut from the video and
   searched like uploads (`SearchEngine.search_image`: detector, OSNet, index). No query frame is in
   that index. A query succeeds when its person's *dominant global id* in the held-out index (the
   global id most of the person's GT boxes of frames 0-397 are matched to: track boxes, IoU >= 0.5,
   one to one per frame) is the first (top-1) or among the top 5 identities. People, not MOT15 ids:
   a person re-entering the view gets a new GT id, so ids are mapped to the 10 people of
   benchmarks/annotations/PETS09-S2L1.persons.csv. Scored over the queries whose person is in the
   index at all (their share is printed: people first seen after frame 397 cannot be found), next
   to chance level (1 and 5 / identities in the index).
   Kept under its own name, `image_top5_self_retrieval`: queries from frames 0-397 against the index
   of the whole video, which holds those very frames (self-retrieval, an upper bound).
3. Text search precision@5 on a SELF-AUTHORED query set (below). Relevance is not measured by the
   system under test: clothing colours of the 19 PETS09 people were annotated by eye from their GT
   crops (`ANNOTATIONS`), a returned identity is mapped to the GT person most of its boxes overlap,
   and it is relevant when that person's annotated colours satisfy every colour the query states
   (parsed with `tasks.text_query.parse_query`). P@5 = relevant identities in the top 5 / 5.
4. Latency, model loading excluded (models and the index snapshot are loaded before timing): the
   real tracklets' vectors and payloads replicated with noise (reid vectors + N(0, 0.05) then
   re-normalised; 8 synthetic cameras; times shifted by an hour per replica; 20% of colours redrawn)
   into separate temporary index folders of 1k, 10k and 50k points. Image queries are end to end
   (detector + OSNet + index + grouping) on GT crops; text queries are attribute scoring over every
   payload + grouping. p50 / p95 over `--runs` queries each. Text queries include descriptions
   beyond colours (`LATENCY_QUERIES`); the replicas carry attribute probabilities (the real ones plus
   noise, or random ones when the run had no attribute model: timing does not depend on their values).
Ends with ONE JSON line; `image_top5_heldout` is the headline image figure; `p50_ms_10k` / `p95_ms_10k`
are the image query at 10k points.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from search import SearchEngine  # noqa: E402
from smarttrace.config import SmartTraceConfig, load_config  # noqa: E402
from smarttrace.errors import SmartTraceError  # noqa: E402
from storage.artifacts import read_artifact  # noqa: E402
from storage.index import IndexConfig, search_vectors, upload_tracklets  # noqa: E402
from storage.index_settings import reid_dim  # noqa: E402
from storage.schemas import ATTRIBUTE_VOCABULARY, COLOR_NAMES  # noqa: E402
from tasks.detections import iou_xyxy  # noqa: E402
from tasks.evaluate_tracking import load_mot_txt  # noqa: E402
from tasks.person_map import load_person_map  # noqa: E402
from tasks.text_query import parse_query  # noqa: E402

PERSONS = REPO / "benchmarks" / "annotations" / "PETS09-S2L1.persons.csv"  # MOT15's 19 ids are 10 people
WINDOW_A_END = 398  # frames [0, 398) are window A, [398, 795) window B (as in benchmarks/identities.py)
QUERY_FRAME_STRIDE = 10
MIN_QUERY_HEIGHT = 40  # px: OSNet sees noise below this (embed.min_crop_height)
MAX_QUERY_OVERLAP = 0.3  # IoU with any other GT box: an occluded crop shows two people
MATCH_IOU = 0.5
SCALES = {"1k": 1_000, "10k": 10_000, "50k": 50_000}
SYNTH_CAMERAS = 8
SYNTH_NOISE = 0.05
SYNTH_RECOLOUR = 0.2

# SELF-AUTHORED annotations: upper / lower clothing colours of each PETS09-S2L1 ground-truth person,
# read by eye from GT crops spread over each person's life (one annotator, no second opinion). Sets
# hold every palette colour an honest witness could name (a red-and-navy jacket is "red" and "blue").
ANNOTATIONS: dict[int, tuple[set[str], set[str]]] = {
    1: ({"black"}, {"black"}),                 # black coat, black trousers
    2: ({"black", "grey"}, {"blue"}),          # dark grey jacket, jeans
    3: ({"red", "blue"}, {"blue", "black"}),   # red-shouldered navy down jacket, navy trousers
    4: ({"black"}, {"blue"}),                  # long black coat, jeans (curly blonde hair)
    5: ({"black"}, {"blue"}),                  # black jacket, jeans
    6: ({"red"}, {"blue"}),                    # red jacket, jeans
    7: ({"blue"}, {"grey"}),                   # blue hooded jacket, grey trousers
    8: ({"black"}, {"black"}),                 # black jacket, black trousers
    9: ({"black"}, {"blue"}),                  # black jacket, jeans
    10: ({"red"}, {"blue"}),                   # red jacket, jeans
    11: ({"red", "blue"}, {"blue", "black"}),  # red-shouldered navy down jacket, navy trousers
    12: ({"black"}, {"blue"}),                 # long black coat, jeans (blonde)
    13: ({"black"}, {"blue"}),                 # black jacket, jeans
    14: ({"black"}, {"black"}),                # black leather jacket, black trousers
    15: ({"black"}, {"black"}),                # black jacket, black trousers
    16: ({"blue", "white"}, {"blue"}),         # pale blue hooded jacket, jeans
    17: ({"black", "blue"}, {"blue"}),         # navy striped jacket, jeans
    18: ({"black"}, {"black"}),                # black jacket, black trousers
    19: ({"black"}, {"black"}),                # black coat, black trousers
}  # fmt: skip
# SELF-AUTHORED text queries (written before looking at any search result).
TEXT_QUERIES = [
    "red jacket",
    "red jacket and blue jeans",
    "blue jacket",
    "blue jacket and grey trousers",
    "black top and blue jeans",
    "black coat and black trousers",
    "light blue jacket and jeans",
    "grey trousers",
    "white jacket",
]


# Timed as well (not scored): descriptions beyond colours, parsed and scored by the attribute scorer.
LATENCY_QUERIES = TEXT_QUERIES + [
    "woman with long hair, white t-shirt, black skirt, carrying a backpack",
    "old man in a grey suit without a hat",
    "man in his 30s, red jacket, blue jeans, sneakers, no bag",
]


def relevant(query: str, person: int | None) -> bool:
    """Whether an annotated GT person satisfies every colour the query states."""
    if person is None or person not in ANNOTATIONS:
        return False
    upper, lower = ANNOTATIONS[person]
    for region, colour, _weight in parse_query(query).constraints():
        wanted = {"upper": upper, "lower": lower, "any": upper | lower}[region]
        if colour not in wanted:
            return False
    return True


# ---------------------------------------------------------------------------- ground truth <-> tracks


def match_boxes(gt: pd.DataFrame, tracks: pd.DataFrame) -> pd.DataFrame:
    """(frame_index, gt id, track_id) of GT and track boxes matched one to one per frame at IoU >= 0.5."""
    from scipy.optimize import linear_sum_assignment

    rows = []
    by_frame = dict(tuple(tracks.groupby("frame_index")))
    for frame, people in gt.groupby("frame_index"):
        boxes = by_frame.get(frame)
        if boxes is None:
            continue
        iou = iou_xyxy(people[["x1", "y1", "x2", "y2"]].to_numpy(), boxes[["x1", "y1", "x2", "y2"]].to_numpy())
        for i, j in zip(*linear_sum_assignment(-iou), strict=True):
            if iou[i, j] >= MATCH_IOU:
                rows.append((frame, int(people["id"].iloc[i]), int(boxes["track_id"].iloc[j])))
    return pd.DataFrame(rows, columns=["frame_index", "gt_id", "track_id"])


def load_gt(path: Path) -> pd.DataFrame:
    gt = load_mot_txt(path)
    return pd.DataFrame({
        "frame_index": gt["frame"].astype(int) - 1, "id": gt["id"].astype(int),
        "x1": gt["x"], "y1": gt["y"], "x2": gt["x"] + gt["w"], "y2": gt["y"] + gt["h"],
    })  # fmt: skip


def _mode(values: pd.Series) -> int | None:
    return int(values.mode().iloc[0]) if len(values) else None


# ---------------------------------------------------------------------------- pipeline


def build_index(data: Path, work: Path, max_frames: int | None = None) -> Path:
    """Run the real pipeline on PETS09-S2L1 (all frames, or the first `max_frames`) into `work`;
    stages are skipped when up to date."""
    from flows.process import run_process

    work.mkdir(parents=True, exist_ok=True)
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({
        "cameras": [{"id": "pets", "video": str(data / "PETS09-S2L1" / "vtest.avi"), "fps": 7,
                     "start_time": "2009-03-01T09:00:00Z", "location": "PETS09 S2 view 001",
                     "max_frames": max_frames}],
        "storage": {"run_dir": str(work / "run")},
    }))  # fmt: skip
    started = time.perf_counter()
    run_process(config)
    frames = max_frames or 795
    print(f"pipeline on PETS09-S2L1 ({frames} frames): {time.perf_counter() - started:.0f} s (0 s when cached)")
    return config


def read_frames(video: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def query_crops(gt: pd.DataFrame, frames: list[np.ndarray], window_a: bool = True) -> list[tuple[int, int, np.ndarray]]:
    """(frame, gt id, crop) of unoccluded, whole, large enough GT boxes of window A (or B), every 10th frame."""
    height, width = frames[0].shape[:2]
    out = []
    in_window = gt["frame_index"] < WINDOW_A_END if window_a else gt["frame_index"] >= WINDOW_A_END
    for frame, people in gt.loc[in_window].groupby("frame_index"):
        if frame % QUERY_FRAME_STRIDE:
            continue
        boxes = people[["x1", "y1", "x2", "y2"]].to_numpy()
        iou = iou_xyxy(boxes, boxes)
        np.fill_diagonal(iou, 0)
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            if y2 - y1 < MIN_QUERY_HEIGHT or x1 < 0 or y1 < 0 or x2 > width or y2 > height:
                continue
            if iou[i].max(initial=0) > MAX_QUERY_OVERLAP:
                continue
            crop = frames[frame][int(y1) : int(round(y2)), int(x1) : int(round(x2))].copy()
            out.append((int(frame), int(people["id"].iloc[i]), crop))
    return out


# ---------------------------------------------------------------------------- accuracy


def top5(engine: SearchEngine, crop: np.ndarray) -> list[int] | None:
    """Global ids of the top 5 identities for an uploaded crop, best first; None when no person is found."""
    try:
        return [r.global_id for r in engine.search_image(crop, limit=5)]
    except SmartTraceError:
        return None


def image_accuracy(engine: SearchEngine, queries: list, dominant: dict, dominant_later: dict) -> dict:
    hits = later_hits = later_total = failures = 0
    for _frame, person, crop in queries:
        top = top5(engine, crop)
        if top is None:
            failures += 1
            continue
        hits += dominant.get(person) in top
        if person in dominant_later:
            later_total += 1
            later_hits += dominant_later[person] in top
    n = len(queries)
    print(f"image search, SELF-RETRIEVAL (query frames are in the index): top-5 {hits / n:.3f} of {n} GT crops "
          f"({failures} refused: no person found); later window top-5 {later_hits / max(later_total, 1):.3f} "
          f"of {later_total}")
    return {"image_top5_self_retrieval": round(hits / n, 4), "image_queries": n, "image_refused": failures,
            "image_top5_later_window": round(later_hits / max(later_total, 1), 4),
            "image_later_window_queries": later_total}  # fmt: skip


def dominant_global_ids(config: SmartTraceConfig, gt: pd.DataFrame) -> tuple[dict[int, int], pd.DataFrame, int]:
    """(GT person -> dominant global id, matched pairs, identities in the index) of one run."""
    run_dir = config.storage.run_dir
    tracks = read_artifact(run_dir / "tracks" / "pets.parquet", "tracks").to_pandas()
    identities = read_artifact(run_dir / "identities.parquet", "identities").to_pandas()
    global_of = dict(zip(identities["tracklet_id"], identities["global_id"], strict=True))
    pairs = match_boxes(gt.loc[gt["frame_index"] <= tracks["frame_index"].max()], tracks)
    pairs["global_id"] = pairs["track_id"].map(global_of)
    pairs = pairs.dropna(subset=["global_id"])
    return {p: _mode(g["global_id"]) for p, g in pairs.groupby("gt_id")}, pairs, identities["global_id"].nunique()


def heldout_accuracy(engine: SearchEngine, queries: list, dominant: dict, identities: int) -> dict:
    """Top-1 / top-5 of queries from frames the index does not hold, over those whose person it holds."""
    in_index = [(frame, person, crop) for frame, person, crop in queries if person in dominant]
    hits1 = hits5 = refused = 0
    for _frame, person, crop in in_index:
        top = top5(engine, crop)
        refused += top is None
        hits1 += bool(top) and top[0] == dominant[person]
        hits5 += top is not None and dominant[person] in top
    n = max(len(in_index), 1)
    chance1, chance5 = 1 / max(identities, 1), min(5 / max(identities, 1), 1.0)
    share = len(in_index) / max(len(queries), 1)
    print(f"image search, HELD OUT (index of frames 0-{WINDOW_A_END - 1}, queries from frames {WINDOW_A_END}-794, "
          f"people by the person map): top-1 {hits1 / n:.3f} (chance {chance1:.3f}), top-5 {hits5 / n:.3f} (chance "
          f"{chance5:.3f}) of {len(in_index)} queries whose person is in the index ({share:.0%} of {len(queries)} GT "
          f"crops; {refused} refused: no person found; {identities} identities in the index)")
    return {"image_top5_heldout": round(hits5 / n, 4), "image_top1_heldout": round(hits1 / n, 4),
            "image_heldout_queries": len(in_index),
            "image_heldout_person_in_index_share": round(share, 4), "image_heldout_refused": refused,
            "image_top1_heldout_chance": round(chance1, 4),
            "image_top5_heldout_chance": round(chance5, 4), "image_heldout_index_identities": identities,
            "image_heldout_protocol": f"index frames 0-{WINDOW_A_END - 1}, queries GT crops of frames "
                                      f"{WINDOW_A_END}-794 every {QUERY_FRAME_STRIDE}th"}  # fmt: skip


def text_precision(engine: SearchEngine, person_of_global: dict[int, int]) -> dict:
    """Mean P@5 (relevant in the top 5 / 5), and the share of returned results that are relevant
    (a query answered with 2 right people and nothing else scores 0.4 on the first, 1.0 on the second)."""
    at5, of_returned, answered = [], [], 0
    for query in TEXT_QUERIES:
        results = engine.search_text(query, limit=5)
        good = sum(relevant(query, person_of_global.get(r.global_id)) for r in results[:5])
        at5.append(good / 5)
        if results:
            answered += 1
            of_returned.append(good / len(results[:5]))
        people = [person_of_global.get(r.global_id) for r in results[:5]]
        print(f"  P@5 {good / 5:.2f}  '{query}'  -> GT people {people}")
    mean = float(np.mean(at5))
    returned = float(np.mean(of_returned)) if of_returned else 0.0
    print(f"text search: mean P@5 {mean:.3f} over {len(TEXT_QUERIES)} self-authored queries; "
          f"{returned:.3f} of returned results relevant ({answered} queries answered)")
    return {"text_p_at_5": round(mean, 4), "text_precision_of_returned": round(returned, 4),
            "text_queries": len(TEXT_QUERIES), "text_queries_answered": answered,
            "text_protocol": "self-authored queries and colour annotations (19 PETS09 GT people)"}  # fmt: skip


# ---------------------------------------------------------------------------- latency


def synthesise(tracklets: pa.Table, identities: pd.DataFrame, n: int, seed: int) -> tuple[pa.Table, pd.DataFrame]:
    """`n` tracklets made of the real ones: noisy vectors, more cameras, shifted times, some recoloured."""
    rng = np.random.default_rng(seed)
    base = tracklets.filter(pc.is_valid(tracklets.column("reid_embedding"))).to_pandas()
    ids = identities.set_index(["camera_id", "tracklet_id"])
    picks = np.arange(n) % len(base)
    replica = np.arange(n) // len(base)
    rows = base.iloc[picks].reset_index(drop=True)
    vectors = np.stack(rows["reid_embedding"].to_numpy()).astype(np.float32)
    vectors += rng.normal(0, SYNTH_NOISE, vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    shift = pd.to_timedelta(replica, unit="h")
    original = list(zip(rows["camera_id"], rows["tracklet_id"], strict=True))
    rows["camera_id"] = [f"cam-{r % SYNTH_CAMERAS:02d}" for r in replica]
    rows["tracklet_id"] = (rows["tracklet_id"].to_numpy() + 100_000 * (replica // SYNTH_CAMERAS)).astype(np.int32)
    rows["start_timestamp"] = rows["start_timestamp"] + shift
    rows["end_timestamp"] = rows["end_timestamp"] + shift
    rows["reid_embedding"] = list(vectors)
    rows["reid_crop_embeddings"] = None
    for column in ("upper_color", "lower_color"):
        redraw = rng.random(n) < SYNTH_RECOLOUR
        rows.loc[redraw, column] = rng.choice(COLOR_NAMES, int(redraw.sum()))
    if rows["attribute_probs"].isna().all():  # the run had no attribute model: random ones, for timing only
        rows["attribute_probs"] = list(rng.random((n, len(ATTRIBUTE_VOCABULARY)), dtype=np.float32))
    else:
        probs = np.stack([np.full(len(ATTRIBUTE_VOCABULARY), 0.5, np.float32) if p is None else p
                          for p in rows["attribute_probs"]])
        rows["attribute_probs"] = list(np.clip(probs + rng.normal(0, SYNTH_NOISE, probs.shape), 0, 1)
                                       .astype(np.float32))
    gids = np.array([int(ids.loc[key, "global_id"]) for key in original]) + 10_000 * replica
    new_ids = pd.DataFrame({
        "camera_id": rows["camera_id"], "tracklet_id": rows["tracklet_id"], "person_id": gids, "global_id": gids,
        "start_timestamp": rows["start_timestamp"], "end_timestamp": rows["end_timestamp"],
    })  # fmt: skip
    return pa.Table.from_pandas(rows, schema=tracklets.schema, preserve_index=False), new_ids


def _percentiles(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50) * 1000), float(np.percentile(samples, 95) * 1000)


def index_only_vs_plain_qdrant(folder: Path, table: pa.Table, runs: int) -> tuple[tuple[float, float], ...]:
    """Vector search alone (models excluded): ours vs a long-lived plain qdrant local client."""
    from qdrant_client import QdrantClient

    vectors = [np.asarray(v, np.float32) for v in table.column("reid_embedding").to_pylist()[:50] if v]
    config = IndexConfig(path=folder, reid_dim=len(vectors[0]))
    ours, plain = [], []
    for i in range(runs):
        started = time.perf_counter()
        search_vectors(config, "reid", vectors[i % len(vectors)], limit=10)
        ours.append(time.perf_counter() - started)
    client = QdrantClient(path=str(config.live_path))
    try:
        collection = client.get_collections().collections[0].name
        for i in range(runs):
            started = time.perf_counter()
            client.query_points(collection, query=vectors[i % len(vectors)], using="reid", limit=10)
            plain.append(time.perf_counter() - started)
    finally:
        client.close()
    return _percentiles(ours), _percentiles(plain)


def latency(config: SmartTraceConfig, work: Path, queries: list, runs: int) -> dict:
    run_dir = config.storage.run_dir
    tracklets = read_artifact(run_dir / "tracklets" / "pets.parquet", "tracklets")
    identities = read_artifact(run_dir / "identities.parquet", "identities").to_pandas()
    crops = [crop for _f, _p, crop in queries[:: max(1, len(queries) // 30)]]
    out: dict[str, float] = {}
    for name, size in SCALES.items():
        folder = Path(tempfile.mkdtemp(prefix=f"index-{name}-", dir=work))
        try:
            table, ids = synthesise(tracklets, identities, size, seed=size)
            started = time.perf_counter()
            upload_tracklets(IndexConfig(path=folder, reid_dim=reid_dim(config.embed)), table, ids)
            upload_s = time.perf_counter() - started
            engine = SearchEngine(config.model_copy(update={"index": config.index.model_copy(update={"path": folder})}))
            started = time.perf_counter()
            engine.count()  # loads the snapshot into memory: once per index version per process
            load_s = time.perf_counter() - started
            engine.warm_up()
            for crop in crops[:3]:
                engine.search_image(crop, limit=10)
                engine.search_text(TEXT_QUERIES[0], limit=10)
            image_s, text_s = [], []
            for i in range(runs):
                started = time.perf_counter()
                engine.search_image(crops[i % len(crops)], limit=10)
                image_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                engine.search_text(LATENCY_QUERIES[i % len(LATENCY_QUERIES)], limit=10)
                text_s.append(time.perf_counter() - started)
            (ip50, ip95), (tp50, tp95) = _percentiles(image_s), _percentiles(text_s)
            (vp50, vp95), (rp50, rp95) = index_only_vs_plain_qdrant(folder, table, runs)
            print(f"{name:>4} points: image p50 {ip50:6.1f} ms p95 {ip95:6.1f} ms | text p50 {tp50:6.1f} ms "
                  f"p95 {tp95:6.1f} ms | upload {upload_s:.1f} s, snapshot load {load_s:.2f} s")
            print(f"      index only (vector in, hits out): p50 {vp50:6.1f} ms p95 {vp95:6.1f} ms | plain qdrant "
                  f"local client query_points: p50 {rp50:6.1f} ms p95 {rp95:6.1f} ms (ratio p95 {vp95 / rp95:.2f})")
            out |= {f"image_p50_ms_{name}": round(ip50, 2), f"image_p95_ms_{name}": round(ip95, 2),
                    f"text_p50_ms_{name}": round(tp50, 2), f"text_p95_ms_{name}": round(tp95, 2),
                    f"index_p50_ms_{name}": round(vp50, 2), f"index_p95_ms_{name}": round(vp95, 2),
                    f"ref_qdrant_p95_ms_{name}": round(rp95, 2), f"index_vs_ref_p95_{name}": round(vp95 / rp95, 3),
                    f"snapshot_load_s_{name}": round(load_s, 3)}  # fmt: skip
        finally:
            from storage.index import clear_reader_cache

            clear_reader_cache()
            shutil.rmtree(folder, ignore_errors=True)
    out["p50_ms_10k"], out["p95_ms_10k"] = out["image_p50_ms_10k"], out["image_p95_ms_10k"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench-search")
    parser.add_argument("--runs", type=int, default=100, help="timed queries per scale and kind")
    parser.add_argument("--skip-latency", action="store_true", help="accuracy only (no synthetic indexes)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    models = REPO.parent / "shared" / "models"
    if models.is_dir():
        os.environ.setdefault("SMARTTRACE_MODEL_DIR", str(models))
    os.environ.setdefault("SMARTTRACE_DATA_DIR", str(args.data))

    config_path = build_index(args.data, args.work)
    config = load_config(config_path)
    gt = load_gt(args.data / "PETS09-S2L1" / "gt" / "gt.txt")
    dominant, pairs, identities = dominant_global_ids(config, gt)
    later = pairs.loc[pairs["frame_index"] >= WINDOW_A_END]
    early_people = set(gt.loc[gt["frame_index"] < WINDOW_A_END, "id"])
    dominant_later = {p: _mode(g["global_id"]) for p, g in later.groupby("gt_id") if p in early_people}
    person_of_global = {int(g): _mode(rows["gt_id"]) for g, rows in pairs.groupby("global_id")}
    print(f"{identities} global ids for {gt['id'].nunique()} GT people; "
          f"{len(Counter(pairs['gt_id']))} GT people matched to tracks")

    frames = read_frames(args.data / "PETS09-S2L1" / "vtest.avi")
    queries = query_crops(gt, frames)
    engine = SearchEngine(config)
    engine.warm_up()
    result: dict[str, object] = {"dataset": "PETS09-S2L1 (1 camera)"}
    heldout_config = load_config(build_index(args.data, args.work / "heldout", max_frames=WINDOW_A_END))
    people = gt.assign(id=gt["id"].map(load_person_map(PERSONS)))  # a re-entering person keeps one number
    heldout_dominant, _pairs, heldout_ids = dominant_global_ids(heldout_config, people)
    heldout_engine = SearchEngine(heldout_config)
    result |= heldout_accuracy(heldout_engine, query_crops(people, frames, window_a=False), heldout_dominant,
                               heldout_ids)
    del heldout_engine
    result |= image_accuracy(engine, queries, dominant, dominant_later)
    result |= text_precision(engine, person_of_global)
    result["clip"] = engine.clip_available
    if not args.skip_latency:
        result |= latency(config, args.work, queries, args.runs)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
