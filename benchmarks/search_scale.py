"""Search at scale: the embedded engine (qdrant-edge) at 10k / 100k / 1M tracklets vs a plain numpy scan.

    python benchmarks/search_scale.py [--sizes 10000,100000,1000000] [--runs N] [--tracklets DIR] [--api-size N]
                                      [--work DIR] [--delta N]

1. Points are made from REAL people. Default base (`--base peta`): every PETA crop under `--data`
   (13,024 crops of ~8,700 people from real surveillance cameras, `../shared/data/PETA`), embedded with
   the product's OSNet (`tasks.embed_reid.ReidEmbedder`), with attribute probabilities from the crop's
   PETA labels (0.85 where labelled, 0.08 where not: a confident model's output). `--base tracklets`:
   the ReID vectors and attribute probabilities of a real run's tracklets artifact (`--tracklets`,
   default: the test suite's cached PETS09 + TUD-Campus run; only 16 people). Each base row is
   copied with noise (vector + N(0, 0.05 * sqrt(512 / d)) per value, re-normalised: cosine ~0.6 to its
   source at any size d; probabilities + N(0, 0.05), clipped), over 8 cameras and 30 days, global ids per source
   person and copy. Payloads are the product's own (`storage.index` payload fields + attributes).
2. Each size is published with `storage.index.publish_batches` (engine shard, payload indexes, HNSW
   from 20k points): `ingest_points_per_s` and `publish_s` count that whole write; `load_s` is the
   first query of a reader afterwards (private hard-linked copy + engine load): "a new version
   visible to readers". Disk = the version folder.
3. Index-part latency, p50 / p95 over `--runs` queries, through the product's reader functions:
   image = `search_vectors` as `SearchEngine.search_image` calls it (200 candidates; top 20 compared)
   for a real vector + noise; filtered = the same with one camera and a
   1-day window; text = `payload_columns` with the description's attribute terms (the engine's
   `TEXT_CANDIDATES` best by the sparse `attr_terms`) + exact `score_constraints` on them, for 8
   descriptions (`TEXT_QUERIES`). Timed after the reader has read its files into the page cache
   (`warm_s`, seconds after the load), as a reader that has been serving a while answers.
4. Recall@20 against exact search on the same points: image = engine top-20 vs a numpy brute force;
   text = the candidates' exact top-20 vs exact scoring of every point.
5. Reference in the same run: the plain numpy scan (cosine matmul + boolean mask; text: scoring every
   point's probability matrix), what the embedded reader did before; `ratio_vs_numpy_100k` = numpy p95 /
   engine p95 for image search at 100k.
6. Reader RSS: a fresh process loads the version, runs 20 image queries and reports its peak RSS.
7. An upload on top of each size (`--delta`, default 2,000 points: half re-uploads of existing tracklets,
   half new ones) published as a delta part (`storage.index.append_batches`) while a reader serves the
   version: `visible_s` = seconds from the start of that publish until the reader's next query answers from
   the new version (finding a new and a re-uploaded point by their own vectors); then the same 40 image and
   text queries as just before the delta (`*_one_part` vs `*_delta`). With `--work` the base is made current
   again afterwards.
8. End to end through the HTTP API at `--api-size` (default 100k): the short two-camera run of
   `benchmarks/api.py`, then its index replaced by that many synthetic points; text and image queries
   over loopback with models loaded.
Ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from storage.attribute_vectors import attribute_terms  # noqa: E402
from storage.edge_index import folder_size_mb  # noqa: E402
from storage.index import (  # noqa: E402
    REID_VECTOR,
    TEXT_CANDIDATES,  # the engine candidates text search re-scores exactly: the product's setting
    IndexConfig,
    append_batches,
    clear_reader_cache,
    count_points,
    current_version,
    payload_columns,
    point_id,
    publish_batches,
    search_vectors,
    wait_until_warm,
)
from storage.index_points import attribute_payload  # noqa: E402 - the payload fields an upload writes
from storage.schemas import ATTRIBUTE_VOCABULARY  # noqa: E402
from tasks.attribute_scoring import score_constraints  # noqa: E402
from tasks.text_query import parse_description  # noqa: E402

NOISE = 0.05


def vector_noise(dim: int) -> float:
    """Per-value noise for a `dim`-d unit vector: N(0, NOISE) at 512-d, scaled so the copy keeps the same
    cosine to its source (~0.6) at any size."""
    return NOISE * (512 / dim) ** 0.5
CAMERAS = 8
DAYS = 30
T0 = 1_700_000_000.0  # epoch seconds of the first synthetic day
TEXT_QUERIES = [
    "woman, red jacket, blue jeans, backpack",
    "man in a black coat",
    "woman with long hair and a skirt",
    "man with a backpack and no hat",
    "white t-shirt and shorts",
    "old man with a bag",
    "woman in a white top and black trousers",
    "man, grey sweater, jeans, sunglasses",
]
DEFAULT_TRACKLETS = REPO / "runs" / ".test-cache" / "search-run" / "run" / "tracklets"
IMAGE_CANDIDATES = 200  # search.engine.MIN_IMAGE_CANDIDATES: what SearchEngine.search_image asks the index for


def load_real(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(reid vectors, attribute probabilities; NaN where absent) of every real tracklet under `folder`."""
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise SystemExit(f"no tracklets artifacts (*.parquet) in {folder}: run the test suite or the pipeline first")
    vectors, probs = [], []
    for file in files:
        table = pq.read_table(file, columns=["reid_embedding", "attribute_probs"]).to_pylist()
        for row in table:
            if row["reid_embedding"] is None:
                continue
            vectors.append(np.asarray(row["reid_embedding"], np.float32))
            p = row["attribute_probs"]
            probs.append(np.full(len(ATTRIBUTE_VOCABULARY), np.nan) if p is None else
                         np.array([np.nan if v is None else v for v in p], np.float64))
    base_probs = np.stack(probs)
    if np.isnan(base_probs).all():  # the run had no attribute model: probabilities drawn per source, for timing
        base_probs = np.random.default_rng(1).random(base_probs.shape)
    print(f"real tracklets: {len(vectors)} from {len(files)} artifacts in {folder}", flush=True)
    return np.stack(vectors), base_probs


