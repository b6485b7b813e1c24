"""The `process` flow: track each camera -> (later stages) -> artifacts under the run folder.

Reads like the pipeline diagram; the work is in `tasks/`. One camera failing (missing or
corrupt video) does not stop the others: their artifacts are still written, and the flow
ends Failed naming the cameras that failed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prefect import flow, get_run_logger, task

from flows.runners import build_task_runner
from smarttrace.config import CameraConfig, SmartTraceConfig, load_config
from smarttrace.errors import SmartTraceError
from smarttrace.lineage import build_manifest
from storage.artifacts import write_artifact
from storage.layout import RunLayout
from tasks.detect import PersonDetector
from tasks.track_camera import track_camera
from tasks.video import camera_videos


@task(name="track-camera", task_run_name="track-{camera.id}")
def track_camera_task(camera: CameraConfig, config: SmartTraceConfig) -> str:
    """Detect and track one camera; publish its tracks artifact. Returns the artifact path."""
    logging.getLogger("smarttrace").setLevel(logging.INFO)
    detector = PersonDetector(config.detector)
    run = track_camera(camera, config.detector, config.tracker, config.postprocess, detector=detector)
    path = RunLayout(config.storage.run_dir).tracks(camera.id)
    manifest = build_manifest(
        stage="track",
        inputs=camera_videos(camera.video)[: len(run.videos)],
        config_hash=config.section_hash("detector") + config.section_hash("tracker"),
        models=[detector.weights_path],
        camera_id=camera.id,
        frames=run.frames,
        partial=run.partial,
        partial_reason=run.partial_reason,
        seconds=run.seconds,
    )
    write_artifact(run.table, path, "tracks", manifest)
    get_run_logger().info("camera %s: wrote %s (%d rows)", camera.id, path, run.table.num_rows)
    return str(path)


@flow(name="process", log_prints=True)
def process_flow(config_path: str) -> dict[str, str]:
    """Run Stage 1 for every camera in parallel; return camera id -> tracks artifact path.

    Takes the config's path (not the parsed config) so deployments and the Prefect UI can
    schedule it with a plain string parameter.
    """
    logger = get_run_logger()
    config = load_config(config_path)
    futures = {camera.id: track_camera_task.submit(camera, config) for camera in config.cameras}
    artifacts: dict[str, str] = {}
    failures: dict[str, str] = {}
    for camera_id, future in futures.items():
        try:
            artifacts[camera_id] = future.result()
        except SmartTraceError as exc:
            failures[camera_id] = str(exc)
            logger.error("camera %s failed: %s", camera_id, exc)
    if failures:
        details = "; ".join(f"{cid}: {msg}" for cid, msg in failures.items())
        raise SmartTraceError(f"{len(failures)} of {len(futures)} cameras failed: {details}")
    return artifacts


def run_process(config_path: str | Path) -> dict[str, str]:
    """Load a config and run the flow with the task runner it names."""
    config = load_config(config_path)
    runner = build_task_runner(config.flow)
    return process_flow.with_options(task_runner=runner)(str(Path(config_path).resolve()))
