"""Engine versions big enough for a graph: HNSW over int8 copies, re-scored on the float vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import storage.edge_index as edge
from storage.edge_index import EdgeReader, write_version

DIM = 512  # 6,000 x 512 floats = 12 MB: above the engine's 10 MB indexing threshold, so a graph is built


def _clustered(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors in 40 tight clusters (like many crops of few people), float32."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, DIM))
    points = centres[rng.integers(0, 40, n)] + 0.35 * rng.normal(size=(n, DIM))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def graph_version(tmp_path_factory):
    """6,000 points written with the graph threshold lowered to 500 (the product's is 20k)."""
    vectors = _clustered(6000)
    folder = tmp_path_factory.mktemp("edge") / "v1"
    patch = pytest.MonkeyPatch()
    patch.setattr(edge, "HNSW_MIN_POINTS", 500)
    try:
        ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(len(vectors))]
        write_version(folder, {"reid": DIM}, ids, {"reid": vectors}, [{"n": i} for i in range(len(vectors))])
    finally:
        patch.undo()
    reader = EdgeReader(folder, "v1")
    yield reader, vectors, folder
    reader.close()


def test_a_graph_version_keeps_int8_copies_of_its_vectors(graph_version):
    _reader, _vectors, folder = graph_version
    segments = [json.loads(p.read_text())["config"]["vector_data"]["reid"] for p in folder.rglob("segment.json")]
    graphs = [s for s in segments if s["index"]["type"] == "hnsw"]
    assert graphs, segments
    assert all(s["quantization_config"] == {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}}
               for s in graphs)  # fmt: skip


def test_a_small_version_has_no_int8_copies(tmp_path):
    vectors = _clustered(100)
    ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(len(vectors))]
    write_version(tmp_path / "v", {"reid": DIM}, ids, {"reid": vectors}, [{} for _ in ids])
    config = json.loads((tmp_path / "v" / "edge_config.json").read_text())
    assert config["vectors"]["reid"].get("quantization_config") is None


def test_graph_search_scores_are_the_float_cosines_and_recall_holds(graph_version):
    reader, vectors, _folder = graph_version
    queries = _clustered(100, seed=1)
    overlap = []
    for query in queries:
        hits = reader.search("reid", query, limit=20)
        rows = [payload["n"] for _id, _score, payload in hits]
        exact = np.argsort(-(vectors @ query))[:20]
        overlap.append(len(set(rows) & set(exact.tolist())) / 20)
        # re-scored on the float vectors: int8 scores would be off by ~1e-2
        np.testing.assert_allclose([score for _i, score, _p in hits], vectors[rows] @ query, atol=2e-5)
    # The engine builds the graph on several threads, so it differs run to run: over 30 queries recall
    # ranged 0.94-1.0 (a 0.95 bar failed 1 run in 4). A graph walked without re-scoring, or a broken
    # one, sits far lower; the product's 0.95 target is measured by benchmarks/search_scale.py.
    assert np.mean(overlap) >= 0.9


def test_an_exact_query_on_a_graph_version_is_exact(graph_version):
    reader, vectors, _folder = graph_version
    query = _clustered(1, seed=2)[0]
    hits = reader.search("reid", query, limit=25, exact=True)
    assert [payload["n"] for _id, _score, payload in hits] == np.argsort(-(vectors @ query))[:25].tolist()


def _open_spy(monkeypatch) -> list[str]:
    """Record the files the readers' warm-up threads open (storage.edge_index's own `open` calls)."""
    import builtins
    import threading

    opened: list[str] = []

    def spy(path, mode="r", *args, **kwargs):  # noqa: ANN001, ANN202
        if threading.current_thread().name.startswith("warm-"):
            opened.append(str(path))
        return builtins.open(path, mode, *args, **kwargs)

    monkeypatch.setattr(edge, "open", spy, raising=False)
    return opened


def test_a_reader_warms_the_page_cache_with_every_file_of_its_version(graph_version, monkeypatch):
    """Queries of a big version wait on the disk for pages not in memory (1M points: image p50 30 ms
    cold vs 7.8 ms warm), so a new reader reads its copy's files once in the background."""
    _, vectors, folder = graph_version
    opened = _open_spy(monkeypatch)
    reader = EdgeReader(folder, "v1")
    try:
        assert reader.warmed.wait(60)
        files = {str(f) for f in reader._private.rglob("*") if f.is_file()}
        assert files and files <= set(opened)
        assert reader.search("reid", vectors[0], 5)[0][1] == pytest.approx(1.0, abs=1e-3)  # still serves
    finally:
        reader.close()


def test_a_reader_does_not_warm_a_version_bigger_than_the_memory_available(graph_version, monkeypatch):
    """Reading more than memory holds would only evict other processes' pages: skipped, still serving."""
    _, vectors, folder = graph_version
    opened = _open_spy(monkeypatch)
    monkeypatch.setattr(edge, "_available_memory", lambda: 1024)
    reader = EdgeReader(folder, "v1")
    try:
        assert reader.warmed.wait(60) and opened == []
        assert len(reader.search("reid", vectors[0], 5)) == 5
    finally:
        reader.close()
