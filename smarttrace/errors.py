"""Errors a user can act on.

Every error raised at a boundary (a file, a config value, a model) names the thing and the
problem, so the message alone tells the user what to fix.
"""


class SmartTraceError(Exception):
    """Base class for errors meant to be shown to a user without a traceback."""


class ConfigError(SmartTraceError):
    """A configuration file is missing, unparsable, or holds a bad value."""


class AssetError(SmartTraceError):
    """A model or sample file is missing, corrupt (hash mismatch) or cannot be fetched."""


class VideoError(SmartTraceError):
    """A camera's video is missing, unreadable or empty."""


class ArtifactError(SmartTraceError):
    """A Parquet artifact is missing, corrupt or written with another schema."""
