"""Fault benchmark: real faults against the real `smarttrace process`, then a re-run, compared.

    python benchmarks/faults.py [--data DIR] [--load-seconds 20]

Every case ends with a re-run that must finish and give exactly an uninterrupted run's rows and
global ids, with one index point per tracklet (no duplicates, no orphans). A case counts only
when its fault really happened ("exercised"); one that did not (the run finished before the kill,
no tmpfs could be mounted) is listed as not exercised with the reason and left out of the totals.

- kill@X%: SIGKILL of the process group X% into an uninterrupted run's duration. Exercised only if
  the CLI's return code is -SIGKILL; a run that finished first is retried with an earlier kill.
- kill@upload / kill@publish: a run whose only stale stage is the index upload, SIGKILLed as soon
  as the embedded index's live/ folder is written / a published version is being copied.
- concurrent: two runs started at once on one run folder: one must refuse with the run-folder
  lock's message (folder + PID), the other must finish.
- corrupt-tracklets: a tracklets artifact truncated to half its size, then a re-run: it must be
  named as unreadable, rebuilt from the tracks artifact, and the result equal.
- diskfull@upsert / diskfull@publish: the index folder on a small tmpfs (root only) that fills
  during the points' upsert / during the copy into a published version; the failed run must leave
  no partial index visible; the tmpfs is then enlarged (space freed) and the re-run must recover.
- growing-video: a watched `per_file` folder whose video is copied in chunks while runs are started
  on it (what a schedule does); after the copy ends, one more run must equal a run on the whole file.
- load (reported on its own, not a recovery case): 8 query threads for a bounded time while another
  process uploads a new camera's tracklets; no query may fail and the upload must complete.
Prints a table, then ONE JSON line.
"""


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
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fault_harness import (  # noqa: E402
    CLI_TIMEOUT_S,
    KILLED,
    REPO,
    Case,
    compare,
    copy_run,
    index_whole,
    kill_when,
    recover,
    run_cli,
    snapshot,
    start_cli,
    visible_artifacts_whole,
    write_config,
)

from smarttrace.config import EmbedConfig  # noqa: E402
from storage.artifacts import read_artifact  # noqa: E402
from storage.index import IndexConfig, scroll_all, search_vectors  # noqa: E402
from storage.index_settings import reid_dim  # noqa: E402

__all__ = ["compare", "kill_when", "run_cli", "snapshot", "visible_artifacts_whole"]  # used by tests/


def kill_case(fraction: float, work: Path, data: Path, uninterrupted: float,
              reference: dict[str, pd.DataFrame], tries: int = 3) -> Case:
    """SIGKILL at `fraction` of the uninterrupted duration; an earlier kill point while the run beats it."""
    case = Case(f"kill@{int(fraction * 100)}%")
    for attempt in range(tries):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        config = write_config(work, data)
        at = fraction * uninterrupted * 0.7**attempt
        code, _ = run_cli(config, kill_after_s=at)
        if code == KILLED:
            case.exercised, case.note = True, f"killed at {at:.1f} s (try {attempt + 1})"
            return recover(case, config, reference)
        case.note = f"run ended with code {code} before the kill at {at:.1f} s"
    return case


def index_kill_case(name: str, work: Path, reference_dir: Path, data: Path,
                    reference: dict[str, pd.DataFrame], marker: Callable[[Path], bool], tries: int = 3) -> Case:
    """Only the upload is stale (index + marker removed); SIGKILL as soon as `marker(index folder)`."""
    case = Case(name)
    for attempt in range(tries):
        shutil.rmtree(work, ignore_errors=True)
        config = copy_run(reference_dir, work, data, drop=("qdrant", "index_upload.json"))
        index = work / "run" / "qdrant"
        code, seen = kill_when(config, lambda index=index: marker(index), poll_s=0.001)
        if code == KILLED and seen:
            case.exercised, case.note = True, f"killed in the act (try {attempt + 1})"
            return recover(case, config, reference)
        case.note = f"not caught in the act: exit code {code}"
    return case


