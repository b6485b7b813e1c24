"""Model and sample-data registry: a name resolves to (public URL, file name, sha256).

Why: no model hub is reachable on our machines, and weights fetched at run time are a
supply-chain risk anyway. Every asset is looked up, in order, at

1. an explicit path given in the config,
2. the model folder (`SMARTTRACE_MODEL_DIR`, default `../shared/models` beside the checkout when
   it exists; CI points it there) — for data
   assets, `SMARTTRACE_DATA_DIR` (default `../shared/data` next to the checkout),
3. the user cache (`SMARTTRACE_CACHE_DIR`, default `~/.cache/smarttrace`),
4. a download from the public URL into the cache,

and every file found is checked against its sha256 before use, so a truncated or swapped
file is a clear error instead of silently different results.

A model the user trains (the PETA attribute model: no public URL exists, its licence forbids
redistribution) is registered with no URL and no hash: its sha256 lives in the manifest written
beside it (`<stem>.manifest.json`), the file is checked against that, and a missing file is an
error that names the command that produces it (`Asset.produced_by`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from smarttrace.errors import AssetError

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Asset:
    """A file the product needs, identified by content (sha256) and where to get it publicly."""

    name: str
    filename: str
    url: str
    sha256: str
    kind: str  # "model" or "data"
    relpath: str = ""  # path below the data folder, for data assets
    licence: str = ""
    produced_by: str = ""  # command that creates the file locally, for assets with no public URL


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in [
        Asset(
            "yolo11n-pose",
            "yolo11n-pose.pt",
            "https://github.com/ultralytics/assets/releases/download/v8.3.0/yolo11n-pose.pt",
            "869e83fcdffdc7371fa4e34cd8e51c838cc729571d1635e5141e3075e9319dc0",
            "model",
            licence="AGPL-3.0",
        ),
        Asset(
            "osnet_x0_25_msmt17",
            "osnet_x0_25_msmt17.pt",
            "https://drive.google.com/uc?id=1sSwXSUlj4_tHZequ_iZ8w_Jh0VaRQMqF",
            "6f57607fed9f502b9efed546108132ee715df5a5b6e6932c6269bacb47f59f99",
            "model",
            licence="MIT (MSMT17 research terms)",
        ),
        Asset(
            "osnet_x0_25_market1501",
            "osnet_x0_25_market1501.pt",
            "https://drive.google.com/uc?id=1z1UghYvOTtjx7kEoRfmqSMu-z62J6MAj",
            "c0ff09177a21417a19bc73bbf5af4eb5d2b097c2074ed35e67819ee6cd93612c",
            "model",
            licence="MIT (Market-1501 research terms)",
        ),
        Asset(
            "peta_attributes_osnet_x0_25",
            "peta_attributes_osnet_x0_25.pt",
            "",  # trained locally from PETA; never published (PETA is research-only)
            "",  # user-trained: the sha256 is in the manifest beside the file
            "model",
            licence="PETA research use only, no commercial use; cite Deng et al. ACM MM 2014",
            produced_by="smarttrace train attributes --peta DIR",
        ),
        Asset(
            "vtest",
            "vtest.avi",
            "https://raw.githubusercontent.com/opencv/opencv/4.x/samples/data/vtest.avi",
            "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
            "data",
            relpath="PETS09-S2L1/vtest.avi",
            licence="OpenCV sample data terms",
        ),
    ]
}


def sha256_of(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed so large videos do not load into memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def model_dir() -> Path | None:
    """The model folder: `SMARTTRACE_MODEL_DIR`, else `../shared/models` beside the checkout if present."""
    value = os.environ.get("SMARTTRACE_MODEL_DIR")
    if value:
        return Path(value).expanduser()
    shared = REPO_ROOT.parent / "shared" / "models"
    return shared if shared.is_dir() else None


def data_dir() -> Path:
    """Folder holding the bundled sample data (`SMARTTRACE_DATA_DIR`, default `../shared/data`)."""
    value = os.environ.get("SMARTTRACE_DATA_DIR")
    return Path(value).expanduser() if value else REPO_ROOT.parent / "shared" / "data"


def cache_dir() -> Path:
    """Per-user cache for downloaded assets."""
    value = os.environ.get("SMARTTRACE_CACHE_DIR")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "smarttrace"


def lookup(name_or_filename: str) -> Asset | None:
    """Find a registered asset by name ("yolo11n-pose") or file name ("yolo11n-pose.pt")."""
    if name_or_filename in ASSETS:
        return ASSETS[name_or_filename]
    for asset in ASSETS.values():
        if asset.filename == name_or_filename:
            return asset
    return None


def _candidates(asset: Asset) -> list[Path]:
    """Local places an asset may already be, in lookup order."""
    places: list[Path] = []
    if asset.kind == "model":
        folder = model_dir()
        if folder is not None:
            places.append(folder / asset.filename)
    else:
        places.append(data_dir() / asset.relpath)
    places.append(cache_dir() / asset.filename)
    return places


def manifest_path(path: Path) -> Path:
    """Where a locally produced file's manifest lives: `model.pt` -> `model.manifest.json`."""
    return path.with_name(path.stem + ".manifest.json")


