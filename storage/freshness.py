"""Decide whether a stage's artifact is up to date, so re-runs skip finished work.

A stage's key is the hash of: the stage name, the sha256 of each input (videos, upstream
artifacts, model weights), its config section, and the code version. The key is stored in
the artifact's manifest; a re-run with the same key reuses the artifact. Anything that
changes an input changes the key, so a changed threshold re-runs that stage and, because its
output's bytes change, every stage downstream of it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from functools import lru_cache
from pathlib import Path

from smarttrace.assets import REPO_ROOT
from smarttrace.errors import ArtifactError
from smarttrace.lineage import file_fingerprint
from storage.artifacts import read_manifest

log = logging.getLogger("smarttrace.freshness")
CODE_DIRS = ("tasks", "storage", "flows", "smarttrace")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of the pipeline's source files: a code change invalidates cached results."""
    digest = hashlib.sha256()
    for folder in CODE_DIRS:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            digest.update(path.relative_to(REPO_ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def stage_key(stage: str, inputs: list[Path], config_section: dict, extra: dict | None = None) -> str:
    """The cache key of one stage run."""
    payload = {
        "stage": stage,
        "inputs": [file_fingerprint(p)["sha256"] for p in inputs],
        "config": config_section,
        "code": code_fingerprint(),
        "extra": extra or {},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def is_fresh(artifact: Path, key: str) -> bool:
    """True when `artifact` exists, reads, and was produced with `key`. A corrupt file is stale."""
    if not artifact.exists():
        return False
    try:
        manifest = read_manifest(artifact)
    except ArtifactError as exc:
        log.warning("%s is unreadable (%s): recomputing", artifact, exc)
        return False
    return manifest.get("cache_key") == key
