"""What every fault case of `benchmarks/faults.py` shares: the CLI started as a killable process
group, the kill that must really happen, and the comparison of a recovered run with an uninterrupted one.

A kill counts only when the killed CLI's return code is -SIGKILL (`run_cli`, `kill_when` return it):
a run that finished before the kill is not a recovery. A re-run that fails is compared anyway, so its
missing records are counted as lost instead of being reported as "0 lost".
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from smarttrace.errors import SmartTraceError  # noqa: E402
from storage.artifacts import read_artifact, read_manifest  # noqa: E402
from storage.index import IndexConfig, scroll_all  # noqa: E402
from storage.layout import RunLayout  # noqa: E402

KINDS = {"tracks": "tracks", "tracklets": "tracklets", "persons": "persons"}
KILLED = -signal.SIGKILL
CLI_TIMEOUT_S = 900


def write_config(work: Path, data: Path, pets_frames: int = 150) -> Path:
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({
        "cameras": [
            {"id": "pets", "video": str(data / "PETS09-S2L1" / "vtest.avi"), "fps": 7, "max_frames": pets_frames},
            {"id": "campus", "video": str(data / "TUD-Campus" / "TUD-Campus.mp4"), "fps": 25},
        ],
        "storage": {"run_dir": str(work / "run")},
        "embed": {"clip_pretrained": ""},
    }))
    return config


def start_cli(config: Path, log: Path | None = None) -> subprocess.Popen:
    """`smarttrace process CONFIG` as its own process group (so a kill reaches its Prefect server too)."""
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - the child owns it until it exits
    try:
        return subprocess.Popen([sys.executable, "-m", "smarttrace.cli", "process", str(config)], cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        if log:
            out.close()


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_cli(config: Path, kill_after_s: float | None = None, log: Path | None = None) -> tuple[int, float]:
    """Run the CLI; SIGKILL its group after `kill_after_s`. Returns (return code, seconds).

    The return code is -SIGKILL only when the kill really ended the run; a run that finished first
    keeps its own code, so the caller can tell a kill from a finished run.
    """
    started = time.perf_counter()
    proc = start_cli(config, log)
    try:
        proc.wait(timeout=kill_after_s if kill_after_s is not None else CLI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill(proc)
    return proc.returncode, time.perf_counter() - started


def kill_when(config: Path, ready: Callable[[], bool], timeout_s: float = CLI_TIMEOUT_S,
              poll_s: float = 0.05) -> tuple[int, bool]:
    """Start the CLI and SIGKILL its group as soon as `ready()`; returns (return code, ready was seen)."""
    proc = start_cli(config)
    deadline = time.monotonic() + timeout_s
    seen = False
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            seen = True
            break
        time.sleep(poll_s)
    _kill(proc)
    return proc.returncode, seen


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
    """The run's result tables, order-normalised. Unreadable artifacts and a missing index are left out
    (so `compare` counts their records as lost instead of the snapshot failing)."""
    tables = {}
    for path in sorted(run.rglob("*.parquet")):
        if "qdrant" in path.parts:
            continue
        kind = path.parent.name if path.parent.name in KINDS else "identities"
        try:
            frame = read_artifact(path, KINDS.get(kind, kind)).to_pandas()
        except SmartTraceError:
            continue
        tables[str(path.relative_to(run))] = frame.sort_values(list(frame.columns[:3])).reset_index(drop=True)
    try:
        points = scroll_all(IndexConfig.for_run_dir(RunLayout(run).root))
    except SmartTraceError:
        return tables
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


@dataclass
class Case:
    """One fault case. Totals count exercised cases only; a failed re-run is a failed case."""

    case: str
    exercised: bool = False
    note: str = ""  # what happened (or why the fault could not be produced)
    visible_whole: bool = False
    rerun_ok: bool = False
    equal: bool = False
    lost: int | None = None
    duplicates: int | None = None
    recovery_s: float = 0.0

    @property
    def recovered(self) -> bool:
        return (self.exercised and self.visible_whole and self.rerun_ok and self.equal
                and self.lost == 0 and self.duplicates == 0)


def recover(case: Case, config: Path, reference: dict[str, pd.DataFrame], log: Path | None = None) -> Case:
    """Check nothing partial is visible, re-run, and compare with the uninterrupted run (even if the re-run failed)."""
    run = Path(yaml.safe_load(config.read_text())["storage"]["run_dir"])
    whole, visible = visible_artifacts_whole(run)
    case.visible_whole = whole and index_whole(run)
    case.note += f"; {visible} artifacts visible before the re-run"
    code, case.recovery_s = run_cli(config, log=log)
    case.rerun_ok = code == 0
    case.lost, case.duplicates, case.equal = compare(reference, snapshot(run))
    if not case.rerun_ok:
        case.note += f"; re-run exit code {code}"
    return case


def index_whole(run: Path) -> bool:
    """The published index is absent or CURRENT names a complete version that a reader can load."""
    published = IndexConfig.for_run_dir(run).published_path
    if not (published / "CURRENT").exists():
        return True
    try:
        scroll_all(IndexConfig.for_run_dir(run))
    except Exception:
        return False
    return True


def copy_run(reference_dir: Path, work: Path, data: Path, drop: tuple[str, ...]) -> Path:
    """A copy of the finished reference run without `drop` (paths relative to the run folder)."""
    work.mkdir(parents=True)
    shutil.copytree(reference_dir / "run", work / "run", ignore=shutil.ignore_patterns(".lock"))
    for name in drop:
        target = work / "run" / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    return write_config(work, data)
