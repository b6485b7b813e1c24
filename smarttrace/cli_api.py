"""`smarttrace api CONFIG`: serve the HTTP API (api/app.py) with uvicorn.

Binds 127.0.0.1 unless told otherwise; a non-loopback address without a token gets a loud warning,
since the API has no user accounts. The models are loaded before the port opens, so the first
request is not the one that waits for them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _cmd_api(args: argparse.Namespace) -> int:
    os.environ.setdefault("YOLO_VERBOSE", "False")
    import uvicorn

    from api.app import api_token, create_app
    from search import SearchEngine
    from smarttrace.config import load_config

    config_path = Path(args.config).resolve()
    config = load_config(config_path)  # a bad config is one clear line (exit 2), not a traceback
    host = args.host or config.api.host
    port = args.port or config.api.port
    if host not in LOOPBACK:
        secured = "with its bearer token" if api_token(config.api) else "WITHOUT any authentication (set api.token)"
        print(f"smarttrace: warning: serving on {host} exposes the API to the network {secured}; under the AGPL, "
              "users of a network service must be offered its source (see README, Licences)", file=sys.stderr)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = SearchEngine(config)
    if not args.no_warm_up:
        engine.warm_up()
    app = create_app(engine)
    print(f"SmartTrace API on http://{host}:{port} (docs at /docs, config {config_path}); Ctrl-C stops it", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `smarttrace api` to the CLI's subcommands."""
    api = sub.add_parser("api", help="serve the HTTP search API (FastAPI; docs at /docs)")
    api.add_argument("config", help="YAML config, e.g. configs/demo.yaml (its api: section)")
    api.add_argument("--host", help="address to bind (default api.host, 127.0.0.1: this machine only)")
    api.add_argument("--port", type=int, help="port (default api.port, 8000)")
    api.add_argument("--no-warm-up", action="store_true", help="load the models on the first request instead")
    api.set_defaults(func=_cmd_api)
