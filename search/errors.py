"""The errors a search front end (CLI, dashboard, HTTP API) shows to its user as they are."""

from __future__ import annotations

from smarttrace.errors import SmartTraceError


class SearchInputError(SmartTraceError):
    """A query the user must change: not an image, too large, nobody in it, an empty description."""


class NoIndexError(SmartTraceError):
    """Nothing has been indexed yet for this config: the pipeline has to run first."""


class UnsafePathError(SearchInputError):
    """A path from the index points outside the run folder (`..`, absolute path or symlink)."""


class NotInIndexError(SearchInputError):
    """A global id or tracklet the index does not hold (a front end answers 'not found', not 'bad request')."""


class UnsupportedImageError(SearchInputError):
    """The upload is not an image in a format we read (an HTTP front end answers 415)."""


class ImageTooLargeError(SearchInputError):
    """The upload is over the byte or pixel limit (an HTTP front end answers 413)."""
