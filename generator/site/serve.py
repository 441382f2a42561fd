"""Local preview: serve the built site on 127.0.0.1, rebuild when a source changes,
and reload open pages (server-sent events).

The preview is built apart from the published site, into `<output>.preview` beside it
(e.g. `_site.preview`), drafts included: what `serve` shows never lands in the output
that is published, unless `--out` asks for it. A failed rebuild sends its one-line error
to every open page, which shows it as an overlay; the next good build reloads them.

The reload script is injected into HTML responses by this server only; the
files on disk (and the published site) never contain it.
"""
from __future__ import annotations

import http.server
import json
import re
import sys
import threading
from functools import partial
from pathlib import Path

from .config import SiteConfig, load_config
from .errors import BuildError
from .theme import SITE_SRC, TEMPLATES

RELOAD_PATH = "/__featuretree_reload"
RELOAD_SCRIPT = (
    "<script>(function(){var s=new EventSource(%r);"
    "s.onmessage=function(){location.reload();};"
    "s.addEventListener('builderror',function(e){"
    "var d=document.getElementById('ft-build-error');"
    "if(!d){d=document.createElement('div');d.id='ft-build-error';d.setAttribute('role','alert');"
    "d.style.cssText='position:fixed;left:0;right:0;top:0;z-index:2147483647;background:#9b1c1c;"
    "color:#fff;font:14px/1.5 ui-monospace,monospace;padding:12px 16px;white-space:pre-wrap;"
    "box-shadow:0 2px 8px rgba(0,0,0,.4)';document.body.appendChild(d);}"
    "d.textContent='featuretree: the rebuild failed (this page is the last good build)\\n'"
    "+JSON.parse(e.data);});})();</script>" % RELOAD_PATH
).encode()
NOT_BUILT = b"<!doctype html><title>featuretree preview</title><body><p>Nothing built yet.</p></body>"


class Reloads:
    """A counter that SSE clients wait on; each rebuild bumps it. `error` holds the last
    rebuild's one-line error (None after a good build)."""

    def __init__(self):
        self.version = 0
        self.cond = threading.Condition()
        self.closing = False
        self.error: str | None = None

    def bump(self, error: str | None = None) -> None:
        with self.cond:
            self.version += 1
            self.error = error
            self.cond.notify_all()

    def event(self) -> bytes:
        """What a client is sent after a bump: a reload, or the build error."""
        if self.error is None:
            return b"data: reload\n\n"
        return b"event: builderror\ndata: " + json.dumps(self.error).encode() + b"\n\n"

    def close(self) -> None:
        with self.cond:
            self.closing = True
            self.cond.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        with self.cond:
            self.cond.wait_for(lambda: self.version != seen or self.closing, timeout)
            return self.version


LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}


def host_status(host: str | None, bound: str, port: int) -> int:
    """200 when a Host header names localhost (127.0.0.1, ::1, [::1]) or the bound
    address, with no port or the served one; 400 when it is missing or malformed,
    421 (misdirected) for any other host."""
    if not host:
        return 400
    host = host.strip().lower()
    m = re.fullmatch(r"\[([0-9a-f:.]+)\](?::(\d+))?|([^:\[\]]+)(?::(\d+))?|([0-9a-f:]*:[0-9a-f:]*)", host)
    if not m:
        return 400
    name = m.group(1) or m.group(3) or m.group(5)
    given = m.group(2) or m.group(4)
    if given is not None and int(given) != port:
        return 421
    return 200 if name in LOCAL_NAMES | {bound.lower()} else 421