PETA_POSITIVE, PETA_NEGATIVE = 0.85, 0.08  # probability given to a labelled / unlabelled attribute


def load_peta_base(peta: Path, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(OSNet vectors, label-derived probabilities) of every PETA crop: ~13k real people as the base."""
    import cv2

    from tasks.embed_reid import ReidEmbedder
    from tasks.peta import load_peta

    data = load_peta(peta)
    from smarttrace.config import EmbedConfig

    embed = EmbedConfig()  # the product's vectors: its ReID weights (1024-d ensemble) and backend
    reid = ReidEmbedder(embed.reid_weights, backend=embed.reid_backend)
    vectors = []
    started = time.perf_counter()
    for start in range(0, len(data.records), batch):
        crops = [cv2.imread(str(r.path)) for r in data.records[start : start + batch]]
        bad = [str(r.path) for r, c in zip(data.records[start : start + batch], crops, strict=True) if c is None]
        if bad:
            raise SystemExit(f"unreadable PETA image(s): {', '.join(bad[:3])}")
        vectors.append(reid(crops))
        done = start + len(crops)
        if done % (batch * 10) < batch or done == len(data.records):
            rate = done / (time.perf_counter() - started)
            print(f"  PETA base: {done:,}/{len(data.records):,} crops embedded ({rate:.0f}/s, "
                  f"ETA {(len(data.records) - done) / rate:.0f} s)", flush=True)
    labels = data.labels().astype(np.float64)
    probs = np.where(labels > 0, PETA_POSITIVE, PETA_NEGATIVE)
    print(f"real base: {len(labels):,} PETA crops of {len({r.person for r in data.records}):,} people "
          f"({', '.join(data.subsets)})", flush=True)
    return np.concatenate(vectors), probs


SYNTH_BATCH = 50_000  # payload dicts made and written per batch: 1M of them at once took ~21 GB


def synthesise(base: np.ndarray, base_probs: np.ndarray, n: int, seed: int) -> dict:
    """`n` points around the real ones: ids, {reid: (n, d)}, the probability matrix and start times.

    The payloads are made batch by batch by `batches` while the version is written."""
    rng = np.random.default_rng(seed)
    source = np.arange(n) % len(base)
    vectors = base[source] + rng.normal(0, vector_noise(base.shape[1]), (n, base.shape[1])).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    probs = np.clip(base_probs[source] + rng.normal(0, NOISE, (n, base_probs.shape[1])), 0.0, 1.0)
    starts = T0 + rng.uniform(0, DAYS * 86400, n)
    ids = [point_id(f"cam-{i % CAMERAS:02d}", i) for i in range(n)]
    return {"ids": ids, "vectors": {REID_VECTOR: vectors}, "probs": probs, "starts": starts, "base_rows": len(base)}


def payload(points: dict, i: int) -> dict:
    """The product's payload of synthetic point `i` (a person of its own: global id per source and copy)."""
    person = int(i // points["base_rows"] * points["base_rows"] + i % points["base_rows"])
    start = float(points["starts"][i])
    return {
        "camera_id": f"cam-{i % CAMERAS:02d}", "tracklet_id": i, "person_id": person, "global_id": person,
        "location": None, "start_frame": 0, "end_frame": 70, "start_time_s": 0.0, "end_time_s": 10.0,
        "start_timestamp": None, "end_timestamp": None, "start_epoch": start, "end_epoch": start + 10,
        "video_path": "/videos/x.mp4", "thumbnail_path": None, "best_frame": 10, "upper_color": "black",
        "upper_color_conf": 0.5, "lower_color": "blue", "lower_color_conf": 0.5, "has_reid": True, "has_clip": False,
        **attribute_payload(points["probs"][i].tolist()),
    }  # fmt: skip


def batches(points: dict):  # noqa: ANN201 - Iterator[storage.edge_index.Batch]
    """(ids, vectors, payloads) of SYNTH_BATCH points at a time, with a progress line per batch."""
    n, started = len(points["ids"]), time.perf_counter()
    for start in range(0, n, SYNTH_BATCH):
        stop = min(start + SYNTH_BATCH, n)
        yield (points["ids"][start:stop], {k: v[start:stop] for k, v in points["vectors"].items()},
               [payload(points, i) for i in range(start, stop)])  # fmt: skip
        if n >= 200_000:
            rate = stop / (time.perf_counter() - started)
            print(f"  written {stop:,}/{n:,} points ({rate:,.0f}/s, ETA {(n - stop) / rate:.0f} s + graph)", flush=True)


def publish(config: IndexConfig, points: dict) -> str:
    dims = {k: v.shape[1] for k, v in points["vectors"].items()}
    return publish_batches(config, batches(points), len(points["ids"]), dims)


def pct(samples: list[float]) -> tuple[float, float]:
    ms = np.asarray(samples) * 1000
    return round(float(np.percentile(ms, 50)), 2), round(float(np.percentile(ms, 95)), 2)


def timed(call):  # noqa: ANN001, ANN201 - (seconds, result) of a zero-argument callable
    start = time.perf_counter()
    out = call()
    return time.perf_counter() - start, out


def numpy_image(vectors: np.ndarray, query: np.ndarray, mask: np.ndarray | None, k: int = 20) -> np.ndarray:
    """The plain reference: cosine scan (unit rows) with an optional boolean filter, top-k rows."""
    rows = np.flatnonzero(mask) if mask is not None else None
    scores = vectors[rows] @ query if rows is not None else vectors @ query
    k = min(k, scores.size)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top])]
    return rows[top] if rows is not None else top


