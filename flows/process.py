"""The `process` flow: track each camera -> embed -> match in camera -> match across cameras.

Reads like the pipeline diagram; the work is in `tasks/`. Every stage writes a Parquet
artifact whose manifest carries a cache key (inputs' sha256 + config section + code), so a
re-run skips every stage whose artifact is up to date and redoes only failed or changed ones.
One camera failing (missing or corrupt video) does not stop the others: their artifacts are
still written, and the flow ends Failed naming the cameras that failed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from prefect import flow, get_run_logger, task

from flows.runners import build_task_runner
from smarttrace.config import CameraConfig, SmartTraceConfig, expand_cameras, load_config
from smarttrace.errors import AssetError, SmartTraceError
from smarttrace.lineage import build_manifest
from smarttrace.progress import report
from storage.artifacts import read_artifact, write_artifact
from storage.freshness import is_fresh, stage_key
from storage.layout import STAGES, RunLayout
from storage.run_lock import run_folder_lock
from storage.schemas import ATTRIBUTE_VOCABULARY

log = logging.getLogger("smarttrace.flow")


def _forced(stage: str, from_stage: str | None) -> bool:
    """True when `--from` names this stage or an earlier one: recompute even if up to date."""
    return from_stage is not None and STAGES.index(stage) >= STAGES.index(from_stage)


def _skip(path: Path, key: str, stage: str, from_stage: str | None, what: str) -> bool:
    """Log and return True when the artifact is up to date and the stage is not forced."""
    if _forced(stage, from_stage) or not is_fresh(path, key):
        return False
    get_run_logger().info("%s up to date, skipped (%s)", what, path)
    report(f"{what}: up to date, skipped")
    return True


def _publish(key: str, path: Path, rows: int, summary: dict) -> None:
    """A Prefect table artifact per camera and stage, so the UI's Artifacts pages list each version."""
    from prefect.artifacts import create_table_artifact

    safe_key = "".join(ch if ch.isalnum() else "-" for ch in key.lower()).strip("-")
    create_table_artifact(
        key=safe_key,
        table=[{"artifact": str(path), "rows": rows, **summary}],
        description=f"SmartTrace {key}: `{path}` ({rows} rows). Lineage: `smarttrace lineage {path}`",
    )


def _section(config: SmartTraceConfig, *names: str) -> dict:
    return {name: getattr(config, name).model_dump(mode="json") for name in names}


def _camera_section(camera: CameraConfig) -> dict:
    return camera.model_dump(mode="json", exclude={"location"})


@task(name="track-camera", task_run_name="track-{camera.id}")
def track_camera_task(camera: CameraConfig, config: SmartTraceConfig, from_stage: str | None = None) -> str:
    """Detect and track one camera; publish its tracks artifact. Returns the artifact path."""
    from smarttrace.assets import resolve
    from tasks.detect import PersonDetector
    from tasks.track_camera import track_camera
    from tasks.video import existing_videos

    path = RunLayout(config.storage.run_dir).tracks(camera.id)
    models = [resolve(config.detector.weights)]
    if config.postprocess.link:
        models.append(resolve(config.postprocess.link_reid_weights))
    videos = existing_videos(camera.video, camera.id)
    key = stage_key("track", videos + models,
                    {**_section(config, "detector", "tracker", "postprocess"), "camera": _camera_section(camera)})
    if _skip(path, key, "track", from_stage, f"camera {camera.id}: tracks"):
        return str(path)
    detector = PersonDetector(config.detector, calibration_videos=videos)  # INT8 calibrates on this camera
    run = track_camera(camera, config.detector, config.tracker, config.postprocess, detector=detector)
    manifest = build_manifest(
        stage="track", inputs=run.videos, config_hash=key, models=models, cache_key=key, camera_id=camera.id,
        frames=run.frames, partial=run.partial, partial_reason=run.partial_reason, seconds=run.seconds,
        detector_precision=detector.precision, detected_frames=run.detected_frames, wall_s=round(run.wall_s, 3),
    )
    write_artifact(run.table, path, "tracks", manifest)
    get_run_logger().info("camera %s: wrote %s (%d rows)", camera.id, path, run.table.num_rows)
    _publish(f"tracks-{camera.id}", path, run.table.num_rows, {"frames": run.frames, "partial": run.partial})
    return str(path)


