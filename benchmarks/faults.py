"""Fault benchmark: SIGKILL the `process` flow at points spread over its stages, re-run, compare.

    python benchmarks/faults.py [--data DIR] [--load-seconds 20]

Cases:
- kill@X%: `smarttrace process` is started as its own process group and SIGKILLed X% into an
  uninterrupted run's duration (so the kills land in tracking, embedding, matching and upload).
  After the kill every visible artifact must read back whole (no partial file), then a re-run
  must finish and give exactly the uninterrupted run's rows and global ids, and the index must
  hold exactly one point per tracklet (no duplicates, no orphans). Recovery time = the re-run.
- load: 8 client threads query the index for a bounded time while another process uploads a
  new camera's tracklets; no query may fail and the upload must complete.
Prints a table, then ONE JSON line with cases, recovered, lost_records, duplicate_records, ...
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from storage.artifacts import read_artifact, read_manifest  # noqa: E402
from storage.index import IndexConfig, scroll_all, search_vectors  # noqa: E402
from storage.layout import RunLayout  # noqa: E402

KINDS = {"tracks": "tracks", "tracklets": "tracklets", "persons": "persons"}


def write_config(work: Path, data: Path) -> Path:
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({
        "cameras": [
            {"id": "pets", "video": str(data / "PETS09-S2L1" / "vtest.avi"), "fps": 7, "max_frames": 150},
            {"id": "campus", "video": str(data / "TUD-Campus" / "TUD-Campus.mp4"), "fps": 25},
        ],
        "storage": {"run_dir": str(work / "run")},
        "embed": {"clip_pretrained": ""},
    }))
    return config


def run_cli(config: Path, kill_after_s: float | None = None) -> tuple[int, float]:
    """Run `smarttrace process` in a new process group; SIGKILL it after `kill_after_s`."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "smarttrace.cli", "process", str(config)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=kill_after_s if kill_after_s is not None else 1800)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc.returncode, time.perf_counter() - started


def visible_artifacts_whole(run: Path) -> tuple[bool, int]:
    """Every *.parquet under the run reads back with its manifest; returns (all whole, count)."""
    count = 0
    for path in run.rglob("*.parquet"):
        if "qdrant" in path.parts:
            continue
        count += 1
        kind = path.parent.name if path.parent.name in KINDS else "identities"
        try:
            read_manifest(path)
            read_artifact(path, KINDS.get(kind, kind))
        except Exception:
            return False, count
    return True, count


def snapshot(run: Path) -> dict[str, pd.DataFrame]:
    """The run's result tables, order-normalised, without timestamps of creation."""
    layout = RunLayout(run)
    tables = {}
    for path in sorted(run.rglob("*.parquet")):
        if "qdrant" in path.parts:
            continue
        kind = path.parent.name if path.parent.name in KINDS else "identities"
        frame = read_artifact(path, KINDS.get(kind, kind)).to_pandas()
        tables[str(path.relative_to(run))] = frame.sort_values(list(frame.columns[:3])).reset_index(drop=True)
    points = scroll_all(IndexConfig.for_run_dir(layout.root))
    tables["index"] = pd.DataFrame(
        [(pid, p["camera_id"], p["tracklet_id"], p["global_id"]) for pid, p in points],
        columns=["point_id", "camera_id", "tracklet_id", "global_id"],
    ).sort_values(["camera_id", "tracklet_id"]).reset_index(drop=True)
    return tables


def compare(reference: dict[str, pd.DataFrame], result: dict[str, pd.DataFrame]) -> tuple[int, int, bool]:
    """(lost records, duplicate records, equal) of a recovered run vs the uninterrupted one."""
    lost = duplicates = 0
    for name, expected in reference.items():
        got = result.get(name)
        if got is None:
            lost += len(expected)
            continue
        lost += max(0, len(expected) - len(got))
        duplicates += max(0, len(got) - len(expected))
        if name == "index":
            duplicates += int(got.duplicated(["camera_id", "tracklet_id"]).sum())
    equal = set(reference) == set(result) and all(
        _same(reference[name], result[name]) for name in reference
    )
    return lost, duplicates, equal


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    if a.shape != b.shape:
        return False
    for column in a.columns:
        left, right = a[column].tolist(), b[column].tolist()
        if any(not _value_equal(x, y) for x, y in zip(left, right, strict=True)):
            return False
    return True


