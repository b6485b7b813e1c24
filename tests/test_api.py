"""The HTTP API served by uvicorn on 127.0.0.1, driven by a real HTTP client, over the real index.

The index is the one `tests/test_search.py` builds with the real pipeline on short PETS09 and
TUD-Campus clips (`build_search_run`, shared and cached); the app is `api.app.create_app` on that
run's engine, served by a real uvicorn server in a thread (`api.server.BackgroundServer`) on a
free loopback port. Nothing of our stack is mocked. Results through HTTP are compared with the
same query through the library.
"""

from __future__ import annotations

import http.client
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import cv2
import httpx
import numpy as np
import psutil
import pytest
from test_search import _png_header, build_search_run, person_crop, write_search_config

from api.app import TOKEN_ENV, create_app
from api.server import BackgroundServer
from search import SearchEngine, load_engine
from smarttrace.config import ApiConfig

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def api_config(prefect_harness) -> Path:
    return build_search_run()


@pytest.fixture(scope="module")
def engine(api_config) -> SearchEngine:
    engine = load_engine(api_config)
    engine.warm_up()  # model loading stays out of the requests' time and the load test
    return engine


@pytest.fixture(scope="module")
def server(engine) -> Iterator[BackgroundServer]:
    """No token, default body limit (10 MB), no rate limit (the load test sends 100 requests)."""
    with BackgroundServer(create_app(engine, ApiConfig(rate_per_minute=0))) as running:
        yield running


@pytest.fixture(scope="module")
def client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        yield http


def _png(image) -> bytes:  # noqa: ANN001 - a BGR array
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return encoded.tobytes()


def _assert_error(response: httpx.Response, *statuses: int) -> str:
    """A JSON error with one of the statuses and a message; never a traceback."""
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"], body
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body["error"]


def test_health_reports_the_index_version_points_and_models(client, engine):
    response = client.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok"
    assert health["points"] == engine.count() > 0
    assert health["index_version"] == engine.index_version() and health["index_version"].startswith("v")
    assert health["models_loaded"]["reid"] is True and health["models_loaded"]["detector_sizes"] == [640, 1280]
    assert client.get("/docs").status_code == 200 and "/search" in client.get("/openapi.json").json()["paths"]


def test_text_search_returns_explained_persons_like_the_library(client, engine):
    response = client.post("/search", data={"text": "black top and blue jeans", "limit": "5"})
    assert response.status_code == 200, response.text
    found = response.json()
    expected = engine.search_text("black top and blue jeans", limit=5)
    assert [p["global_id"] for p in found["persons"]] == [r.global_id for r in expected] != []
    assert found["notes"] == expected.notes
    for person, result in zip(found["persons"], expected, strict=True):
        assert person["score"] == pytest.approx(result.score, abs=1e-4) and 0 < person["score"] <= 1
        assert person["explanation"] == result.explanation and "upper black" in person["explanation"]
        assert all(t["clip_url"].endswith("/clip") and "video_path" not in t for t in person["tracklets"])
    thumbnail = found["persons"][0]["thumbnail_url"]
    assert thumbnail.startswith("/thumbnails/")
    image = client.get(thumbnail)
    assert image.status_code == 200 and image.headers["content-type"].startswith("image/")
    assert cv2.imdecode(np.frombuffer(image.content, np.uint8), cv2.IMREAD_COLOR) is not None


def test_camera_filter_and_time_range_reach_the_engine(client):
    campus = client.post("/search", data={"text": "black top", "cameras": "campus", "limit": "20"}).json()
    assert campus["persons"] and all(p["cameras"] == ["campus"] for p in campus["persons"])
    late = client.post("/search", data={"text": "black top", "start": "2009-03-01T09:00:10", "limit": "50"}).json()
    assert late["persons"]
    assert all(datetime.fromisoformat(t["end_time"]) >= datetime(2009, 3, 1, 9, 0, 10, tzinfo=UTC)
               for p in late["persons"] for t in p["tracklets"])
    error = _assert_error(client.post("/search", data={"text": "black top", "start": "2009-03-01T10:00:00",
                                                       "end": "2009-03-01T09:00:00"}), 400)
    assert "starts after it ends" in error


def test_image_search_with_a_real_crop_returns_its_person_first(client, engine, api_config):
    crop, _tracklet, global_id = person_crop(api_config, engine)
    response = client.post("/search", files={"image": ("query.png", _png(crop), "image/png")}, data={"limit": "3"})
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["persons"][0]["global_id"] == global_id, found["persons"]
    assert found["persons"][0]["explanation"].startswith("appearance ")
    assert any("crop" in note or "detected" in note for note in found["notes"])
    assert [p["global_id"] for p in found["persons"]] == [r.global_id for r in engine.search_image(crop, limit=3)]