_attribute_warned: set[str] = set()


def _attribute_model(name: str, batch_size: int, backend: str = "auto") -> Any:
    """The attribute model named by `embed.attribute_weights`, resolved like the other models.

    None when attributes are off ("") or the trained file is absent: the tracklets then carry no
    attribute probabilities and text search uses the clothing colour rules (one log line per process
    says so). Not cached across calls: a model trained while a served flow runs is found next run.
    """
    if not name:
        return None
    from tasks.attribute_model import AttributeModel

    try:
        return AttributeModel.load(name, batch_size=batch_size, backend=backend)
    except AssetError as exc:  # raised by the registry when no trained file is found
        if name not in _attribute_warned:
            _attribute_warned.add(name)
            log.warning("attribute model not available, text search falls back to the colour rules: %s", exc)
        return None


@task(name="embed-tracklets", task_run_name="embed-{camera.id}")
def embed_tracklets_task(
    camera: CameraConfig, config: SmartTraceConfig, tracks_path: str, from_stage: str | None = None
) -> str:
    """Crops, OSNet + CLIP embeddings, colours and thumbnails of one camera's tracklets."""
    from smarttrace.assets import resolve
    from tasks.embed_clip import load_clip
    from tasks.embed_reid import ReidEmbedder
    from tasks.embed_tracklets import embed_camera

    layout = RunLayout(config.storage.run_dir)
    path = layout.tracklets(camera.id)
    models = [resolve(name) for name in config.embed.reid_weights]
    embed = config.embed
    attributes = _attribute_model(embed.attribute_weights, embed.attribute_batch, embed.reid_backend)
    if attributes is not None:  # its sha256 enters the key: retraining the model redoes this stage
        models.append(Path(attributes.weights_path))
    key = stage_key("embed", [Path(tracks_path), *models], _section(config, "embed"))
    if _skip(path, key, "embed", from_stage, f"camera {camera.id}: tracklets"):
        return str(path)
    tracks = read_artifact(Path(tracks_path), "tracks").to_pandas()
    clip = load_clip(config.embed.clip_model, config.embed.clip_pretrained)
    reid = ReidEmbedder(config.embed.reid_weights, config.embed.reid_batch, backend=config.embed.reid_backend,
                        flip=config.embed.reid_flip)
    run = embed_camera(camera, tracks, config.embed, layout.root, reid, clip, attributes)
    manifest = build_manifest(
        stage="embed", inputs=[Path(tracks_path)], config_hash=key, models=models, cache_key=key,
        camera_id=camera.id, crops=run.crops, seconds=run.seconds, clip=None if clip is None else clip.pretrained,
        attributes=None if attributes is None else attributes.sha256,
        attribute_names=None if attributes is None else list(ATTRIBUTE_VOCABULARY),
    )
    write_artifact(run.table, path, "tracklets", manifest)
    _publish(f"tracklets-{camera.id}", path, run.table.num_rows, {"crops": run.crops, "clip": clip is not None})
    get_run_logger().info(
        "camera %s: wrote %s (%d tracklets, %d crops)", camera.id, path, run.table.num_rows, run.crops
    )
    report(f"camera {camera.id}, embed: done, {run.table.num_rows} tracklets, {run.crops} crops")
    return str(path)


