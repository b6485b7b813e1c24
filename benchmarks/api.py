"""API benchmark: a text and an image query end to end through the HTTP API vs the same query in the library.

    python benchmarks/api.py [--data DIR] [--work DIR] [--runs N]     # DIR defaults to ../shared/data

1. The real pipeline (`run_process`) indexes short real clips: PETS09-S2L1 (first 120 frames, 7 fps)
   and TUD-Campus (first 40 frames), two cameras, embedded index (cached in --work between runs),
   no attribute model (text search by the colour rules, as in the tests).
2. The app (`api.app.create_app`) is served by uvicorn on 127.0.0.1 in a thread of this process
   (`api.server.BackgroundServer`); models are loaded before timing (`SearchEngine.warm_up`).
3. Each of `--runs` rounds times, in alternating order, the same query four ways: text through the
   API (httpx POST /search, multipart form, JSON parsed), text through the library
   (`SearchEngine.search_text`), image through the API (a PNG upload of a ground-truth crop of
   PETS09 frame 60) and image through the library (`SearchEngine.search_image` on the same PNG
   bytes). p50 / p95 per way; `ratio_*` = API p50 / library p50 (what HTTP, form parsing and JSON
   add on top of the search itself). The two sides run in the same process on the same engine.
Ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from api.app import create_app  # noqa: E402
from api.server import BackgroundServer  # noqa: E402
from search import SearchEngine  # noqa: E402
from smarttrace.config import ApiConfig, load_config  # noqa: E402

TEXT_QUERY = "black top and blue jeans"
QUERY_FRAME = 60  # PETS09 frame whose largest ground-truth box is the image query
PETS_FRAMES = 120
CAMPUS_FRAMES = 40


def write_config(data: Path, work: Path) -> Path:
    """The two-camera short-clip config (the same clips the API tests index)."""
    work.mkdir(parents=True, exist_ok=True)
    config = {
        "cameras": [
            {"id": "pets", "video": str(data / "PETS09-S2L1" / "vtest.avi"), "fps": 7, "max_frames": PETS_FRAMES,
             "start_time": "2009-03-01T09:00:00Z", "location": "campus crossing"},
            {"id": "campus", "video": str(data / "TUD-Campus" / "TUD-Campus.mp4"), "fps": 25,
             "max_frames": CAMPUS_FRAMES, "start_time": "2009-03-01T09:00:10Z", "location": "TUD walkway"},
        ],
        "storage": {"run_dir": str(work / "run")},
        "embed": {"attribute_weights": ""},  # as in the tests: colour rules, whatever the cache holds
    }  # fmt: skip
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def query_crop(data: Path) -> bytes:
    """PNG bytes of the largest ground-truth person box in PETS09 frame QUERY_FRAME (1-based GT frame + 1)."""
    gt = np.loadtxt(data / "PETS09-S2L1" / "gt" / "gt.txt", delimiter=",")
    rows = gt[gt[:, 0] == QUERY_FRAME + 1]
    x, y, w, h = rows[np.argmax(rows[:, 4] * rows[:, 5]), 2:6]
    capture = cv2.VideoCapture(str(data / "PETS09-S2L1" / "vtest.avi"))
    try:
        for _ in range(QUERY_FRAME + 1):
            ok, frame = capture.read()
            if not ok:
                raise SystemExit(f"cannot read frame {QUERY_FRAME} of PETS09-S2L1")
    finally:
        capture.release()
    crop = frame[max(int(y), 0) : int(y + h), max(int(x), 0) : int(x + w)]
    ok, png = cv2.imencode(".png", crop)
    return png.tobytes()


def percentiles(times_s: list[float]) -> tuple[float, float]:
    ms = np.array(times_s) * 1000
    return round(float(np.percentile(ms, 50)), 2), round(float(np.percentile(ms, 95)), 2)


def timed(call) -> float:  # noqa: ANN001 - a zero-argument callable
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench-api")
    parser.add_argument("--runs", type=int, default=40, help="timed rounds (each: 4 queries)")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_VERBOSE", "False")
    from flows.process import run_process

    config_path = write_config(args.data.resolve(), args.work.resolve())
    run_process(config_path)
    engine = SearchEngine(load_config(config_path))
    engine.warm_up()
    image = query_crop(args.data.resolve())
    times: dict[str, list[float]] = {"text_api": [], "text_lib": [], "image_api": [], "image_lib": []}
    with BackgroundServer(create_app(engine, ApiConfig(rate_per_minute=0))) as server, httpx.Client(
        base_url=server.url, timeout=60
    ) as client:

        def text_api() -> None:
            response = client.post("/search", data={"text": TEXT_QUERY, "limit": "10"})
            response.raise_for_status()
            assert response.json()["persons"]

        def image_api() -> None:
            response = client.post("/search", files={"image": ("q.png", image, "image/png")}, data={"limit": "10"})
            response.raise_for_status()
            assert response.json()["persons"]

        ways = {
            "text_api": text_api,
            "text_lib": lambda: engine.search_text(TEXT_QUERY, limit=10),
            "image_api": image_api,
            "image_lib": lambda: engine.search_image(image, limit=10),
        }
        for call in ways.values():  # warm: snapshot load, first-call allocations
            call()
        for round_index in range(args.runs):
            order = list(ways) if round_index % 2 == 0 else list(reversed(ways))
            for name in order:
                times[name].append(timed(ways[name]))
    result: dict[str, float | int | str] = {"points": engine.count(), "runs": args.runs, "cpus": os.cpu_count() or 0}
    for name, samples in times.items():
        result[f"p50_ms_{name}"], result[f"p95_ms_{name}"] = percentiles(samples)
    for kind in ("text", "image"):
        result[f"ratio_{kind}_api_vs_lib_p50"] = round(
            float(result[f"p50_ms_{kind}_api"]) / max(float(result[f"p50_ms_{kind}_lib"]), 1e-6), 3
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
