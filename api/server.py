"""Serving the API from inside another process: uvicorn in a background thread.

For tests, benchmarks and programs that embed the API next to other work; `smarttrace api` runs
uvicorn in the foreground instead. The socket is bound before the thread starts (port 0 = a free
port chosen by the OS), so the URL is known and no other process can take the port in between.
"""

from __future__ import annotations

import socket
import threading
import time

from fastapi import FastAPI

STARTUP_TIMEOUT_S = 30.0


class BackgroundServer:
    """`with BackgroundServer(app) as server: httpx.get(server.url + "/health")`."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        import uvicorn

        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this on Linux. Without it a pre-bound socket's replies (headers and
        # body written apart) met the client's delayed ACK: measured +44 ms on every request, /health too.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind((host, port))
        bound_host, bound_port = self._socket.getsockname()[:2]
        self.url = f"http://{'[' + bound_host + ']' if ':' in bound_host else bound_host}:{bound_port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="off", server_header=False))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"the API server on {self.url} did not start within {STARTUP_TIMEOUT_S:.0f} s")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting, finish the requests in flight, and release the port."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=STARTUP_TIMEOUT_S)
        self._socket.close()