@task(name="match-in-camera", task_run_name="match-{camera.id}")
def match_in_camera_task(
    camera: CameraConfig, config: SmartTraceConfig, tracklets_path: str, from_stage: str | None = None
) -> str:
    """Join tracklets of one person inside one camera."""
    from tasks.match_identities import match_in_camera

    path = RunLayout(config.storage.run_dir).persons(camera.id)
    key = stage_key("match_in_camera", [Path(tracklets_path)], _section(config, "match"))
    if _skip(path, key, "match_in_camera", from_stage, f"camera {camera.id}: persons"):
        return str(path)
    tracklets = read_artifact(Path(tracklets_path), "tracklets").to_pandas()
    persons = pd.DataFrame(
        {"camera_id": camera.id, "tracklet_id": tracklets["tracklet_id"], "person_id": match_in_camera(tracklets,
                                                                                                      config.match)}
    )
    manifest = build_manifest(stage="match_in_camera", inputs=[Path(tracklets_path)], config_hash=key, models=[],
                              cache_key=key, camera_id=camera.id)
    write_artifact(pa.Table.from_pandas(persons, preserve_index=False), path, "persons", manifest)
    _publish(f"persons-{camera.id}", path, len(persons), {"persons": int(persons["person_id"].nunique())})
    get_run_logger().info(
        "camera %s: %d tracklets -> %d persons", camera.id, len(persons), persons["person_id"].nunique()
    )
    report(f"camera {camera.id}, match in camera: {len(persons)} tracklets -> {persons['person_id'].nunique()} people")
    return str(path)


@task(name="match-cross-camera")
def match_cross_camera_task(
    config: SmartTraceConfig, tracklets_paths: list[str], persons_paths: list[str], from_stage: str | None = None
) -> str:
    """One global id per person over all cameras; publishes the identities artifact."""
    from tasks.match_identities import match_cross_camera

    path = RunLayout(config.storage.run_dir).identities()
    inputs = [Path(p) for p in [*tracklets_paths, *persons_paths]]
    key = stage_key("match_cross_camera", inputs, _section(config, "match"))
    if _skip(path, key, "match_cross_camera", from_stage, "identities"):
        return str(path)
    tracklets = pd.concat([read_artifact(Path(p), "tracklets").to_pandas() for p in tracklets_paths])
    persons = pd.concat([read_artifact(Path(p), "persons").to_pandas() for p in persons_paths])
    joined = tracklets.merge(persons, on=["camera_id", "tracklet_id"], how="inner").reset_index(drop=True)
    joined["global_id"] = match_cross_camera(joined, config.match)
    columns = ["camera_id", "tracklet_id", "person_id", "global_id", "start_timestamp", "end_timestamp"]
    table = pa.Table.from_pandas(joined[columns], preserve_index=False)
    manifest = build_manifest(stage="match_cross_camera", inputs=inputs, config_hash=key, models=[], cache_key=key)
    write_artifact(table, path, "identities", manifest)
    _publish("identities", path, table.num_rows, {"global_ids": int(joined["global_id"].nunique())})
    get_run_logger().info(
        "%d tracklets in %d cameras -> %d global identities",
        len(joined), joined["camera_id"].nunique(), joined["global_id"].nunique(),
    )
    report(f"match across cameras: {len(joined)} tracklets -> {joined['global_id'].nunique()} global identities")
    return str(path)


@task(name="upload-index")
def upload_index_task(
    config: SmartTraceConfig, tracklets_paths: list[str], identities_path: str, from_stage: str | None = None
) -> int:
    """Upsert one Qdrant point per tracklet (deterministic ids) and drop points of vanished tracklets.

    Skipped when the index already holds exactly this upload (same key recorded in a marker next
    to the run's artifacts and the same point count), so a re-run does not rewrite the index.
    """
    from storage.index import IndexUnavailableError, count_points, upload_tracklets
    from storage.index_settings import index_config

    marker = RunLayout(config.storage.run_dir).root / "index_upload.json"
    inputs = [Path(p) for p in [*tracklets_paths, identities_path]]
    locations = {camera.id: camera.location for camera in expand_cameras(config.cameras)}
    key = stage_key("upload", inputs, _section(config, "index"), locations)
    if not _forced("upload", from_stage) and marker.exists():
        recorded = json.loads(marker.read_text())
        try:
            if recorded.get("cache_key") == key and count_points(index_config(config)) == recorded.get("points"):
                get_run_logger().info("index up to date, skipped (%d points)", recorded["points"])
                report(f"index: up to date, skipped ({recorded['points']} tracklets)")
                return int(recorded["points"])
        except IndexUnavailableError:
            pass

    tracklets = pa.concat_tables([read_artifact(Path(p), "tracklets") for p in tracklets_paths])
    identities = read_artifact(Path(identities_path), "identities").to_pandas()
    clip_vectors = [v for v in tracklets.column("clip_embedding").to_pylist() if v]
    clip_dim = len(clip_vectors[0]) if clip_vectors else None
    count = upload_tracklets(
        index_config(config, clip_dim=clip_dim), tracklets, identities, locations, prune_orphans=True
    )
    get_run_logger().info("index: %d tracklet points upserted (%s)", count, config.index.url or "embedded")
    report(f"index: {count} tracklets uploaded ({config.index.url or 'embedded Qdrant'})")
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({"cache_key": key, "points": count}))
    tmp.replace(marker)
    return count