def _live_written(index: Path) -> bool:
    return (index / "live" / "collection").is_dir()


def _publishing(index: Path) -> bool:
    try:
        return any(entry.name.startswith(".tmp-") for entry in os.scandir(index / "published"))
    except FileNotFoundError:
        return False


def concurrent_case(work: Path, reference_dir: Path, data: Path, reference: dict[str, pd.DataFrame]) -> Case:
    """Two runs started at once on one run folder (embed onward stale): one refuses, one finishes."""
    case = Case("concurrent")
    config = copy_run(reference_dir, work, data, drop=("tracklets", "persons", "identities.parquet", "qdrant",
                                                        "index_upload.json"))
    logs = [work / "a.log", work / "b.log"]
    procs = [start_cli(config, log) for log in logs]
    codes = [proc.wait(timeout=CLI_TIMEOUT_S) for proc in procs]
    texts = [log.read_text() for log in logs]
    refused = [i for i, text in enumerate(texts) if "is being processed by another smarttrace process (PID" in text]
    finished = [i for i, code in enumerate(codes) if code == 0]
    case.exercised = len(refused) == 1 and len(finished) == 1 and codes[refused[0]] == 2
    case.note = f"exit codes {codes}, refused with the lock message: {len(refused)}"
    if case.exercised:
        case.visible_whole = visible_artifacts_whole(work / "run")[0] and index_whole(work / "run")
        case.rerun_ok = True  # the run that held the lock is the recovery: compare its result, no re-run
        case.lost, case.duplicates, case.equal = compare(reference, snapshot(work / "run"))
    return case


def corrupt_case(work: Path, reference_dir: Path, data: Path, reference: dict[str, pd.DataFrame]) -> Case:
    """Truncate a finished run's tracklets artifact (middle of the chain), then re-run."""
    case = Case("corrupt-tracklets", exercised=True)
    config = copy_run(reference_dir, work, data, drop=())
    target = work / "run" / "tracklets" / "pets.parquet"
    with open(target, "r+b") as handle:
        handle.truncate(target.stat().st_size // 2)
    tracks = work / "run" / "tracks" / "pets.parquet"
    tracks_before = tracks.stat().st_mtime_ns
    log = work / "rerun.log"
    recover(case, config, reference, log)
    # the truncated file is the fault itself: what must be whole is the run after the re-run
    case.visible_whole = visible_artifacts_whole(work / "run")[0] and index_whole(work / "run")
    text = log.read_text()
    named = str(target) in text and "recomputing" in text
    case.note = "named as unreadable and rebuilt" if named else "NOT named in the re-run's log"
    # rebuilt from the tracks artifact unless the code changed since the reference run (then from the video)
    case.note += ", tracks reused" if tracks.stat().st_mtime_ns == tracks_before else ", tracks recomputed"
    case.equal = case.equal and named
    return case


def _mount_tmpfs(folder: Path, size_kb: int, remount: bool = False) -> str:
    options = f"size={size_kb}k" + (",remount" if remount else "")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                            capture_output=True, text=True)
    return "" if result.returncode == 0 else (result.stderr.strip() or f"mount exit {result.returncode}")


COPY_ROOM_KB = 1024 * 1024  # tmpfs size while the reference index is copied in (pages are only used as written)


def _used_kb(mount: Path) -> int:
    """kB in use on the file system mounted at `mount` (what a tmpfs `size=` limit counts)."""
    stats = os.statvfs(mount)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize // 1024


def _tree_kb(folder: Path) -> int:
    """Space `folder` takes on disk (allocated blocks), in kB."""
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file()) // 1024 + 4


def _copy_index(source: Path, target: Path) -> None:
    """live/ and only the CURRENT published version: the next publish then needs room for one more copy."""
    shutil.copytree(source / "live", target / "live", ignore=shutil.ignore_patterns(".lock"))
    current = (source / "published" / "CURRENT").read_text().strip()
    shutil.copytree(source / "published" / current, target / "published" / current,
                    ignore=shutil.ignore_patterns(".lock"))
    shutil.copy2(source / "published" / "CURRENT", target / "published" / "CURRENT")


