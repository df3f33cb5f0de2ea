"""The daemon's web server: uvicorn serving the kiosk and ops app on a background thread.

`start` returns once uvicorn listens (or raises DaemonError when it cannot: the port is in
use); `stop` asks it to exit and joins the thread. The uvicorn keyword arguments come from the
kiosk settings (edge.kiosk.serving), decided when the daemon is built.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from edge.operations.errors import DaemonError


class WebServer:
    def __init__(self, app: Any, uvicorn_kwargs: dict[str, Any]) -> None:
        import uvicorn

        self.host, self.port = uvicorn_kwargs.get("host"), uvicorn_kwargs.get("port")
        self.server = uvicorn.Server(uvicorn.Config(app, **uvicorn_kwargs))
        self.thread = threading.Thread(target=self.server.run, name="kiosk-http", daemon=True)

    def start(self, timeout_s: float = 10.0) -> WebServer:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started and time.monotonic() < deadline:
            if not self.thread.is_alive():
                raise DaemonError(f"the kiosk web server could not start on "
                                  f"{self.host}:{self.port}: is the port in use? Change "
                                  "kiosk.port")
            time.sleep(0.02)
        return self

    def stop(self, join_s: float = 5.0) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(join_s)
