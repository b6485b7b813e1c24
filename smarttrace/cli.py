"""The `smarttrace` command line: process, evaluate, export, search, dashboard."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from smarttrace.errors import SmartTraceError
from storage.layout import STAGES


def _cmd_process(args: argparse.Namespace) -> int:
    from smarttrace.console import run_process_command

    return run_process_command(args.config, args.from_stage, args.verbose)


def _load_predictions(path: Path, camera: str | None):  # noqa: ANN202 - pandas DataFrame
    """MOT txt file, or a tracks artifact converted to MOT rows (1-based frames)."""
    from tasks.evaluate_tracking import load_mot_txt
    from tasks.export_mot import tracks_to_mot

    if path.suffix == ".parquet":
        from storage.artifacts import read_artifact

        return tracks_to_mot(read_artifact(path, "tracks").to_pandas(), camera=camera)
    return load_mot_txt(path)


def _cmd_evaluate_tracking(args: argparse.Namespace) -> int:
    from tasks.evaluate_tracking import evaluate_tracking, load_mot_txt

    scores = evaluate_tracking(load_mot_txt(Path(args.gt)), _load_predictions(Path(args.pred), args.camera))
    if args.json:
        print(json.dumps(scores.to_dict()))
    else:
        for key, value in scores.to_dict().items():
            print(f"{key:>16}: {value:.4f}" if isinstance(value, float) else f"{key:>16}: {value}")
    return 0


def _cmd_export_mot(args: argparse.Namespace) -> int:
    from storage.artifacts import read_artifact
    from storage.layout import RunLayout
    from tasks.evaluate_identities import label_tracks
    from tasks.export_mot import tracks_to_mot, write_mot_txt

    layout = RunLayout(Path(args.run))
    table = read_artifact(layout.tracks(args.camera), "tracks").to_pandas()
    if args.ids != "track":
        identities = read_artifact(layout.identities(), "identities").to_pandas()
        column = "person_id" if args.ids == "person" else "global_id"
        table = label_tracks(table, identities.loc[identities["camera_id"] == args.camera], column)
    rows = tracks_to_mot(table, camera=args.camera)
    write_mot_txt(rows, Path(args.output) if args.output else None)
    return 0


def _person_map(path: str) -> dict[int, int]:
    """A person map CSV, with a bad file reported as a SmartTraceError naming it."""
    from tasks.person_map import load_person_map

    try:
        return load_person_map(path)
    except ValueError as exc:
        raise SmartTraceError(str(exc)) from None


def _cmd_evaluate_reid(args: argparse.Namespace) -> int:
    from tasks.embed_reid import ReidEmbedder
    from tasks.evaluate_reid import build_reid_protocol, evaluate_reid

    sequence = Path(args.sequence)
    video = next((p for p in sorted(sequence.iterdir()) if p.suffix.lower() in (".avi", ".mp4")), None)
    if video is None:
        raise SmartTraceError(f"{sequence}: no video file")
    if args.queries == "re-entry" and not args.persons:
        raise SmartTraceError("--queries re-entry needs --persons (which ground-truth ids are one person)")
    persons = _person_map(args.persons) if args.persons else None
    protocol = build_reid_protocol(
        video, sequence / "gt" / "gt.txt", args.fps, persons=persons, queries_by=args.queries
    )
    embedder = ReidEmbedder(args.weights)
    scores = {mode: evaluate_reid(protocol, embedder, mode).to_dict() for mode in ("multi", "single")}
    print(json.dumps(scores) if args.json else "\n".join(f"{m}: {v}" for m, v in scores.items()))
    return 0


def _cmd_evaluate_identities(args: argparse.Namespace) -> int:
    from storage.artifacts import read_artifact
    from storage.layout import RunLayout
    from tasks.evaluate_identities import CameraTruth, evaluate_identities, label_tracks
    from tasks.evaluate_tracking import load_mot_txt
    from tasks.export_mot import tracks_to_mot
    from tasks.person_map import apply_person_map

    layout = RunLayout(Path(args.run))
    identities = read_artifact(layout.identities(), "identities").to_pandas()
    person_maps = {}
    for spec in args.persons or []:
        scene, sep, csv_path = spec.partition("=")
        if not sep or not scene or not csv_path:
            raise SmartTraceError(f"--persons '{spec}': expected SCENE=PERSON_MAP_CSV")
        person_maps[scene] = (csv_path, _person_map(csv_path))
    truths = []
    for spec in args.camera:
        try:
            camera_id, scene, gt_path = spec.split(":", 2)
        except ValueError:
            raise SmartTraceError(f"--camera '{spec}': expected CAMERA:SCENE:GT_TXT") from None
        tracks = read_artifact(layout.tracks(camera_id), "tracks").to_pandas()
        pred = tracks_to_mot(label_tracks(tracks, identities, "global_id"), camera=camera_id)
        gt = load_mot_txt(Path(gt_path))
        gt = gt.loc[gt["frame"].between(pred["frame"].min(), pred["frame"].max())] if len(pred) else gt.iloc[0:0]
        if scene in person_maps:
            csv_path, persons = person_maps[scene]
            try:
                gt = apply_person_map(gt, persons, source=f"person map {csv_path} on {gt_path}")
            except ValueError as exc:
                raise SmartTraceError(str(exc)) from None
        truths.append(CameraTruth(camera_id, scene, gt, pred))
    scores = evaluate_identities(truths, protocol=args.protocol)
    print(json.dumps(scores.to_dict()) if args.json else scores)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from flows.serve import serve_deployments

    serve_deployments(args.config, args.interval)
    return 0


def _cmd_lineage(args: argparse.Namespace) -> int:
    from storage.lineage import format_tree, lineage_tree

    tree = lineage_tree(Path(args.path))
    print(json.dumps(tree, default=str) if args.json else format_tree(tree))
    return 0 if tree["status"] != "missing" else 2


DEFAULT_CONFIG = "configs/demo.yaml"


def _time_arg(value: str | None):  # noqa: ANN202 - datetime | None
    """ISO 8601 time for --start/--end (naive = UTC, like the index)."""
    from datetime import UTC, datetime

    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SmartTraceError(f"'{value}' is not an ISO 8601 time, e.g. 2009-03-01T09:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _cmd_search(args: argparse.Namespace) -> int:
    import contextlib
    import logging

    # stdout carries only the results (--json must parse): ultralytics logs model loading to stdout,
    # and the CLIP warning is repeated below as a note.
    os.environ.setdefault("YOLO_VERBOSE", "False")
    logging.getLogger("smarttrace.clip").setLevel(logging.ERROR)
    from search import SearchInputError, load_engine

    if not args.image and not args.text and not args.filter:
        raise SearchInputError("give --image PATH, --text DESCRIPTION, or both")
    # --filter female / --filter no-hat: attribute filters (tasks.attribute_scoring.ATTRIBUTE_FILTERS)
    filters = {name.removeprefix("no-"): not name.startswith("no-") for name in args.filter or []}
    engine = load_engine(args.config)
    time_range = None
    if args.start or args.end:
        time_range = (_time_arg(args.start), _time_arg(args.end))
    with contextlib.redirect_stdout(sys.stderr):
        try:
            results = engine.search(
                image=Path(args.image) if args.image else None,
                text=args.text,
                camera_ids=args.camera or None,
                time_range=time_range,
                limit=args.limit,
                attribute_filters=filters or None,
            )
        except SearchInputError as exc:
            where = f"{args.image}: " if args.image and str(args.image) not in str(exc) else ""
            raise SearchInputError(f"{where}{exc}") from None
    for note in results.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps({"results": [r.to_dict() for r in results], "notes": results.notes}))
        return 0
    if not results:
        print("no matching person")
        return 0
    for rank, result in enumerate(results, 1):
        first = result.first_seen.strftime("%Y-%m-%d %H:%M:%S") if result.first_seen else "?"
        last = result.last_seen.strftime("%H:%M:%S") if result.last_seen else "?"
        print(
            f"{rank:>2}. person {result.global_id:<5} score {result.score:.3f}  {','.join(result.cameras):<20} "
            f"{first} - {last} UTC  {result.thumbnail or '(no thumbnail)'}"
        )
        print(f"    {result.explanation}")
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    """Become `streamlit run dashboards/app.py` (exec, not a child: Ctrl-C and SIGTERM reach Streamlit)."""
    from smarttrace.config import load_config

    config_path = Path(args.config).resolve()
    load_config(config_path)  # a bad config is one clear line here, not a stack trace in the browser
    app = Path(__file__).resolve().parent.parent / "dashboards" / "app.py"
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"smarttrace: warning: serving on {args.host} exposes the dashboard without authentication; under the "
            "AGPL, users of a network service must be offered its source (see README, Licences)",
            file=sys.stderr,
        )
    command = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", args.host, "--server.port", str(args.port), "--server.headless", "true",
        "--server.maxUploadSize", "20", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    print(f"SmartTrace dashboard on http://{args.host}:{args.port} (config {config_path}); Ctrl-C stops it", flush=True)
    sys.stderr.flush()
    os.execve(sys.executable, command, {**os.environ, "SMARTTRACE_CONFIG": str(config_path)})
    return 0  # not reached


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smarttrace", description="Multi-camera person search.")
    sub = parser.add_subparsers(dest="command", required=True)

    process = sub.add_parser("process", help="run Stage 1 (detect + track every camera)")
    process.add_argument("config", help="YAML config, e.g. configs/demo.yaml")
    process.add_argument("--from", dest="from_stage", choices=STAGES,
                         help="recompute this stage and every later one even if up to date")
    process.add_argument("--verbose", action="store_true",
                         help="show Prefect's and the libraries' own output (default: in the run's debug log)")
    process.set_defaults(func=_cmd_process)

    evaluate = sub.add_parser("evaluate", help="score a stage against ground truth")
    evaluate_sub = evaluate.add_subparsers(dest="what", required=True)
    tracking = evaluate_sub.add_parser("tracking", help="MOTA, IDF1, HOTA of tracks vs MOT ground truth")
    tracking.add_argument("--pred", required=True, help="MOT txt file or a tracks .parquet artifact")
    tracking.add_argument("--gt", required=True, help="MOTChallenge gt.txt")
    tracking.add_argument("--camera", help="camera id inside the artifact (default: the only one)")
    tracking.add_argument("--json", action="store_true", help="print one JSON object")
    tracking.set_defaults(func=_cmd_evaluate_tracking)

    reid = evaluate_sub.add_parser("reid", help="ReID mAP / rank-k on ground-truth crops (intra-camera protocol)")
    reid.add_argument("--sequence", required=True, help="folder with one video, gt/gt.txt")
    reid.add_argument("--fps", type=float, required=True, help="real frame rate of the video")
    reid.add_argument("--weights", default="osnet_x0_25_msmt17.pt")
    reid.add_argument("--persons", help="person map CSV (gt_id,person): score people, not GT tracks "
                      "(e.g. benchmarks/annotations/PETS09-S2L1.persons.csv)")
    reid.add_argument("--queries", choices=("first-appearance", "re-entry"), default="first-appearance",
                      help="re-entry: one query per visit, only OTHER visits count (needs --persons)")
    reid.add_argument("--json", action="store_true")
    reid.set_defaults(func=_cmd_evaluate_reid)
    ident = evaluate_sub.add_parser("identities", help="global-ID IDF1, merges and splits of a run")
    ident.add_argument("--run", required=True, help="output folder of a `smarttrace process` run")
    ident.add_argument("--camera", action="append", required=True, metavar="CAMERA:SCENE:GT_TXT",
                       help="a camera, the scene whose ground-truth ids it shares, and its gt.txt (repeat)")
    ident.add_argument("--persons", action="append", metavar="SCENE=CSV",
                       help="person map of a scene's ground truth (gt_id,person): ids of one person re-entering "
                       "the view count as one identity (repeat per scene)")
    ident.add_argument("--protocol", default="proxy scenario", help="name of the scenario, printed in the report")
    ident.add_argument("--json", action="store_true")
    ident.set_defaults(func=_cmd_evaluate_identities)

    serve = sub.add_parser("serve", help="serve the Prefect deployments (needs a Prefect server)")
    serve.add_argument("config", nargs="?", default="configs/watch.yaml")
    serve.add_argument("--interval", type=int, default=300, help="seconds between scheduled runs")
    serve.set_defaults(func=_cmd_serve)

    lineage = sub.add_parser("lineage", help="upstream tree of an artifact down to the source videos")
    lineage.add_argument("path", help="a Parquet artifact of a run")
    lineage.add_argument("--json", action="store_true")
    lineage.set_defaults(func=_cmd_lineage)

    export = sub.add_parser("export", help="export artifacts to other formats")
    export_sub = export.add_subparsers(dest="format", required=True)
    mot = export_sub.add_parser("mot", help="a camera's boxes as MOTChallenge rows")
    mot.add_argument("run", help="output folder of a `smarttrace process` run")
    mot.add_argument("--camera", required=True)
    mot.add_argument("--ids", choices=["track", "person", "global"], default="track")
    mot.add_argument("-o", "--output", help="file to write (default: stdout)")
    mot.set_defaults(func=_cmd_export_mot)

    search = sub.add_parser("search", help="find people by an example image and/or a clothing description")
    search.add_argument("--image", help="photo or crop of the person to find")
    search.add_argument("--text", help="description, e.g. 'woman in a red jacket, blue jeans, with a backpack'")
    search.add_argument("--filter", action="append", metavar="NAME",
                        help="only people with this attribute: female, male, bag, backpack, hat, sunglasses, child, "
                        "over60; 'no-NAME' for without (repeat for several)")
    search.add_argument("--camera", action="append", help="only this camera (repeat for several)")
    search.add_argument("--start", help="only tracklets seen at or after this ISO 8601 time")
    search.add_argument("--end", help="only tracklets seen at or before this ISO 8601 time")
    search.add_argument("--config", default=DEFAULT_CONFIG, help=f"YAML config (default {DEFAULT_CONFIG})")
    search.add_argument("--limit", type=int, default=10, help="people to list (default 10)")
    search.add_argument("--json", action="store_true", help="print one JSON object")
    search.set_defaults(func=_cmd_search)

    dashboard = sub.add_parser("dashboard", help="start the Streamlit search dashboard")
    dashboard.add_argument("--config", default=DEFAULT_CONFIG, help=f"YAML config (default {DEFAULT_CONFIG})")
    dashboard.add_argument("--port", type=int, default=8501)
    dashboard.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    dashboard.set_defaults(func=_cmd_dashboard)

    from smarttrace.cli_train import register as register_train

    register_train(sub)

    from smarttrace.cli_adapt import register as register_adapt_reid

    register_adapt_reid(sub)

    from smarttrace.cli_api import register as register_api

    register_api(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point. User errors print one clear line and exit 2; no traceback."""
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "smarttrace")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SmartTraceError as exc:
        print(f"smarttrace: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
