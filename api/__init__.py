"""SmartTrace's HTTP API (`smarttrace api CONFIG`): FastAPI over the `search` engine; see api/app.py."""

from api.app import create_app

__all__ = ["create_app"]
