"""Person search: the engine behind `smarttrace search`, the dashboard and the HTTP API.

`search.engine` (SearchEngine, load_engine) is the entry point; the other modules are its parts:
`images` (reading uploads), `person` (finding the person in one), `text` (description scoring),
`results` (what a search returns), `clips` (video clips), `errors`.
"""

from search.engine import SearchEngine, load_engine
from search.errors import NoIndexError, NotInIndexError, SearchInputError, UnsafePathError
from search.images import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, decode_image
from search.results import IndexSummary, PersonResult, SearchResults, TrackletHit

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "IndexSummary",
    "NoIndexError",
    "PersonResult",
    "SearchEngine",
    "SearchInputError",
    "SearchResults",
    "TrackletHit",
    "NotInIndexError",
    "UnsafePathError",
    "decode_image",
    "load_engine",
]
