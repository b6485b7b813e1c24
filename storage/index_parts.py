"""A published version as a list of immutable parts: a full base shard plus small delta shards.

Why: rewriting the whole version after each upload costs time proportional to the INDEX (1M points of
1024-d: 1248 s to write, 15-18 s for a reader to load, `benchmarks/search_scale.py`), not to the upload.
With parts, an upload of a few thousand tracklets writes one small delta shard, and a reader that already
serves the base loads only that delta; the next query sees it.

    published/<base version>/            an engine shard (what every version was before), + PART_FILE
    published/p<time>-<id>/              a delta part: an engine shard of the points an upload wrote
    published/<version>/PARTS_FILE       a composed version: its parts, oldest first

A part's entry lists the point ids it holds (`points`) and the ids it deleted (`removed`); both hide the
copies of those ids in every OLDER part (newest wins), so an updated tracklet is never served twice and a
deleted one never comes back. The base entry holds no id list (it is everything in its shard). Which
publish to make is `plan_publish`'s decision (deltas are merged, and a full version written, by its rules).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PARTS_FILE = "parts.json"  # in a composed version's folder
PART_FILE = ".smarttrace-part.json"  # in a full version's shard folder: {"points": n}
PARTS_FORMAT = 1
DELTA_PREFIX = "p"  # delta part folders; versions start with "v"


@dataclass(frozen=True)
class Part:
    """One immutable shard folder of a version and the ids it overrides in the older parts."""

    folder: str  # name under published/
    count: int  # points written into the shard
    points: frozenset[str] | None = None  # None: the base (every id in the shard; hides nothing)
    removed: frozenset[str] = field(default_factory=frozenset)

    @property
    def supersedes(self) -> frozenset[str]:
        """Ids whose copies in older parts this part hides."""
        return (self.points or frozenset()) | self.removed

    def to_json(self) -> dict:
        return {
            "folder": self.folder,
            "count": self.count,
            "points": None if self.points is None else sorted(self.points),
            "removed": sorted(self.removed),
        }

    @staticmethod
    def from_json(raw: dict) -> Part:
        points = raw.get("points")
        return Part(str(raw["folder"]), int(raw["count"]), None if points is None else frozenset(map(str, points)),
                    frozenset(map(str, raw.get("removed") or ())))  # fmt: skip


class PartsError(ValueError):
    """A version's parts file is unreadable or names a part that is not there."""


def _safe_name(name: str, where: Path) -> str:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise PartsError(f"{where}: part folder name '{name[:40]}' is not a plain folder name")
    return name


def version_parts(published: Path, version: str) -> list[Part]:
    """The parts of `version`, oldest first. A plain shard folder is one base part; its point count is
    read from PART_FILE (-1 when it was written before parts existed: such a base is never extended)."""
    folder = published / version
    listing = folder / PARTS_FILE
    if not listing.is_file():
        try:
            count = int(json.loads((folder / PART_FILE).read_text())["points"])
        except (OSError, ValueError, KeyError, TypeError):
            count = -1
        return [Part(version, count)]
    try:
        raw = json.loads(listing.read_text())
        if raw.get("format") != PARTS_FORMAT:
            raise PartsError(f"{listing}: parts format {raw.get('format')!r}, this code reads {PARTS_FORMAT}")
        parts = [Part.from_json(entry) for entry in raw["parts"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PartsError(f"{listing} is unreadable: {exc}") from exc
    if not parts or parts[0].points is not None or any(p.points is None for p in parts[1:]):
        raise PartsError(f"{listing}: a version needs one base part first, then delta parts")
    for part in parts:
        if part.folder or part.count:  # "" with no points: a delta that only deleted (no shard)
            _safe_name(part.folder, listing)
    return parts


def write_parts_file(folder: Path, parts: Sequence[Part]) -> None:
    """The composed version's listing (the caller renames the folder into place: readers see it whole)."""
    (folder / PARTS_FILE).write_text(json.dumps({"format": PARTS_FORMAT, "parts": [p.to_json() for p in parts]}))


def write_part_count(shard: Path, count: int) -> None:
    (shard / PART_FILE).write_text(json.dumps({"points": int(count)}))


def exclusions(parts: Sequence[Part]) -> list[frozenset[str]]:
    """Per part, the ids it must not serve: everything a newer part holds or removed."""
    hidden: list[frozenset[str]] = []
    later: frozenset[str] = frozenset()
    for part in reversed(parts):
        hidden.append(later)
        later = later | part.supersedes
    return hidden[::-1]


def referenced_folders(published: Path, versions: Iterable[str]) -> set[str]:
    """Every folder the given versions read (themselves and their parts); unreadable listings skipped."""
    out: set[str] = set()
    for version in versions:
        out.add(version)
        try:
            out.update(p.folder for p in version_parts(published, version) if p.folder)
        except PartsError:
            continue
    return out


@dataclass(frozen=True)
class DeltaPolicy:
    """When an upload becomes a delta part instead of a full version (see `IndexSettings` for the defaults'
    reasons): the base must hold at least `min_points`; more than `max_parts` deltas are merged into one; a
    delta holding more than `max_share` of the base's points means a full version is written instead."""

    min_points: int
    max_parts: int
    max_share: float


@dataclass(frozen=True)
class PublishPlan:
    """What to write: "full" (a new base from every point), "append" (one delta after the current parts) or
    "merge" (the current deltas and the upload as one delta after the base). `touched` = the ids the new
    delta must state: the writer reads each from its store; those present go into the delta, the others
    are its `removed` (deleted since the base)."""

    kind: str
    keep: tuple[Part, ...] = ()  # the parts the new version keeps before the new delta
    touched: frozenset[str] = frozenset()
    reason: str = ""


def plan_publish(parts: Sequence[Part] | None, changed: set[str], policy: DeltaPolicy) -> PublishPlan:
    """Decide how to publish one writer session's `changed` ids (upserted or deleted) on top of the
    current version's `parts`.

    `parts` None: no usable current version (none yet, changed outside a tracked session, written before
    parts): a full version."""
    if not parts:
        return PublishPlan("full", reason="no current version to extend")
    base, deltas = parts[0], list(parts[1:])
    if base.count < policy.min_points:
        return PublishPlan("full", reason=f"base of {base.count} points < {policy.min_points}")
    if len(deltas) + 1 > policy.max_parts:
        touched = frozenset(changed).union(*(d.supersedes for d in deltas))
        plan = PublishPlan("merge", (base,), touched, f"{len(deltas)} deltas merged into one")
    else:
        plan = PublishPlan("append", tuple(parts), frozenset(changed), "delta")
    in_deltas = sum(len(d.points or ()) for d in plan.keep[1:]) + len(plan.touched)
    if in_deltas > policy.max_share * base.count:
        return PublishPlan("full", reason=f"{in_deltas} points in deltas > {policy.max_share:g} x base {base.count}")
    return plan
