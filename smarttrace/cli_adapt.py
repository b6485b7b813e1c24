"""`smarttrace adapt-reid RUN`: fine-tune OSNet on a run's own tracklets (tasks/reid_adaptation.py).

Reads the run's tracks and tracklets artifacts, cuts the training crops from the videos their
manifests name, fine-tunes, and writes `RUN/models/osnet_x0_25_adapted.pt` plus its manifest
(source run, cameras, tracklets and crops used, base weights sha256, hyperparameters, code).
Use it with `embed.reid_weights: [<that path>, osnet_x0_25_market1501.pt]` in the config (it replaces the MSMT17
member of the default ensemble), then `smarttrace process --from embed`.
User errors (no such folder, no artifacts, too few usable tracklets) are one line, exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from smarttrace.errors import ArtifactError, SmartTraceError
from storage.layout import RunLayout

log = logging.getLogger("smarttrace.adapt")
BASE_WEIGHTS = "osnet_x0_25_msmt17.pt"


def _run_cameras(run: Path) -> list[str]:
    """Cameras with both a tracks and a tracklets artifact; a clear error naming what is missing."""
    if not run.exists():
        raise SmartTraceError(f"run folder {run} does not exist (give the output folder of `smarttrace process`)")
    if not run.is_dir():
        raise SmartTraceError(f"{run} is not a folder (give the output folder of `smarttrace process`)")
    layout = RunLayout(run)
    tracks = {p.stem for p in (run / "tracks").glob("*.parquet")}
    tracklets = {p.stem for p in (run / "tracklets").glob("*.parquet")}
    if not tracks:
        raise SmartTraceError(f"run folder {run} has no tracks artifacts ({layout.tracks('<camera>')}): "
                              "run `smarttrace process` first")
    if not tracks & tracklets:
        raise SmartTraceError(f"run folder {run} has tracks but no tracklets artifacts "
                              f"({layout.tracklets('<camera>')}): the embed stage has not run")
    return sorted(tracks & tracklets)


def _load_run(run: Path, cameras: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict, list[Path]]:
    """Tracks, tracklets, frame sizes and video files per camera, and the artifact paths read."""
    from storage.artifacts import read_artifact, read_manifest
    from tasks.video import open_video

    layout = RunLayout(run)
    tracks, tracklets, sizes, videos, inputs = [], [], {}, {}, []
    for camera_id in cameras:
        tracks_path, tracklets_path = layout.tracks(camera_id), layout.tracklets(camera_id)
        table = read_artifact(tracks_path, "tracks").to_pandas()
        rows = read_artifact(tracklets_path, "tracklets").to_pandas()
        if table.empty or rows.empty:
            continue
        paths = [Path(item["path"]) for item in read_manifest(tracks_path).get("inputs", [])]
        if not paths:
            raise ArtifactError(f"{tracks_path}: its manifest names no input video to cut crops from")
        capture, info = open_video(paths[0], camera_id)
        capture.release()
        tracks.append(table)
        tracklets.append(rows)
        sizes[camera_id], videos[camera_id] = (info.height, info.width), paths
        inputs += [tracks_path.resolve(), tracklets_path.resolve()]
    if not tracks:
        raise SmartTraceError(f"run folder {run}: every camera's tracks are empty (nobody was tracked)")
    return pd.concat(tracks, ignore_index=True), pd.concat(tracklets, ignore_index=True), sizes, videos, inputs


def adapt_run(run: Path, out: Path | None = None, epochs: int | None = None, max_tracklets: int | None = None,
              steps: int | None = None, base_weights: str = BASE_WEIGHTS) -> Path:
    """The whole command as a function (tests call it): returns the written weights path."""
    import dataclasses

    from smarttrace.assets import resolve, sha256_of
    from smarttrace.lineage import build_manifest
    from tasks.reid_adaptation import (
        ADAPTED_NAME,
        AdaptConfig,
        build_adaptation_set,
        cut_crops,
        hyperparameters,
        save_adapted,
        train_adapted,
    )

    cameras = _run_cameras(run)
    config = AdaptConfig()
    if epochs is not None:
        config = dataclasses.replace(config, epochs=epochs)
    if max_tracklets is not None:
        config = dataclasses.replace(config, max_tracklets=max_tracklets)
    out = out or run / "models" / ADAPTED_NAME
    if not out.name.startswith("osnet_x0_25"):
        raise SmartTraceError(f"--out {out}: the file name must start with 'osnet_x0_25' (the product reads the "
                              "architecture from it), e.g. osnet_x0_25_adapted.pt")
    tracks, tracklets, sizes, videos, inputs = _load_run(run, cameras)
    adaptation = build_adaptation_set(tracks, tracklets, sizes, config)
    pairs = adaptation.negative_pairs()
    if adaptation.num_labels < config.min_tracklets or not pairs:
        skipped = ", ".join(f"{n} {why}" for why, n in adaptation.skipped.items()) or "none skipped"
        raise SmartTraceError(
            f"run folder {run}: too few usable tracklets to adapt on: {adaptation.num_labels} with >= "
            f"{config.min_crops} crops of >= {config.min_crop_height:.0f} px ({skipped}), {len(pairs)} pairs seen "
            f"together in time; need >= {config.min_tracklets} tracklets and >= 1 such pair (a longer recording helps)"
        )
    log.info("adapt-reid: %d tracklets (%d crops, %d negative pairs) from cameras %s", adaptation.num_labels,
             len(adaptation.crops), len(pairs), ", ".join(cameras))
    crops = cut_crops(adaptation.crops, videos)
    weights = resolve(base_weights)
    result = train_adapted(adaptation, crops, weights, config, steps=steps)
    manifest = build_manifest(
        stage="adapt_reid", inputs=inputs, config_hash="", models=[weights],
        source_run=str(run.resolve()), cameras=cameras, tracklets=adaptation.num_labels,
        crops=len(adaptation.crops), negative_pairs=len(pairs), skipped_tracklets=adaptation.skipped,
        base_weights=str(weights), base_weights_sha256=sha256_of(weights), hyperparameters=hyperparameters(config),
        steps=result.steps, seconds=round(result.seconds, 1), loss_first_epoch=result.loss_first,
        loss_last_epoch=result.loss_last,
    )
    save_adapted(result.state_dict, out, manifest)
    log.info("adapt-reid: %d steps in %.0f s, triplet loss %.3f -> %.3f; wrote %s", result.steps, result.seconds,
             result.loss_first, result.loss_last, out)
    return out


def _cmd_adapt_reid(args: argparse.Namespace) -> int:
    if not log.handlers:  # progress lines on stderr when no tqdm bar (not a terminal)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    out = adapt_run(Path(args.run), Path(args.out) if args.out else None, args.epochs, args.max_tracklets)
    print(out)
    print(f"use it: embed.reid_weights: [{out.resolve()}, osnet_x0_25_market1501.pt]  (it replaces the MSMT17 member "
          "of the default ensemble; then `smarttrace process CONFIG --from embed`)",
          file=sys.stderr)
    return 0


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return number


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `adapt-reid` subcommand to the main parser."""
    adapt = sub.add_parser("adapt-reid", help="fine-tune the ReID model on a run's own tracklets")
    adapt.add_argument("run", help="output folder of a `smarttrace process` run (holds tracks/ and tracklets/)")
    adapt.add_argument("--epochs", type=_positive, help="passes over the crops (default 4)")
    adapt.add_argument("--out", help="weights file to write (default RUN/models/osnet_x0_25_adapted.pt)")
    adapt.add_argument("--max-tracklets", type=_positive, help="train on at most N tracklets (most crops first)")
    adapt.set_defaults(func=_cmd_adapt_reid)
