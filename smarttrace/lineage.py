"""What goes into an artifact's manifest: code version, input fingerprints, run ids."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from smarttrace import __version__
from smarttrace.assets import REPO_ROOT, sha256_of


def git_state(root: Path) -> dict[str, Any]:
    """The commit checked out at `root` and whether tracked files differ from it.

    The commit alone would let a model trained from uncommitted edits pass for that commit's
    code; `git_dirty` says so (None where there is no git checkout to ask).
    """

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"git_commit": "", "git_dirty": None}
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "", "git_dirty": None}
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"git_commit": head.stdout.strip(), "git_dirty": dirty}


@lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """Package version plus the git commit of the checkout and its dirty flag, when there is one."""
    return {"package": __version__, **git_state(REPO_ROOT)}


@lru_cache(maxsize=256)
def _cached_sha(path: str, size: int, mtime_ns: int) -> str:
    return sha256_of(Path(path))


def file_fingerprint(path: Path) -> dict[str, Any]:
    """Path, size and sha256 of an input file (hash cached by size + mtime within a process)."""
    stat = path.stat()
    return {"path": str(path), "bytes": stat.st_size, "sha256": _cached_sha(str(path), stat.st_size, stat.st_mtime_ns)}


def prefect_run_ids() -> dict[str, str]:
    """Flow run and task run ids when called inside Prefect, else empty strings."""
    try:
        from prefect.context import FlowRunContext, TaskRunContext

        flow_ctx, task_ctx = FlowRunContext.get(), TaskRunContext.get()
        return {
            "flow_run_id": str(flow_ctx.flow_run.id) if flow_ctx and flow_ctx.flow_run else "",
            "task_run_id": str(task_ctx.task_run.id) if task_ctx else "",
        }
    except Exception:  # lineage must never break a stage
        return {"flow_run_id": "", "task_run_id": ""}


def build_manifest(stage: str, inputs: list[Path], config_hash: str, models: list[Path], **extra: Any) -> dict:
    """The lineage record written into an artifact's footer."""
    return {
        "stage": stage,
        "inputs": [file_fingerprint(p) for p in inputs],
        "config_hash": config_hash,
        "models": [file_fingerprint(p) for p in models],
        "code": code_version(),
        "created": datetime.now(UTC).isoformat(),
        **prefect_run_ids(),
        **extra,
    }