def exact_text_top(constraints: list, probs: np.ndarray, k: int = 20) -> np.ndarray:
    scores = score_constraints(constraints, probs).scores
    return np.argsort(-scores, kind="stable")[:k]


def delta_points(points: dict, size: int, seed: int) -> dict:
    """An upload of `size` points on top of `points`: the first half re-uploads existing tracklets (same
    ids, new vectors and attributes: a re-run camera), the second half are new tracklets (ids n, n+1, ...)."""
    n, rng = len(points["ids"]), np.random.default_rng(seed)
    rows = np.concatenate([np.arange(size // 2), np.arange(size - size // 2) % n])
    source = points["vectors"][REID_VECTOR][rows]
    vectors = source + rng.normal(0, 0.3 * vector_noise(source.shape[1]), source.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    new_ids = list(range(n, n + size - size // 2))
    numbers = list(range(size // 2)) + new_ids
    return {"ids": [point_id(f"cam-{i % CAMERAS:02d}", i) for i in numbers], "vectors": {REID_VECTOR: vectors},
            "probs": np.clip(points["probs"][rows] + rng.normal(0, NOISE, (size, points["probs"].shape[1])), 0, 1),
            "starts": points["starts"][rows], "base_rows": points["base_rows"], "numbers": numbers}  # fmt: skip


def delta_payloads(delta: dict):  # noqa: ANN201 - Iterator[storage.edge_index.Batch]
    """The delta's one batch, with payloads numbered as its tracklet ids (so a re-upload keeps its camera)."""
    numbers = delta["numbers"]
    payloads = [{**payload(delta, i), "tracklet_id": k, "camera_id": f"cam-{k % CAMERAS:02d}"}
                for i, k in enumerate(numbers)]  # fmt: skip
    yield delta["ids"], delta["vectors"], payloads


def _delta_queries(config: IndexConfig, queries: np.ndarray, terms: list, runs: int) -> dict[str, list[float]]:
    """Seconds of `runs` image and text queries (the same ones before and after the delta)."""
    times: dict[str, list[float]] = {"image": [], "text": []}
    for r in range(runs):
        image = functools.partial(search_vectors, config, REID_VECTOR, queries[r], limit=IMAGE_CANDIDATES)
        text = functools.partial(payload_columns, config, attribute_query=terms[r % len(terms)])
        times["image"].append(timed(image)[0])
        times["text"].append(timed(text)[0])
    return times


def measure_delta(config: IndexConfig, points: dict, size: int, runs: int) -> dict:
    """An upload of `size` points published as a delta part while a reader serves the version: seconds from
    the start of the publish until that reader answers from the new version (`visible_s`), checked by
    finding a new and a re-uploaded point by their own vectors; then the same image and text queries as
    just before the delta, to show what serving two parts costs. With `--work`, CURRENT is set back to the
    base afterwards so the next run reuses it unchanged."""
    base_version = str(current_version(config))
    delta = delta_points(points, size, seed=size)
    vectors = delta["vectors"][REID_VECTOR]
    rng = np.random.default_rng(11)
    queries = np.concatenate([vectors[rng.integers(size, size=runs // 2)],  # half find a delta point
                              points["vectors"][REID_VECTOR][rng.integers(len(points["ids"]), size=runs - runs // 2)]])
    terms = [attribute_terms(parse_description(t).constraints) for t in TEXT_QUERIES]
    before = _delta_queries(config, queries, terms, runs)
    started = time.perf_counter()
    append_batches(config, delta_payloads(delta), size, {REID_VECTOR: vectors.shape[1]})
    written = time.perf_counter() - started
    count = count_points(config)  # the reader's next query: loads the new part, keeps the base
    visible = time.perf_counter() - started
    served = all(search_vectors(config, REID_VECTOR, vectors[i], limit=1)[0].point_id == delta["ids"][i]
                 for i in (0, size - 1))  # fmt: skip
    expected = len(points["ids"]) + size - size // 2
    after = _delta_queries(config, queries, terms, runs)
    out = {"delta_points": size, "delta_write_s": round(written, 3), "visible_s": round(visible, 3),
           "delta_served": bool(served and count == expected)}  # fmt: skip
    for kind in ("image", "text"):
        out[f"p50_ms_{kind}_one_part"], out[f"p95_ms_{kind}_one_part"] = pct(before[kind])
        out[f"p50_ms_{kind}_delta"], out[f"p95_ms_{kind}_delta"] = pct(after[kind])
    print(f"  delta of {size:,} points: written {written:.2f} s, visible to the serving reader {visible:.2f} s after "
          f"the publish began, served {out['delta_served']}; same queries before / after: image p95 "
          f"{out['p95_ms_image_one_part']} / {out['p95_ms_image_delta']} ms, text p95 {out['p95_ms_text_one_part']} / "
          f"{out['p95_ms_text_delta']} ms", flush=True)
    clear_reader_cache()
    restore_base(config, base_version)
    return out


def restore_base(config: IndexConfig, base_version: str) -> None:
    """Point CURRENT back at the base and delete the delta's folders (the kept `--work` version is reused)."""
    published = config.published_path
    (published / "CURRENT").write_text(base_version + "\n")
    for folder in published.iterdir():
        if folder.is_dir() and folder.name.startswith(("v", "p")) and folder.name != base_version:
            shutil.rmtree(folder)


def measure_size(n: int, base: np.ndarray, base_probs: np.ndarray, work: Path, runs: int,
                 extra_candidates: tuple[int, ...] = (), delta: int = 0) -> dict:
    """Publish `n` points, then time image / filtered / text queries against the numpy reference."""
    print(f"--- {n:,} points", flush=True)
    points = synthesise(base, base_probs, n, seed=n)
    ids, vectors, probs, starts = points["ids"], points["vectors"], points["probs"], points["starts"]
    config = IndexConfig(path=work / f"index-{n}", reid_dim=base.shape[1])
    reused = current_version(config) is not None and count_points(config) == n
    if reused:  # `--work` kept this size's version from an earlier run: the same seeded points
        clear_reader_cache()
        print("  reusing the version an earlier run published (no publish figures)", flush=True)
    publish_s, _ = timed(lambda: None if reused else publish(config, points))
    load_s, _ = timed(lambda: count_points(config))
    warm_s, _ = timed(lambda: wait_until_warm(config))  # the reader reads its files in the background
    version = config.published_path / str(current_version(config))
    out: dict = {"points": n, "publish_s": None if reused else round(publish_s, 2),
                 "ingest_points_per_s": None if reused else round(n / publish_s),
                 "load_s": round(load_s, 3), "warm_s": round(warm_s, 2), "disk_mb": round(folder_size_mb(version), 1)}
    if not reused:
        print(f"  published in {publish_s:.1f} s ({n / publish_s:,.0f} points/s)", flush=True)
    print(f"  reader load {load_s:.2f} s, its files in the page cache {warm_s:.1f} s later", flush=True)
    rng = np.random.default_rng(7)
    matrix = vectors[REID_VECTOR]
    cameras = np.array([i % CAMERAS for i in range(n)])
    times: dict[str, list[float]] = {k: [] for k in ("image", "filtered", "text", "numpy_image", "numpy_filtered",
                                                      "numpy_text")}
    recall_image, recall_text = [], []
    recall_more: dict[int, list[float]] = {}
    parsed = [parse_description(text).constraints for text in TEXT_QUERIES]
    day = T0 + 5 * 86400
    for r in range(runs):
        noise = vector_noise(matrix.shape[1])  # as the points' own copies
        query = matrix[rng.integers(n)] + rng.normal(0, noise, matrix.shape[1]).astype(np.float32)
        query /= np.linalg.norm(query)
        # The product's default image search: MIN_IMAGE_CANDIDATES hits from the engine, the best 20 compared.
        seconds, hits = timed(lambda q=query: search_vectors(config, REID_VECTOR, q, limit=IMAGE_CANDIDATES)[:20])
        times["image"].append(seconds)
        seconds, exact = timed(lambda q=query: numpy_image(matrix, q, None))
        times["numpy_image"].append(seconds)
        truth = {ids[i] for i in exact}
        recall_image.append(len(truth & {h.point_id for h in hits}) / 20)
        camera = f"cam-{r % CAMERAS:02d}"
        seconds, _ = timed(lambda q=query, c=camera: search_vectors(
            config, REID_VECTOR, q, limit=20, camera_ids=[c], time_range=(day, day + 86400)))
        times["filtered"].append(seconds)
        mask = (cameras == (r % CAMERAS)) & (starts <= day + 86400) & (starts + 10 >= day)
        seconds, _ = timed(lambda q=query, m=mask: numpy_image(matrix, q, m))
        times["numpy_filtered"].append(seconds)
        constraints = parsed[r % len(parsed)]
        attribute_query = attribute_terms(constraints)

        def engine_text(c=constraints, a=attribute_query, k=TEXT_CANDIDATES):  # noqa: ANN001, ANN202
            columns = payload_columns(config, attribute_query=a, candidates=k)
            has = np.flatnonzero(columns.has_attributes)
            scores = score_constraints(c, columns.attribute_probs[has]).scores
            return [columns.ids[has[i]] for i in np.argsort(-scores, kind="stable")[:20]]

        seconds, text_top = timed(engine_text)
        times["text"].append(seconds)
        seconds, exact_top = timed(lambda c=constraints: exact_text_top(c, probs))
        times["numpy_text"].append(seconds)
        truth_text = {ids[i] for i in exact_top}
        recall_text.append(len(truth_text & set(text_top)) / 20)
        for more in extra_candidates:  # what more candidates would buy (recall) and cost (latency)
            seconds, top = timed(lambda c=constraints, a=attribute_query, k=more: engine_text(c, a, k))
            times.setdefault(f"text_c{more}", []).append(seconds)
            recall_more.setdefault(more, []).append(len(truth_text & set(top)) / 20)
    for name, samples in times.items():
        out[f"p50_ms_{name}"], out[f"p95_ms_{name}"] = pct(samples)
    out["recall_at_20_image"] = round(float(np.mean(recall_image)), 4)
    out["recall_at_20_text"] = round(float(np.mean(recall_text)), 4)
    for more, samples in recall_more.items():
        out[f"recall_at_20_text_c{more}"] = round(float(np.mean(samples)), 4)
    out["rss_mb_reader"] = reader_rss(config)
    print("  " + ", ".join(f"{k} {v}" for k, v in out.items() if k.startswith(("p95", "recall", "rss"))), flush=True)
    if delta:
        out.update(measure_delta(config, points, delta, runs))
    clear_reader_cache()
    return out


READER = """
import sys, numpy as np
sys.path.insert(0, sys.argv[2])
from storage.index import IndexConfig, search_vectors
config = IndexConfig(path=sys.argv[1], reid_dim=int(sys.argv[3]))
rng = np.random.default_rng(0)
for _ in range(20):
    search_vectors(config, "reid", rng.standard_normal(int(sys.argv[3])), limit=20)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the (big) parent process across fork + exec.
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) / 1024)
"""


def reader_rss(config: IndexConfig) -> float:
    """Peak RSS (MB) of a fresh reader process that loads the version and answers 20 queries."""
    result = subprocess.run([sys.executable, "-c", READER, str(config.path), str(REPO), str(config.reid_dim)],
                            capture_output=True, text=True, timeout=900, check=True)
    return round(float(result.stdout.strip().splitlines()[-1]), 1)


def api_latency(n: int, base: np.ndarray, base_probs: np.ndarray, data: Path, work: Path, runs: int) -> dict:
    """Text and image queries over HTTP against an index of `n` synthetic points, models loaded."""
    import httpx

    from api.app import create_app
    from api.server import BackgroundServer
    from benchmarks.api import TEXT_QUERY, query_crop, write_config
    from flows.process import run_process
    from search import SearchEngine
    from smarttrace.config import ApiConfig, load_config

    config_path = write_config(data, work / "api")
    run_process(config_path)  # the real short run: thumbnails, videos and the model folders the API needs
    engine = SearchEngine(load_config(config_path))
    publish(engine.index, synthesise(base, base_probs, n, seed=1))
    engine.warm_up()
    image = query_crop(data)
    times: dict[str, list[float]] = {"text": [], "image": []}
    with BackgroundServer(create_app(engine, ApiConfig(rate_per_minute=0))) as server, httpx.Client(
        base_url=server.url, timeout=120
    ) as client:
        calls = {
            "text": lambda: client.post("/search", data={"text": TEXT_QUERY, "limit": "10"}).raise_for_status(),
            "image": lambda: client.post("/search", files={"image": ("q.png", image, "image/png")},
                                         data={"limit": "10"}).raise_for_status(),
        }
        for call in calls.values():
            call()  # warm: the version's load
        for _ in range(runs):
            for name, call in calls.items():
                times[name].append(timed(call)[0])
    out = {"api_points": engine.count()}
    for name, samples in times.items():
        out[f"p50_ms_api_{name}"], out[f"p95_ms_api_{name}"] = pct(samples)
    print(f"--- API at {n:,} points: " + ", ".join(f"{k} {v}" for k, v in out.items()), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--base", choices=("peta", "tracklets"), default="peta",
                        help="real rows the points are made from: PETA crops (default) or a run's tracklets")
    parser.add_argument("--tracklets", type=Path, default=DEFAULT_TRACKLETS)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--api-size", type=int, default=100_000, help="points behind the API test (0: skip)")
    parser.add_argument("--more-text-candidates", default="",
                        help=f"also time and score text search with these candidate counts, e.g. 1000,2000 "
                        f"(the product: {TEXT_CANDIDATES})")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the versions in this folder, and reuse one of the same size a run left there "
                        "(query figures only: publish_s is null then); default: a temp folder, deleted")
    parser.add_argument("--delta", type=int, default=2000,
                        help="points of an upload published as a delta part on each size, timed until the serving "
                        "reader answers from it (half re-uploads, half new; 0: skip)")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_VERBOSE", "False")
    if args.base == "peta":
        base, base_probs = load_peta_base(args.data.resolve() / "PETA")
    else:
        base, base_probs = load_real(args.tracklets)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    result: dict = {"cpus": os.cpu_count() or 0, "base": args.base, "real_rows": len(base), "dim": int(base.shape[1])}
    with tempfile.TemporaryDirectory(prefix="smarttrace-scale-") as tmp:
        work = Path(tmp) if args.work is None else args.work.resolve()
        for n in sizes:
            more = tuple(int(v) for v in args.more_text_candidates.split(",") if v.strip())
            figures = measure_size(n, base, base_probs, work, args.runs, more, args.delta)
            tag = f"{n // 1000}k" if n < 1_000_000 else f"{n // 1_000_000}m"
            result.update({f"{key}_{tag}": value for key, value in figures.items() if key != "points"})
        if args.api_size:
            result.update(api_latency(args.api_size, base, base_probs, args.data.resolve(), work, args.runs))
    # The `_1m` keys are null unless 1M points were run: never a smaller size's figure under a 1M name.
    big = "1m" if any(s >= 1_000_000 for s in sizes) else "not-run"
    summary = {
        "p95_ms_image_1m": result.get(f"p95_ms_image_{big}"), "p95_ms_text_1m": result.get(f"p95_ms_text_{big}"),
        "p95_ms_filtered_1m": result.get(f"p95_ms_filtered_{big}"), "p95_ms_api_100k": result.get("p95_ms_api_text"),
        "p95_ms_api_image_100k": result.get("p95_ms_api_image"),
        "ingest_points_per_s": result.get(f"ingest_points_per_s_{big}"), "publish_s_1m": result.get(f"publish_s_{big}"),
        "load_s_1m": result.get(f"load_s_{big}"), "rss_mb_1m": result.get(f"rss_mb_reader_{big}"),
        "visible_s_1m": result.get(f"visible_s_{big}"),
        "ratio_vs_numpy_100k": (round(result["p95_ms_numpy_image_100k"] / max(result["p95_ms_image_100k"], 1e-6), 2)
                                if "p95_ms_image_100k" in result else None),
        "recall_at_20_image": result.get(f"recall_at_20_image_{big}"),
        "recall_at_20_text": result.get(f"recall_at_20_text_{big}"), "sizes_run": sorted(sizes),
        "peak_rss_mb_benchmark": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }  # fmt: skip
    print(json.dumps({**summary, **result}))


if __name__ == "__main__":
    main()
