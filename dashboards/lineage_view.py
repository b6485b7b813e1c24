"""Lineage page: pick an artifact of the run, see where it came from (artifact -> inputs -> videos).

Prefect's OSS server has no asset lineage graph, so the dashboard draws the tree from the
manifests every artifact carries (storage/lineage.py), with run ids and ok/stale/missing flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from storage.lineage import lineage_tree

STATUS_ICON = {"ok": "✅", "stale": "⚠️", "missing": "❌"}


def run_artifacts(run_dir: Path) -> list[Path]:
    """The run's Parquet artifacts, newest stage last (the index folder is not an artifact)."""
    return sorted(p for p in run_dir.rglob("*.parquet") if "qdrant" not in p.parts)


def _label(node: dict[str, Any], run_dir: Path) -> str:
    path = Path(node["artifact"])
    shown = path.relative_to(run_dir) if path.is_relative_to(run_dir) else path
    return f"{STATUS_ICON.get(node['status'], '?')} {shown} · {node['stage']} · {node['status']}"


def _render(node: dict[str, Any], run_dir: Path, depth: int = 0) -> None:
    keys = ("flow_run_id", "task_run_id", "config_hash", "created", "rows", "code")
    details = {k: node[k] for k in keys if k in node}
    with st.expander(_label(node, run_dir), expanded=depth < 2):
        if details:
            st.json(details, expanded=False)
        for model in node.get("models", []):
            icon = STATUS_ICON.get(model["status"], "?")
            st.caption(f"{icon} model {model['artifact']} (sha256 {(model['sha256'] or '')[:12]}…)")
        for child in node.get("inputs", []):
            _render(child, run_dir, depth + 1)


def lineage_page(run_dir: Path) -> None:
    """Streamlit page: choose an artifact, show its upstream tree."""
    st.header("Artifact lineage")
    artifacts = run_artifacts(run_dir)
    if not artifacts:
        st.info(f"No artifacts in {run_dir} yet: run `smarttrace process` first.")
        return
    choice = st.selectbox("Artifact", artifacts, format_func=lambda p: str(p.relative_to(run_dir)))
    tree = lineage_tree(choice)
    if tree["status"] != "ok":
        st.warning(f"This artifact is {tree['status']}: an input changed or is gone since it was made.")
    _render(tree, run_dir)
