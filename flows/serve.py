"""`smarttrace serve`: one long-running process that serves the deployments with their schedules.

Equivalent to `prefect deploy --all` + a worker, without a work pool: `prefect.serve` polls the
Prefect server (PREFECT_API_URL, e.g. from `prefect server start`) for scheduled and UI-triggered
runs and executes them in this process.
"""

from __future__ import annotations

from pathlib import Path

from prefect import serve

from flows.evaluate import evaluate_tracking_flow
from flows.process import process_flow


def serve_deployments(config_path: str | Path, interval_s: int) -> None:
    """Serve `process` on an interval (a watched camera folder) and `evaluate-tracking` on demand."""
    config_path = str(Path(config_path).resolve())
    serve(
        process_flow.to_deployment(
            name="process-watch",
            parameters={"config_path": config_path},
            interval=interval_s,
            description="Process the configured cameras; new files in per_file folders are picked up, "
            "finished ones are skipped.",
        ),
        evaluate_tracking_flow.to_deployment(name="evaluate-tracking"),
    )