def _reader_outcome(run: Path, expected_points: int) -> str:
    """What a reader process starting now gets: "whole" (the previous version, every point), or the error.

    On a full disk a NEW reader cannot make its private copy of the version and answers with a clear
    disk-full error (an already running reader keeps the version it has): not a partial index."""
    from storage.index import clear_reader_cache

    clear_reader_cache()
    try:
        points = len(scroll_all(IndexConfig.for_run_dir(run)))
    except Exception as exc:  # noqa: BLE001 - reported in the case's note
        return f"{type(exc).__name__}: ...{str(exc)[-150:]}"
    return "whole" if points == expected_points else f"{points} of {expected_points} points"


def diskfull_case(name: str, work: Path, reference_dir: Path, data: Path, reference: dict[str, pd.DataFrame],
                  keep_index: bool) -> Case:
    """The index folder on a tmpfs that fills during the upload: a fresh index, or a re-upload over a copy
    of the reference's index (whose readers must keep seeing the previous version whole)."""
    case = Case(name)
    config = copy_run(reference_dir, work, data, drop=("qdrant", "index_upload.json"))
    index = work / "run" / "qdrant"
    index.mkdir()
    source = reference_dir / "run" / "qdrant"
    live_kb = _tree_kb(source / "live")
    # fresh: room for a third of live/. Re-upload: the copy is made on a roomy tmpfs first and what it
    # really takes there is measured (an engine version holds preallocated files, far bigger than
    # live/); then the tmpfs shrinks to that plus live/'s size again and half of another version.
    size_kb, copied_kb = live_kb // 3, 0
    error = _mount_tmpfs(index, COPY_ROOM_KB if keep_index else size_kb)
    if error:
        case.note = f"not exercised: cannot mount a tmpfs ({error})"
        return case
    try:
        if keep_index:
            _copy_index(source, index)
            # a version as the engine writes it (sparse preallocated files): its blocks in the source index
            version_kb = _tree_kb(source / "published" / (source / "published" / "CURRENT").read_text().strip())
            copied_kb = _used_kb(index)  # the copy fills the holes: what it takes on the tmpfs, measured
            size_kb = copied_kb + live_kb + version_kb // 2
            error = _mount_tmpfs(index, size_kb, remount=True)
            if error:
                case.note = f"not exercised: cannot shrink the tmpfs to {size_kb} kB ({error})"
                return case
        log = work / "failed.log"
        code, _ = run_cli(config, log=log)
        text = log.read_text()
        named = "smarttrace: error: " in text and "disk full" in text
        where = ("upsert" if "database or disk is full" in text else "publish" if "No space left" in text
                 else "engine's write (killed by SIGBUS: a memory-mapped page on the full disk)"
                 if code == -signal.SIGBUS else "?")  # fmt: skip
        case.exercised = code != 0 and (named or where != "?")
        case.note = (f"{size_kb} kB tmpfs{' (copied index ' + str(copied_kb) + ' kB)' if keep_index else ''}: "
                     f"exit code {code}, full during the {where}, "
                     f"{'one clear error line' if named else 'NO clear error line'}")
        if not case.exercised:
            return case
        whole = index_whole(work / "run")
        if keep_index:
            case.note += f"; a new reader on the full disk: {_reader_outcome(work / 'run', len(reference['index']))}"
        error = _mount_tmpfs(index, _used_kb(index) + 256 * 1024, remount=True)  # the operator frees space
        if error:
            case.note += f"; cannot enlarge the tmpfs: {error}"
            return case
        if keep_index:  # with room again, before any re-run: readers get the previous index, whole
            whole = index_whole(work / "run") and _reader_outcome(work / "run", len(reference["index"])) == "whole"
        recover(case, config, reference)
        case.visible_whole = case.visible_whole and whole and named
    finally:
        subprocess.run(["umount", "-l", str(index)], capture_output=True)
    return case


