"""Smoke test of benchmarks/search_scale.py: its per-size measurement on ~2k real-vector points."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from test_search import build_search_run

REPO = Path(__file__).resolve().parent.parent


def _benchmark() -> ModuleType:
    """Import benchmarks/search_scale.py as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("search_scale", REPO / "benchmarks" / "search_scale.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["search_scale"] = module
    spec.loader.exec_module(module)
    return module


def test_search_scale_quick(tmp_path: Path, prefect_harness) -> None:  # noqa: ANN001 - pytest fixture
    """2k points: the figures exist and the engine's image top-20 agrees with exact numpy search."""
    bench = _benchmark()
    build_search_run()  # the real tracklets the benchmark samples from (cached by the search tests)
    base, base_probs = bench.load_real(bench.DEFAULT_TRACKLETS)
    out = bench.measure_size(2000, base, base_probs, tmp_path, runs=5, delta=200)
    for key in ("publish_s", "ingest_points_per_s", "load_s", "disk_mb", "p95_ms_image", "p95_ms_text",
                "p95_ms_filtered", "p95_ms_numpy_image", "recall_at_20_image", "recall_at_20_text", "rss_mb_reader"):
        assert key in out, key
    assert out["recall_at_20_image"] >= 0.9
    assert out["recall_at_20_text"] >= 0.8  # the candidate stage must keep most of the exact text top-20
    assert out["publish_s"] > 0 and out["disk_mb"] > 0
    # an upload of 200 points as a delta part: the serving reader finds a new and a re-uploaded point by their
    # own vectors and counts 2000 + 100 new points (no re-uploaded one twice)
    assert out["delta_served"] is True and 0 < out["delta_write_s"] <= out["visible_s"]
    # afterwards the base is current again and the delta's folders are gone (a kept --work version is reused)
    config = bench.IndexConfig(path=tmp_path / "index-2000", reid_dim=base.shape[1])
    assert bench.count_points(config) == 2000
    assert not [f for f in config.published_path.iterdir() if f.name.startswith("p")]
