"""The `evaluate-tracking` flow: score a run's tracks against MOT ground truth, as a deployment.

Publishes the scores as a Prefect table artifact so runs can be compared in the UI.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from storage.artifacts import read_artifact
from tasks.evaluate_tracking import evaluate_tracking, load_mot_txt
from tasks.export_mot import tracks_to_mot


@flow(name="evaluate-tracking")
def evaluate_tracking_flow(pred: str, gt: str, camera: str | None = None) -> dict:
    """MOTA, IDF1, HOTA, ... of a tracks artifact (or MOT txt) against a gt.txt."""
    pred_path = Path(pred)
    if pred_path.suffix == ".parquet":
        predictions = tracks_to_mot(read_artifact(pred_path, "tracks").to_pandas(), camera=camera)
    else:
        predictions = load_mot_txt(pred_path)
    scores = evaluate_tracking(load_mot_txt(Path(gt)), predictions).to_dict()
    key = "".join(ch if ch.isalnum() else "-" for ch in f"eval-{camera or pred_path.stem}".lower())
    create_table_artifact(key=key, table=[{"pred": pred, "gt": gt, **scores}], description="Tracking scores")
    get_run_logger().info("MOTA %.3f IDF1 %.3f HOTA %.3f", scores["mota"], scores["idf1"], scores["hota"])
    return scores