def _as_array(value: object) -> np.ndarray:
    """Nested lists / object arrays (e.g. per-crop embeddings) as one float array."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value.astype(float)
    items = list(value)  # type: ignore[arg-type]
    if items and isinstance(items[0], np.ndarray | list):
        return np.stack([_as_array(item) for item in items])
    return np.asarray(items, float)


def _value_equal(x: object, y: object) -> bool:
    if isinstance(x, np.ndarray | list) or isinstance(y, np.ndarray | list):
        if x is None or y is None:
            return False
        a, b = _as_array(x), _as_array(y)
        return a.shape == b.shape and np.allclose(a, b, atol=1e-5)
    if isinstance(x, float) and isinstance(y, float):
        return (np.isnan(x) and np.isnan(y)) or abs(x - y) <= 1e-6
    return x == y


def load_case(reference_run: Path, seconds: float) -> dict:
    """8 query threads for `seconds` while a subprocess uploads a new camera into the same index."""
    config = IndexConfig.for_run_dir(reference_run)
    paths = sorted((reference_run / "tracklets").glob("*.parquet"))
    tracklets = pd.concat([read_artifact(p, "tracklets").to_pandas() for p in paths])
    vectors = [np.asarray(v, np.float32) for v in tracklets["reid_embedding"] if v is not None]
    latencies: list[float] = []
    failures: list[str] = []
    stop = time.perf_counter() + seconds
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = np.random.default_rng(seed)
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                search_vectors(config, "reid", vectors[int(rng.integers(len(vectors)))], limit=10)
            except Exception as exc:  # any failure is a finding, recorded
                with lock:
                    failures.append(f"{type(exc).__name__}: {exc}")
            with lock:
                latencies.append(time.perf_counter() - started)

    new_camera = tracklets.assign(camera_id="new-camera", tracklet_id=np.arange(len(tracklets), dtype=np.int32))
    staged = reference_run / "new-camera.pkl"
    new_camera.to_pickle(staged)
    code = (f"import pandas as pd; from storage.index import IndexConfig, upload_tracklets; "
            f"upload_tracklets(IndexConfig.for_run_dir({str(reference_run)!r}), pd.read_pickle({str(staged)!r}))")
    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    upload = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    for thread in threads:
        thread.join()
    points = scroll_all(config)
    uploaded = sum(1 for _, p in points if p["camera_id"] == "new-camera")
    return {
        "queries": len(latencies),
        "failed_queries": len(failures),
        "p95_ms": float(np.percentile(latencies, 95) * 1000) if latencies else None,
        "upload_ok": upload.returncode == 0 and uploaded == len(new_camera),
        "upload_error": upload.stderr[-300:] if upload.returncode else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--kills", type=float, nargs="*", default=[0.15, 0.35, 0.55, 0.75, 0.9])
    parser.add_argument("--load-seconds", type=float, default=20.0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        reference_dir = Path(tmp) / "reference"
        reference_dir.mkdir()
        code, uninterrupted = run_cli(write_config(reference_dir, args.data))
        if code != 0:
            raise SystemExit(f"uninterrupted run failed with exit code {code}")
        reference = snapshot(reference_dir / "run")
        print(f"uninterrupted run: {uninterrupted:.1f} s, {sum(len(t) for t in reference.values())} records")
        for fraction in args.kills:
            work = Path(tmp) / f"kill{int(fraction * 100)}"
            work.mkdir()
            config = write_config(work, args.data)
            run_cli(config, kill_after_s=fraction * uninterrupted)
            whole, visible = visible_artifacts_whole(work / "run")
            code, recovery = run_cli(config)
            lost, duplicates, equal = compare(reference, snapshot(work / "run")) if code == 0 else (-1, -1, False)
            rows.append({"case": f"kill@{int(fraction * 100)}%", "visible_whole": whole, "visible": visible,
                         "rerun_ok": code == 0, "equal": equal, "lost": lost, "duplicates": duplicates,
                         "recovery_s": recovery})
            shutil.rmtree(work, ignore_errors=True)
        load = load_case(reference_dir / "run", args.load_seconds)
        rows.append({"case": "load+upload", "visible_whole": True, "visible": 0, "rerun_ok": load["upload_ok"],
                     "equal": load["failed_queries"] == 0, "lost": 0, "duplicates": 0, "recovery_s": 0.0})
    print(f"{'case':<14}{'whole':>7}{'rerun':>7}{'equal':>7}{'lost':>6}{'dup':>5}{'recovery s':>12}")
    for r in rows:
        print(f"{r['case']:<14}{r['visible_whole']!s:>7}{r['rerun_ok']!s:>7}{r['equal']!s:>7}{r['lost']:>6}"
              f"{r['duplicates']:>5}{r['recovery_s']:>12.1f}")
    print(f"load: {load['queries']} queries, {load['failed_queries']} failed, p95 {load['p95_ms']:.1f} ms, "
          f"upload {'completed' if load['upload_ok'] else 'FAILED ' + load['upload_error']}")
    recovered = sum(1 for r in rows if r["visible_whole"] and r["rerun_ok"] and r["equal"])
    print(json.dumps({
        "cases": len(rows),
        "recovered": recovered,
        "lost_records": sum(max(r["lost"], 0) for r in rows),
        "duplicate_records": sum(max(r["duplicates"], 0) for r in rows),
        "max_recovery_s": max(r["recovery_s"] for r in rows),
        "uninterrupted_s": uninterrupted,
        "load_queries": load["queries"],
        "load_failed_queries": load["failed_queries"],
        "load_p95_ms": load["p95_ms"],
        "load_upload_ok": load["upload_ok"],
    }))


if __name__ == "__main__":
    main()