class PreviewHandler(http.server.SimpleHTTPRequestHandler):
    """Static files under `base_url`, the reload stream, and script injection."""

    def __init__(self, *args, base_url: str, reloads: Reloads, **kwargs):
        self.base_url = base_url
        self.reloads = reloads
        super().__init__(*args, **kwargs)

    def log_message(self, fmt, *args):  # quiet: the terminal shows builds, not requests
        pass

    def translate_path(self, path):
        clean = path.split("?", 1)[0].split("#", 1)[0]
        if clean.startswith(self.base_url):
            path = "/" + path[len(self.base_url):]
        else:
            path = "/__outside_base_url__"
        return super().translate_path(path)

    def _host_ok(self) -> bool:
        """Answer only requests addressed to this machine by name or to the bound address:
        a page elsewhere cannot reach the preview through DNS rebinding."""
        status = host_status(self.headers.get("Host"), *self.server.server_address[:2])
        if status != 200:
            self.send_error(status, "Host header must name localhost or the bound address")
        return status == 200

    def do_HEAD(self):
        if self._host_ok():
            super().do_HEAD()

    def do_GET(self):
        if not self._host_ok():
            return
        if self.path == RELOAD_PATH:
            return self._events()
        if self.path in ("/", "") and self.base_url != "/":
            self.send_response(302)
            self.send_header("Location", self.base_url)
            self.end_headers()
            return
        fs = Path(self.translate_path(self.path))
        if fs.is_dir() and self.path.split("?", 1)[0].endswith("/"):
            fs = fs / "index.html"
        if fs.suffix == ".html" and fs.is_file():
            return self._html(fs)
        if not fs.exists():
            return self._not_found()
        return super().do_GET()

    def _html(self, fs: Path, status: int = 200) -> None:
        data = fs.read_bytes()
        i = data.rfind(b"</body>")
        data = data[:i] + RELOAD_SCRIPT + data[i:] if i >= 0 else data + RELOAD_SCRIPT
        self._send_html(data, status)

    def _not_found(self) -> None:
        page = Path(self.directory) / "404.html"
        if page.is_file():
            return self._html(page, 404)
        self._html_bytes(NOT_BUILT, 404)   # still a page, so a build error shows on it

    def _html_bytes(self, data: bytes, status: int) -> None:
        self._send_html(data + RELOAD_SCRIPT, status)

    def _send_html(self, data: bytes, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _events(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        seen = self.reloads.version
        try:
            self.wfile.write(b": connected\n\n")
            if self.reloads.error is not None:   # a page opened while the build is broken
                self.wfile.write(self.reloads.event())
            self.wfile.flush()
            while not self.reloads.closing:
                now = self.reloads.wait(seen, timeout=15)
                if self.reloads.closing:
                    break
                self.wfile.write(self.reloads.event() if now != seen else b": keep-alive\n\n")
                self.wfile.flush()
                seen = now
        except (BrokenPipeError, ConnectionResetError):
            pass


def preview_dir(config: SiteConfig) -> Path:
    """Where `serve` builds unless told otherwise: beside the output, never in it."""
    return config.output.with_name(config.output.name + ".preview")


def _watch_filter(config: SiteConfig, out: Path):
    from watchfiles import DefaultFilter

    skip = [config.output, config.cache, out]
    base = DefaultFilter()

    def allowed(change, path: str) -> bool:
        p = Path(path)
        if any(p.is_relative_to(s) for s in skip):
            return False
        if p.is_relative_to(config.output.parent):  # the build's own `<out>.tmp-*` / `.old-*` trees
            top = p.relative_to(config.output.parent).parts
            if top and top[0].startswith(config.output.name + "."):
                return False
        return base(change, path)

    return allowed


def serve(site_dir: str | Path, port: int = 8000, drafts: bool = True, out=None, echo=print) -> None:
    """Build, serve and rebuild on change until interrupted (Ctrl-C)."""
    from watchfiles import watch

    from .pipeline import build

    config = load_config(site_dir, output=out)
    out = Path(out) if out is not None else preview_dir(config)
    reloads = Reloads()

    def rebuild() -> list[Path]:
        try:
            result = build(site_dir, out=out, drafts=drafts, quiet=False)
        except BuildError as e:
            echo(f"error: {e}")
            reloads.bump(str(e))
            return []
        echo(result.summary())
        reloads.bump()
        return result.watch_paths

    extra = rebuild()
    out.mkdir(parents=True, exist_ok=True)
    handler = partial(PreviewHandler, directory=str(out), base_url=config.base_url, reloads=reloads)
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as e:
        raise BuildError(f"cannot listen on 127.0.0.1:{port} ({e.strerror}); pass another --port") from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    echo(f"serving {out} at http://127.0.0.1:{server.server_address[1]}{config.base_url} "
         f"(Ctrl-C stops)")
    sys.stdout.flush()
    try:
        while True:
            roots = {config.site_dir, TEMPLATES, SITE_SRC, *(Path(p) for p in extra)}
            roots = sorted(str(p) for p in roots if Path(p).exists())
            for _changes in watch(*roots, watch_filter=_watch_filter(config, out), raise_interrupt=True):
                new_extra = rebuild() or extra
                sys.stdout.flush()
                if set(new_extra) != set(extra):
                    extra = new_extra
                    break  # watch the new set of model/image files
    except KeyboardInterrupt:
        pass
    finally:
        reloads.close()
        server.shutdown()