def test_person_timeline_lists_every_tracklet_across_cameras(client, engine):
    found = client.post("/search", data={"text": "black top and blue jeans", "limit": "1"}).json()
    global_id = found["persons"][0]["global_id"]
    timeline = client.get(f"/persons/{global_id}").json()
    expected = engine.person_timeline(global_id)
    assert timeline["global_id"] == global_id
    assert [(t["camera_id"], t["tracklet_id"]) for t in timeline["tracklets"]] == [
        (t.camera_id, t.tracklet_id) for t in expected
    ]
    assert timeline["cameras"] == sorted({t.camera_id for t in expected})
    assert [t["start_time"] for t in timeline["tracklets"]] == sorted(t["start_time"] for t in timeline["tracklets"])


def test_clip_endpoint_serves_a_playable_h264_mp4(client, tmp_path):
    import av

    found = client.post("/search", data={"text": "black top", "cameras": "campus", "limit": "1"}).json()
    tracklet = found["persons"][0]["tracklets"][0]
    response = client.get(tracklet["clip_url"])
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "video/mp4"
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(response.content)
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = sum(1 for _ in container.decode(stream))
    assert frames == tracklet["end_frame"] - tracklet["start_frame"] + 1
    assert _assert_error(client.get(f"/tracklets/{tracklet['camera_id']}/987654/clip"), 404)
    _assert_error(client.get("/tracklets/..%2Fetc/1/clip"), 404, 422)


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_bad_uploads_get_the_right_status_and_a_json_message(client, engine):
    before = _files(engine.run_dir)
    not_image = client.post("/search", files={"image": ("notes.txt", b"just some text, not a photo", "text/plain")})
    assert "not an image" in _assert_error(not_image, 415)
    huge = client.post("/search", files={"image": ("huge.png", _png_header(20000, 20000), "image/png")})
    assert "megapixels" in _assert_error(huge, 413)  # refused from its header: 1.2 GB never allocated
    corrupt = client.post("/search", files={"image": ("bad.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)})
    _assert_error(corrupt, 400)
    assert "give an image" in _assert_error(client.post("/search", data={}), 400)
    assert "give an image" in _assert_error(client.post("/search", data={"text": "   "}), 400)
    _assert_error(client.post("/search", data={"text": "black top", "limit": "0"}), 422)
    _assert_error(client.post("/search", data={"text": "x" * 501}), 422)
    assert "not understood" in _assert_error(client.post("/search", data={"text": "someone walking fast"}), 400)
    assert client.get("/health").status_code == 200
    assert _files(engine.run_dir) == before  # nothing written for a refused query


def test_bodies_over_the_limit_are_refused_and_the_server_keeps_serving(client):
    big = b"\xff\xd8\xff" + os.urandom(50 * 2**20)  # the 50 MB upload, declared by Content-Length
    error = _assert_error(client.post("/search", files={"image": ("big.jpg", big, "image/jpeg")}), 413)
    assert "10 MB" in error

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        yield b"--x\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n\r\n\xff\xd8\xff"
        for _ in range(12):
            yield b"\0" * 2**20

    streamed = client.post("/search", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
    _assert_error(streamed, 413)
    assert client.get("/health").status_code == 200
    assert client.post("/search", data={"text": "black top", "limit": "1"}).status_code == 200


def test_unknown_person_and_bad_ids_are_404_or_422(client):
    assert "no person with global id" in _assert_error(client.get("/persons/987654"), 404)
    _assert_error(client.get("/persons/-1"), 400)
    _assert_error(client.get("/persons/not-a-number"), 422)
    _assert_error(client.get("/no-such-endpoint"), 404)


@pytest.mark.parametrize(
    "path",
    ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/etc/passwd", "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
     "pets/../../config.yaml", "..%5C..%5Cetc%5Cpasswd", "%2Fetc%2Fpasswd", "pets%00.jpg"],
)
def test_thumbnail_paths_cannot_leave_the_thumbnail_folder(server, path):
    """Sent raw (http.client does not normalise `..` away as httpx would), encoded and not."""
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
    try:
        connection.request("GET", f"/thumbnails/{path}")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status in (400, 404), (response.status, body[:200])
    assert b"root:" not in body and b"cameras" not in body and body.startswith(b'{"error":')


def test_thumbnail_symlink_out_of_the_folder_is_not_served(client, engine, tmp_path):
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"\xff\xd8\xff secret")
    link = engine.layout.thumbnails() / "escape-test.jpg"
    link.unlink(missing_ok=True)
    link.symlink_to(outside)
    try:
        response = client.get("/thumbnails/escape-test.jpg")
        _assert_error(response, 404)
        assert b"secret" not in response.content
    finally:
        link.unlink()


def test_token_protects_everything_but_health(engine, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    app = create_app(engine, ApiConfig(rate_per_minute=0))
    with BackgroundServer(app) as running, httpx.Client(base_url=running.url, timeout=60) as http:
        assert http.get("/health").status_code == 200
        for request in (lambda h: http.post("/search", data={"text": "black top"}, headers=h),
                        lambda h: http.get("/persons/1", headers=h), lambda h: http.get("/docs", headers=h)):
            assert "bearer token" in _assert_error(request({}), 401)
            _assert_error(request({"Authorization": "Bearer wrong-token-0123456789ab"}), 401)
            _assert_error(request({"Authorization": TOKEN}), 401)  # no "Bearer " scheme
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        ok = http.post("/search", data={"text": "black top", "limit": "1"}, headers=bearer)
        assert ok.status_code == 200 and ok.json()["persons"]
        upload = http.post("/search", files={"image": ("q.jpg", b"\xff\xd8\xff" + b"\0" * 2**20)})
        _assert_error(upload, 401)  # refused before the body is read, and the client still gets the answer


def test_rate_limit_answers_429_per_client(engine):
    app = create_app(engine, ApiConfig(rate_per_minute=3))
    with BackgroundServer(app) as running, httpx.Client(base_url=running.url, timeout=60) as http:
        statuses = [http.get("/persons/987654").status_code for _ in range(3)]
        assert statuses == [404, 404, 404]
        limited = http.get("/persons/987654")
        assert "rate limit" in _assert_error(limited, 429) and int(limited.headers["retry-after"]) >= 1
        assert http.get("/health").status_code == 200  # monitoring is never rate limited


def test_before_the_first_index_health_and_search_say_so_with_503(tmp_path):
    engine = load_engine(write_search_config(tmp_path, run_dir=tmp_path / "empty-run"))
    with BackgroundServer(create_app(engine)) as running, httpx.Client(base_url=running.url, timeout=60) as http:
        health = http.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "no index" and health.json()["points"] == 0
        assert "smarttrace process" in _assert_error(http.post("/search", data={"text": "black top"}), 503)
    assert not (tmp_path / "empty-run" / "qdrant").exists()  # a reader never creates an index


def test_unexpected_errors_are_a_short_json_500_and_the_server_keeps_serving(engine):
    app = create_app(engine, ApiConfig(rate_per_minute=0))

    def broken() -> None:
        raise RuntimeError("secret internal detail")

    app.add_api_route("/broken", broken)
    with BackgroundServer(app) as running, httpx.Client(base_url=running.url, timeout=60) as http:
        message = _assert_error(http.get("/broken"), 500)
        assert "secret" not in message and "server log" in message
        assert http.get("/health").status_code == 200


def test_concurrent_clients_all_get_answers(client, engine, api_config):
    """4 clients x 25 requests (text, image, timeline, health) on loopback: every one answered 200."""
    crop, _tracklet, global_id = person_crop(api_config, engine)
    image = _png(crop)

    def one_client(worker: int) -> list[int]:
        statuses = []
        with httpx.Client(base_url=client.base_url, timeout=120) as http:
            for i in range(25):
                kind = (worker + i) % 4
                if kind == 0:
                    response = http.post("/search", data={"text": "black top and blue jeans", "limit": "5"})
                elif kind == 1:
                    response = http.post("/search", files={"image": ("q.png", io.BytesIO(image), "image/png")})
                elif kind == 2:
                    response = http.get(f"/persons/{global_id}")
                else:
                    response = http.get("/health")
                statuses.append(response.status_code)
        return statuses

    with ThreadPoolExecutor(4) as pool:
        statuses = [status for batch in pool.map(one_client, range(4)) for status in batch]
    assert len(statuses) == 100 and statuses.count(200) == 100, sorted(set(statuses))


def test_cli_api_command_serves_on_loopback_by_default(api_config):
    """`smarttrace api CONFIG --port P`: the real command in a subprocess, bound to 127.0.0.1 only."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "smarttrace.cli", "api", str(api_config), "--port", str(port), "--no-warm-up"]
    process = subprocess.Popen(command, cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "smarttrace api did not start within 60 s"
                time.sleep(0.2)
        assert health.status_code == 200 and health.json()["points"] > 0
        connections = [c for c in psutil.Process(process.pid).net_connections() if c.status == "LISTEN"]
        assert connections and all(c.laddr.ip == "127.0.0.1" for c in connections)
    finally:
        process.terminate()
        process.wait(timeout=30)