def verify_against_manifest(path: Path, name: str = "") -> Path:
    """Return `path` if its sha256 equals the one in its manifest, else raise an error naming both files."""
    manifest = manifest_path(path)
    label = f"model '{name}': " if name else ""
    try:
        expected = json.loads(manifest.read_text())["sha256"]
    except FileNotFoundError:
        raise AssetError(f"{label}{path} has no manifest {manifest}; its origin cannot be checked: retrain") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AssetError(f"{label}{manifest} is not a readable manifest with a sha256 ({exc})") from exc
    actual = sha256_of(path)
    if actual != expected:
        raise AssetError(
            f"{label}{path} is corrupt or a different file (sha256 {actual[:12]}…, its manifest {manifest} "
            f"says {str(expected)[:12]}…). Retrain it or restore the pair"
        )
    return path


def verify(path: Path, asset: Asset) -> Path:
    """Return `path` if its sha256 matches the registry (or its manifest), else raise an error naming the file."""
    if not asset.sha256:
        return verify_against_manifest(path, asset.name)
    actual = sha256_of(path)
    if actual != asset.sha256:
        raise AssetError(
            f"{asset.kind} '{asset.name}': {path} is corrupt or a different file "
            f"(sha256 {actual[:12]}…, expected {asset.sha256[:12]}…). "
            f"Delete it and get the original from {asset.url}"
        )
    return path


def download(asset: Asset) -> Path:
    """Download an asset into the cache, verify it, and publish it by rename (never half-written)."""
    target = cache_dir() / asset.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as part:
        part_path = Path(part.name)
    try:
        with urllib.request.urlopen(asset.url, timeout=60) as response, open(part_path, "wb") as out:
            shutil.copyfileobj(response, out)
        verify(part_path, asset)
        os.replace(part_path, target)
    except AssetError:
        part_path.unlink(missing_ok=True)
        raise
    except OSError as exc:
        part_path.unlink(missing_ok=True)
        where = model_dir() or "SMARTTRACE_MODEL_DIR (unset)"
        raise AssetError(
            f"{asset.kind} '{asset.name}' ({asset.filename}) is not in {where} nor in the cache "
            f"{cache_dir()}, and downloading {asset.url} failed: {exc}. "
            f"Put the file in the model folder or set SMARTTRACE_MODEL_DIR."
        ) from exc
    return target


def resolve(name_or_path: str | os.PathLike[str], allow_download: bool = True) -> Path:
    """Resolve a model or data asset to a verified local file.

    An explicit existing path wins (verified when it is a registered file name); otherwise the
    name is looked up in the registry and searched in the model folder, cache, then downloaded.
    """
    text = str(name_or_path)
    explicit = Path(text).expanduser()
    asset = lookup(explicit.name) or lookup(text)
    if explicit.is_file():
        return verify(explicit, asset) if asset and explicit.name == asset.filename else explicit
    if asset is None:
        known = ", ".join(sorted(ASSETS))
        raise AssetError(f"'{text}' is neither an existing file nor a registered asset (known: {known})")
    for candidate in _candidates(asset):
        if candidate.is_file():
            return verify(candidate, asset)
    if not asset.url:
        raise AssetError(
            f"{asset.kind} '{asset.name}' ({asset.filename}) not found in "
            + ", ".join(str(p) for p in _candidates(asset))
            + f"; it has no public download: create it with `{asset.produced_by}` (writes it to the cache)"
        )
    if not allow_download:
        raise AssetError(
            f"{asset.kind} '{asset.name}' ({asset.filename}) not found in "
            + ", ".join(str(p) for p in _candidates(asset))
            + f"; get it from {asset.url}"
        )
    return download(asset)
