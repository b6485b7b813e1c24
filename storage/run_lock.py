"""One `process` run per run folder at a time: an exclusive lock on `<run_dir>/.lock` for the whole run.

Why: two runs on one folder (a scheduled run overlapping a manual one, two terminals) would race on
the same artifacts and on the embedded index. Each write is atomic, but interleaved stages would mix
two runs' inputs and both would upload. The second run refuses at once with a message naming the
folder and the holder's PID, rather than waiting: a scheduler simply tries again next interval.

`fcntl.flock` is released by the kernel when its holder exits, SIGKILL included, so a killed run
never leaves a stale lock behind (the file and its old PID stay; only the flock matters).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from smarttrace.errors import SmartTraceError

LOCK_NAME = ".lock"


class RunFolderBusyError(SmartTraceError):
    """Another process is running the pipeline on the same run folder."""


def _holder_pid(fd: int) -> str:
    """The PID the holder wrote into the lock file ("unknown" if it has not written it yet)."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode(errors="replace").strip()
    return text if text.isdigit() else "unknown"


@contextlib.contextmanager
def run_folder_lock(run_dir: Path) -> Iterator[Path]:
    """Hold the run folder's lock for the `with` body; raise RunFolderBusyError if another process holds it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderBusyError(
                f"run folder {run_dir} is being processed by another smarttrace process (PID {_holder_pid(fd)}, "
                f"lock {path}): wait for it to finish, or set another storage.run_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock
