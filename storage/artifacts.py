"""Write and read Parquet artifacts atomically, with their schema checked at the door.

Why temp + rename: a reader (the next stage, the dashboard, a re-run deciding what to skip)
must never see a half-written file. `os.replace` within one folder is atomic on POSIX, so an
artifact either exists whole with its metadata or does not exist at all.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from smarttrace.errors import ArtifactError
from storage.schemas import SCHEMAS

META_KEY = b"smarttrace"


def _schema_for(kind: str) -> tuple[pa.Schema, int]:
    if kind not in SCHEMAS:
        raise ArtifactError(f"unknown artifact kind '{kind}' (known: {', '.join(SCHEMAS)})")
    return SCHEMAS[kind]


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Select the schema's columns in order; cast only when types differ (casts are not free)."""
    table = table.select(schema.names)
    if table.schema.equals(schema, check_metadata=False):
        return table
    return table.cast(schema)


def write_artifact(table: pa.Table, path: Path, kind: str, manifest: dict[str, Any] | None = None) -> Path:
    """Validate `table` against the kind's schema and publish it at `path` by rename.

    The manifest (lineage: inputs, config hash, models, code version) travels inside the
    Parquet footer, so it cannot get separated from the data it describes.
    """
    schema, version = _schema_for(kind)
    try:
        table = _conform(table, schema)
    except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ArtifactError(f"cannot write {kind} artifact {path}: rows do not fit the schema: {exc}") from exc
    meta = {"kind": kind, "schema_version": version, "rows": table.num_rows, **(manifest or {})}
    table = table.replace_schema_metadata({META_KEY: json.dumps(meta, default=str).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp_name)
        with open(tmp_name, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC or "No space left" in str(exc):
            raise ArtifactError(
                f"cannot write {kind} artifact {path}: disk full ({exc.strerror or exc}); "
                f"the previous version{' is intact' if path.exists() else ' did not exist'}"
            ) from exc
        raise
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _remove_stale_temps(path: Path) -> None:
    """Delete temp files a killed writer of this artifact left behind (never visible as artifacts)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def read_manifest(path: Path) -> dict[str, Any]:
    """The metadata stored in an artifact's footer (without reading its rows)."""
    try:
        raw = pq.read_schema(path).metadata or {}
    except FileNotFoundError:
        raise ArtifactError(f"artifact not found: {path}") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise ArtifactError(f"artifact {path} is not a readable Parquet file: {exc}") from None
    if META_KEY not in raw:
        raise ArtifactError(f"{path} is not a SmartTrace artifact (no '{META_KEY.decode()}' metadata)")
    return json.loads(raw[META_KEY])


def read_artifact(path: Path, kind: str) -> pa.Table:
    """Read an artifact and check it is the expected kind and schema version."""
    schema, version = _schema_for(kind)
    manifest = read_manifest(path)
    if manifest.get("kind") != kind:
        raise ArtifactError(f"{path} holds a '{manifest.get('kind')}' artifact, expected '{kind}'")
    if manifest.get("schema_version") != version:
        raise ArtifactError(
            f"{path} was written with {kind} schema v{manifest.get('schema_version')}, this release reads "
            f"v{version}: re-run the stage that produced it"
        )
    table = pq.read_table(path)
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise ArtifactError(f"{path} lacks the {kind} fields {', '.join(missing)}")
    return _conform(table, schema)
