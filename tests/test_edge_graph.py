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
    queries = _clustered(30, seed=1)
    overlap = []
    for query in queries:
        hits = reader.search("reid", query, limit=20)
        rows = [payload["n"] for _id, _score, payload in hits]
        exact = np.argsort(-(vectors @ query))[:20]
        overlap.append(len(set(rows) & set(exact.tolist())) / 20)
        # re-scored on the float vectors: int8 scores would be off by ~1e-2
        np.testing.assert_allclose([score for _i, score, _p in hits], vectors[rows] @ query, atol=2e-5)
    assert np.mean(overlap) >= 0.95


def test_an_exact_query_on_a_graph_version_is_exact(graph_version):
    reader, vectors, _folder = graph_version
    query = _clustered(1, seed=2)[0]
    hits = reader.search("reid", query, limit=25, exact=True)
    assert [payload["n"] for _id, _score, payload in hits] == np.argsort(-(vectors @ query))[:25].tolist()
