"""Walk an artifact's manifest back to the source videos: "where did this come from?"

Each node says whether the file it points to is still the one recorded (`ok`), has changed
since (`stale`: its sha256 differs), or is gone (`missing`). An artifact is `stale` when any
of its upstream nodes is not ok, so a reader knows a re-run would give a different result.
Never raises for a broken tree: a lineage query is a diagnostic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smarttrace.assets import sha256_of
from smarttrace.errors import ArtifactError
from storage.artifacts import read_manifest

MANIFEST_FIELDS = ("flow_run_id", "task_run_id", "config_hash", "code", "created", "rows", "camera_id", "partial")


def _file_status(path: Path, sha256: str | None) -> str:
    if not path.exists():
        return "missing"
    if sha256 and sha256_of(path) != sha256:
        return "stale"
    return "ok"


def lineage_tree(path: str | Path, recorded_sha256: str | None = None, _depth: int = 0) -> dict[str, Any]:
    """The upstream tree of `path` as nested dicts (artifact, stage, status, inputs, models, ...)."""
    path = Path(path)
    node: dict[str, Any] = {"artifact": str(path), "stage": "source", "status": _file_status(path, recorded_sha256)}
    if node["status"] == "missing" or path.suffix != ".parquet" or _depth > 16:
        node["inputs"] = []
        return node
    try:
        manifest = read_manifest(path)
    except ArtifactError as exc:
        return {**node, "status": "stale", "error": str(exc), "inputs": []}
    node["stage"] = manifest.get("stage", "unknown")
    node.update({key: manifest[key] for key in MANIFEST_FIELDS if key in manifest})
    node["inputs"] = [lineage_tree(i["path"], i.get("sha256"), _depth + 1) for i in manifest.get("inputs", [])]
    node["models"] = [
        {"artifact": m["path"], "sha256": m.get("sha256"), "status": _file_status(Path(m["path"]), m.get("sha256"))}
        for m in manifest.get("models", [])
    ]
    upstream_ok = all(i["status"] == "ok" for i in node["inputs"]) and all(m["status"] == "ok" for m in node["models"])
    if node["status"] == "ok" and not upstream_ok:
        node["status"] = "stale"
    return node


def format_tree(node: dict[str, Any], indent: str = "") -> str:
    """Human-readable tree, one line per node."""
    runs = f" flow_run={node['flow_run_id']}" if node.get("flow_run_id") else ""
    line = f"{indent}{node['artifact']}  [{node['stage']}, {node['status']}]{runs}"
    lines = [line]
    for model in node.get("models", []):
        lines.append(f"{indent}  model {model['artifact']}  [{model['status']}]")
    for child in node.get("inputs", []):
        lines.append(format_tree(child, indent + "  "))
    return "\n".join(lines)