def _collect(futures: dict, failures: dict[str, str], logger) -> dict[str, str]:  # noqa: ANN001
    """Results of per-camera futures; a camera's user-facing error is recorded, not raised."""
    results = {}
    for camera_id, future in futures.items():
        try:
            results[camera_id] = future.result()
        except SmartTraceError as exc:
            failures[camera_id] = str(exc)
            logger.error("camera %s failed: %s", camera_id, exc)
        except Exception as exc:  # a bug or resource error in one camera must not lose the others
            failures[camera_id] = f"{type(exc).__name__}: {exc}"
            logger.exception("camera %s failed unexpectedly", camera_id)
    return results


@flow(name="process", log_prints=True)
def process_flow(config_path: str, from_stage: str | None = None) -> dict[str, str]:
    """Stage 1 and matching for every camera; returns artifact name -> path.

    Takes the config's path (not the parsed config) so deployments and the Prefect UI can
    schedule it with a plain string parameter. The run folder's lock is held for the whole run:
    a second run on the same folder refuses with the holder's PID (storage/run_lock.py).
    """
    config = load_config(config_path)
    with run_folder_lock(config.storage.run_dir):
        return _run_stages(config, from_stage)


def _run_stages(config: SmartTraceConfig, from_stage: str | None) -> dict[str, str]:
    """The flow body, in pipeline order; the caller holds the run folder's lock."""
    logger = get_run_logger()
    if from_stage is not None and from_stage not in STAGES:
        raise SmartTraceError(f"--from {from_stage}: unknown stage, choose one of {', '.join(STAGES)}")
    cameras = {camera.id: camera for camera in expand_cameras(config.cameras)}
    failures: dict[str, str] = {}
    # Per camera: track -> embed -> match in camera, each camera in parallel on the task runner.
    tracks = _collect(
        {c: track_camera_task.submit(camera, config, from_stage) for c, camera in cameras.items()}, failures, logger
    )
    tracklets = _collect(
        {c: embed_tracklets_task.submit(cameras[c], config, p, from_stage) for c, p in tracks.items()},
        failures, logger,
    )
    persons = _collect(
        {c: match_in_camera_task.submit(cameras[c], config, p, from_stage) for c, p in tracklets.items()},
        failures, logger,
    )
    artifacts = {f"tracks/{c}": p for c, p in tracks.items()}
    artifacts |= {f"tracklets/{c}": p for c, p in tracklets.items()}
    artifacts |= {f"persons/{c}": p for c, p in persons.items()}
    if failures:
        details = "; ".join(f"{cid}: {msg}" for cid, msg in failures.items())
        raise SmartTraceError(f"{len(failures)} of {len(cameras)} cameras failed: {details}")
    ordered = sorted(persons)
    artifacts["identities"] = match_cross_camera_task(
        config, [tracklets[c] for c in ordered], [persons[c] for c in ordered], from_stage
    )
    upload_index_task(config, [tracklets[c] for c in ordered], artifacts["identities"], from_stage)
    return artifacts


def run_process(config_path: str | Path, from_stage: str | None = None) -> dict[str, str]:
    """Load a config and run the flow with the task runner it names."""
    config = load_config(config_path)
    runner = build_task_runner(config.flow)
    return process_flow.with_options(task_runner=runner)(str(Path(config_path).resolve()), from_stage)
