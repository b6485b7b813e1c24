"""Errors of the tracklet index, shared by its modules (`storage.index` re-exports them)."""

from __future__ import annotations

from smarttrace.errors import SmartTraceError


class IndexUnavailableError(SmartTraceError):
    """The index cannot be used: nothing uploaded yet, the server is unreachable, bad credentials."""


class IndexLockedError(IndexUnavailableError):
    """Another process held the embedded index folder for longer than `lock_timeout_s`."""


class IndexSchemaError(SmartTraceError):
    """A collection's vectors, or the vectors given to it, do not have the configured sizes."""


class EdgeIndexError(RuntimeError):
    """The engine failed on a version folder (a torn copy, a disk error): the message names it."""
