"""What `smarttrace process` prints: progress, user warnings and a summary; everything else to a debug log.

Why: a newcomer's first run printed ~180 lines for a 2-minute job (a SQLAlchemy traceback from the
temporary Prefect server's telemetry heartbeat, ultralytics' export chatter, torch.jit deprecation
warnings, a line per Prefect state change) and never said how far tracking was. Now the console gets
per-camera progress, warnings that concern the user (logger `smarttrace.*`), errors, and a summary;
the full record goes to `<run_dir>/logs/process-<UTC time>.log`. `--verbose` keeps Prefect's console
output and the libraries' own handlers as they were.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path

from smarttrace.errors import SmartTraceError
from smarttrace.progress import PROGRESS_ENV

# Set before Prefect is imported (its settings are read from the environment then). setdefault:
# a user's own choice wins.
ALWAYS_ENV = {
    # The temporary server's telemetry heartbeat raced the flow for SQLite ("database is locked",
    # a 90-line traceback on a successful run); Prefect documents this switch for it.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # Prefect SDK usage telemetry (first_sdk_import, first_flow_run events): same opt-out.
    "DO_NOT_TRACK": "1",
    # Prefect's default (20 s) is too short for a first start (database migrations) on a busy 2-core
    # machine: seen as "Timed out while attempting to connect to ephemeral Prefect API server".
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    PROGRESS_ENV: "1",
}
QUIET_ENV = {
    # The server's own uvicorn / API logs (the temporary server is a child process: env reaches it).
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
}
# Libraries that install their own stdout handler at import (not propagating to the root logger).
CHATTY_LIBRARY_LOGGERS = ("ultralytics", "boxmot")
DEBUG_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"


def prepare_environment(verbose: bool) -> None:
    """Environment for Prefect and the progress reporters; call before importing Prefect."""
    for name, value in {**ALWAYS_ENV, **({} if verbose else QUIET_ENV)}.items():
        os.environ.setdefault(name, value)


class _UserFacing(logging.Filter):
    """Console in quiet mode: our warnings and errors, other libraries' errors; not Prefect's run states.

    Prefect's flow/task run loggers log a failed camera as an ERROR with a traceback; the CLI prints
    the same failure as one line at the end, so the console shows it once.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("smarttrace"):
            return record.levelno >= logging.WARNING
        if record.name.startswith(("prefect", "py.warnings", "docket")):
            return False
        return record.levelno >= logging.ERROR


class _OneLine(logging.Formatter):
    """`smarttrace: warning: message`, never a traceback (that is in the debug log)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"smarttrace: {record.levelname.lower()}: {record.getMessage()}"


def debug_log_path(run_dir: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(run_dir) / "logs" / f"process-{stamp}.log"


def setup_run_logging(run_dir: Path, verbose: bool) -> Path:
    """Debug log in the run folder for everything; in quiet mode, a filtered one-line console.

    Call after Prefect is imported: Prefect installs its console handler on the root logger then.
    Returns the debug log's path.
    """
    path = debug_log_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter(DEBUG_LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(file_handler)
    root.setLevel(min(root.level, logging.INFO) if root.level else logging.INFO)
    logging.captureWarnings(True)  # torch.jit / library warnings become `py.warnings` records
    if verbose:
        return path
    warnings.simplefilter("default")  # each distinct warning once, in the debug log
    for handler in list(root.handlers):
        if handler is not file_handler and isinstance(handler, logging.StreamHandler):
            root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.addFilter(_UserFacing())
    console.setFormatter(_OneLine())
    root.addHandler(console)
    _route_library_loggers()
    return path


def _route_library_loggers() -> None:
    """ultralytics (export chatter) and boxmot (tracker banner) print through their own handlers:
    import them now, drop those handlers and let their records reach the root (debug log)."""
    import boxmot.utils  # noqa: F401 - configures the `boxmot` logger at import
    import ultralytics.utils  # noqa: F401 - configures the `ultralytics` logger at import

    for name in CHATTY_LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        for handler in list(library.handlers):
            library.removeHandler(handler)
        library.propagate = True


def summary_lines(config_path: Path, run_dir: Path, artifacts: dict[str, str], seconds: float,
                  debug_log: Path) -> list[str]:
    """The end of a good run: cameras, tracklets, people, time, where results are, the next command."""
    from smarttrace.progress import format_duration
    from storage.artifacts import read_artifact

    cameras = sorted(name.split("/", 1)[1] for name in artifacts if name.startswith("tracks/"))
    tracklets = people = 0
    if "identities" in artifacts:
        identities = read_artifact(Path(artifacts["identities"]), "identities").to_pandas()
        tracklets, people = len(identities), int(identities["global_id"].nunique())
    try:
        shown = config_path.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = config_path
    return [
        f"done in {format_duration(seconds)}: {len(cameras)} camera{'s' if len(cameras) != 1 else ''} "
        f"({', '.join(cameras)}), {tracklets} tracklets, {people} people",
        f"results: {run_dir} (tracks/, tracklets/, persons/, identities.parquet, qdrant/)",
        f"debug log: {debug_log}",
        f"next: smarttrace dashboard --config {shown}",
    ]


# Not under `smarttrace`: that logger also sends to the Prefect API, which needs a flow run (none here).
_cli_log = logging.getLogger("cli.process")


def run_process_command(config_path: str, from_stage: str | None, verbose: bool) -> int:
    """`smarttrace process`: quiet environment and logging, the flow, a summary on stdout."""
    import time

    from smarttrace.config import load_config

    config = load_config(config_path)  # a bad config: one clear line before anything starts
    prepare_environment(verbose)
    started = time.perf_counter()
    from flows.process import run_process  # imports Prefect: after the environment is set

    debug_log = setup_run_logging(Path(config.storage.run_dir), verbose)
    try:
        artifacts = run_process(config_path, from_stage=from_stage)
    except SmartTraceError as exc:
        _cli_log.debug("run failed", exc_info=True)
        raise SmartTraceError(f"{exc} (details: {debug_log})") from None
    for name, path in artifacts.items():
        _cli_log.info("artifact %s: %s", name, path)
    for line in summary_lines(Path(config_path), Path(config.storage.run_dir), artifacts,
                              time.perf_counter() - started, debug_log):
        print(line, flush=True)
    return 0


__all__ = ["prepare_environment", "run_process_command", "setup_run_logging", "summary_lines"]
