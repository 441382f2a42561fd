"""Headless Chromium for the browser tests: where it is, how it is started, and a local
HTTP server for a built site."""
from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium tries to reach Google at start-up.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
needs_chromium = [pytest.mark.browser,
                  pytest.mark.skipif(not CHROMIUM.exists(),
                                     reason="needs /usr/bin/chromium (apt-get install chromium)")]


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves `directory` under `prefix` (e.g. /blog/, a base_url), as GitHub Pages would;
    anything outside the prefix is a 404."""

    prefix = "/"

    def translate_path(self, path):
        if not path.startswith(self.prefix):
            return super().translate_path("/404")
        return super().translate_path("/" + path[len(self.prefix):])

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory: Path, prefix: str = "/"):
    """Serve `directory` at http://127.0.0.1:PORT`prefix`; yields the origin."""
    handler = type("Handler", (_Handler,), {"prefix": prefix})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