def _write_clip(source: Path, target: Path, frames: int) -> None:
    """The first `frames` frames of `source` as an MJPG AVI (a short video a camera drops into its folder)."""
    import cv2

    capture = cv2.VideoCapture(str(source))
    writer = None
    for _ in range(frames):
        ok, frame = capture.read()
        if not ok:
            break
        if writer is None:
            height, width = frame.shape[:2]
            writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), 7.0, (width, height))
        writer.write(frame)
    capture.release()
    if writer is None:
        raise SystemExit(f"cannot read {source}")
    writer.release()


def _watch_config(work: Path, folder: Path, run_name: str) -> Path:
    config = work / f"{run_name}.yaml"
    config.write_text(yaml.safe_dump({
        "cameras": [{"id": "lobby", "video": str(folder), "fps": 7, "per_file": True}],
        "storage": {"run_dir": str(work / run_name)},
        "embed": {"clip_pretrained": ""},
    }))
    return config


def growing_case(work: Path, data: Path, chunks: int = 6, pause_s: float = 2.0, frames: int = 60) -> Case:
    """Copy a clip into a watched folder in chunks while runs start on it; then one run after the copy ends."""
    case = Case("growing-video")
    work.mkdir(parents=True)
    clip = work / "clip.avi"
    _write_clip(data / "PETS09-S2L1" / "vtest.avi", clip, frames)
    incoming = work / "incoming"
    incoming.mkdir(parents=True)
    target = incoming / "clip.avi"
    payload = clip.read_bytes()

    def copy_in_chunks() -> None:
        step = len(payload) // chunks + 1
        with open(target, "wb") as handle:
            for start in range(0, len(payload), step):
                handle.write(payload[start:start + step])
                handle.flush()
                time.sleep(pause_s)

    copier = threading.Thread(target=copy_in_chunks)
    config = _watch_config(work, incoming, "run")
    copier.start()
    while not target.exists() or target.stat().st_size == 0:
        time.sleep(0.01)
    partial_runs = 0
    runs: list[int] = []
    while copier.is_alive():
        partial_runs += target.stat().st_size < len(payload)
        code, _ = run_cli(config)
        runs.append(code)
    copier.join()
    case.exercised = partial_runs > 0
    case.note = f"{partial_runs} runs started on a partial file, exit codes {runs}"
    # Reference: a fresh run folder on the same, now whole file (same path and mtime: a segment starts at its mtime).
    code, _ = run_cli(_watch_config(work, incoming, "whole"))
    if code != 0:
        case.note += f"; reference run on the whole file failed ({code})"
        return case
    return recover(case, config, snapshot(work / "whole"))


def load_case(reference_run: Path, seconds: float) -> dict:
    """8 query threads for `seconds` while a subprocess uploads a new camera into the same index."""
    config = IndexConfig.for_run_dir(reference_run, reid_dim=reid_dim(EmbedConfig()))
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
    staged = reference_run.parent / "new-camera.pkl"
    new_camera.to_pickle(staged)
    code = (f"import pandas as pd; from storage.index import IndexConfig, upload_tracklets; "
            f"upload_tracklets(IndexConfig.for_run_dir({str(reference_run)!r}, reid_dim={config.reid_dim}), "
            f"pd.read_pickle({str(staged)!r}))")
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
        "first_failure": failures[0] if failures else "",
    }


def _print_table(cases: list[Case]) -> None:
    print(f"{'case':<18}{'exer.':>6}{'whole':>7}{'rerun':>7}{'equal':>7}{'lost':>6}{'dup':>5}{'recov. s':>10}  note")
    for c in cases:
        print(f"{c.case:<18}{c.exercised!s:>6}{c.visible_whole!s:>7}{c.rerun_ok!s:>7}{c.equal!s:>7}"
              f"{c.lost if c.lost is not None else '-':>6}{c.duplicates if c.duplicates is not None else '-':>5}"
              f"{c.recovery_s:>10.1f}  {c.note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--kills", type=float, nargs="*", default=[0.15, 0.35, 0.55, 0.75, 0.9])
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument("--cases-json", type=Path, help="also write every case's row to this file")
    parser.add_argument("--only", nargs="*", help="run only these steps (e.g. fullpublish); default: all")
    args = parser.parse_args()
    cases: list[Case] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        reference_dir = root / "reference"
        reference_dir.mkdir()
        code, uninterrupted = run_cli(write_config(reference_dir, args.data))
        if code != 0:
            raise SystemExit(f"uninterrupted run failed with exit code {code}")
        reference = snapshot(reference_dir / "run")
        print(f"uninterrupted run: {uninterrupted:.1f} s, {sum(len(t) for t in reference.values())} records",
              flush=True)
        steps: list[tuple[str, Callable[[Path], Case]]] = [
            *[(f"kill{int(f * 100)}", lambda w, f=f: kill_case(f, w, args.data, uninterrupted, reference))
              for f in args.kills],
            ("killupload", lambda w: index_kill_case("kill@upload", w, reference_dir, args.data, reference,
                                                     _live_written)),
            ("killpublish", lambda w: index_kill_case("kill@publish", w, reference_dir, args.data, reference,
                                                      _publishing)),
            ("concurrent", lambda w: concurrent_case(w, reference_dir, args.data, reference)),
            ("corrupt", lambda w: corrupt_case(w, reference_dir, args.data, reference)),
            ("fullupsert", lambda w: diskfull_case("diskfull@upsert", w, reference_dir, args.data, reference,
                                                   keep_index=False)),
            ("fullpublish", lambda w: diskfull_case("diskfull@publish", w, reference_dir, args.data, reference,
                                                    keep_index=True)),
            ("growing", lambda w: growing_case(w, args.data)),
        ]
        if args.only:
            unknown = sorted(set(args.only) - {name for name, _ in steps})
            if unknown:
                raise SystemExit(f"--only: unknown step(s) {', '.join(unknown)}; steps: "
                                 + ", ".join(name for name, _ in steps))
            steps = [(name, step) for name, step in steps if name in args.only]
        for folder, step in steps:
            try:
                case = step(root / folder)
            except Exception as exc:  # a broken harness step is listed as not exercised, never as recovered
                case = Case(folder, note=f"harness error: {type(exc).__name__}: {exc}"[:300])
            print(f"{case.case}: exercised={case.exercised} recovered={case.recovered} ({case.note})", flush=True)
            cases.append(case)
            shutil.rmtree(root / folder, ignore_errors=True)
        load = load_case(reference_dir / "run", args.load_seconds)
    _print_table(cases)
    print(f"load: {load['queries']} queries, {load['failed_queries']} failed {load['first_failure']}, "
          f"p95 {load['p95_ms'] or float('nan'):.1f} ms, "
          f"upload {'completed' if load['upload_ok'] else 'FAILED ' + load['upload_error']}")
    if args.cases_json:
        args.cases_json.write_text(json.dumps([asdict(c) | {"recovered": c.recovered} for c in cases], indent=1))
    exercised = [c for c in cases if c.exercised]
    print(json.dumps({
        "cases": len(cases),
        "exercised": len(exercised),
        "not_exercised": [f"{c.case}: {c.note}" for c in cases if not c.exercised],
        "recovered": sum(c.recovered for c in exercised),
        "failed": [c.case for c in exercised if not c.recovered],
        # a case whose comparison could not count (None) is failed above and adds nothing here
        "lost_records": sum(c.lost or 0 for c in exercised),
        "duplicate_records": sum(c.duplicates or 0 for c in exercised),
        "max_recovery_s": max((c.recovery_s for c in exercised), default=0.0),
        "uninterrupted_s": uninterrupted,
        "total_s": time.perf_counter() - started,
        "load_queries": load["queries"],
        "load_failed_queries": load["failed_queries"],
        "load_p95_ms": load["p95_ms"],
        "load_upload_ok": load["upload_ok"],
    }))


if __name__ == "__main__":
    main()
