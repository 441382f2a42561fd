#!/usr/bin/env python3
"""Screenshots of the example site's posts, for a reviewer to look at.

Builds the site (default: content/) into a temporary directory, serves it on 127.0.0.1
from a thread, and with headless Chromium (playwright) saves, for every post in the
feed, a full-page screenshot at desktop (1280 px) and phone (390 px) widths into
bench/out/. It also saves an element screenshot of a hierarchy figure as
docs/figure.png, the README's picture: the first one rooted at --figure-root (default
fc6_245, the example site's depth-5 sneaker tree), else the first one found
(--figure '' skips it).

    python bench/screenshots.py [SITE_DIR] [--out bench/out] [--figure docs/figure.png]
                                [--figure-root UNIT]

Not a test: nothing is asserted beyond the pages loading without outside requests.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import subprocess
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
WIDTHS = {"desktop": 1280, "phone": 390}
ATOM = "{http://www.w3.org/2005/Atom}"
FIGURE_MAX_BYTES = 300_000


def build(site: Path, out: Path) -> None:
    """`build.py build SITE --out OUT --base-url / -q` as a user runs it (the site's own
    cache); base_url / because the server serves OUT at its root."""
    subprocess.run([sys.executable, str(ROOT / "build.py"), "build", str(site),
                    "--out", str(out), "--base-url", "/", "-q"], check=True)


def post_paths(out: Path) -> list[str]:
    """The URL paths of the posts, in feed order (newest first)."""
    feed = ET.parse(out / "feed.xml").getroot()
    paths = []
    for entry in feed.iter(f"{ATOM}entry"):
        link = entry.find(f"{ATOM}link[@rel='alternate']")
        href = link.get("href")
        # the feed's links are absolute when site.toml sets `url`; keep the path only
        paths.append("/" + href.split("://", 1)[-1].split("/", 1)[-1] if "://" in href else href)
    return paths


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory: Path) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(_Quiet, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def slug(path: str) -> str:
    return path.strip("/").replace("/", "-") or "index"


def pick_tree(page, root: str | None):
    """The first hierarchy figure rooted at `root` on the page, else the first one."""
    if root:
        tree = page.query_selector(f'figure.ft-hierarchy:has(.ft-tree[data-root="{root}"])')
        if tree is not None:
            return tree
    return page.query_selector("figure.ft-hierarchy")


def load(browser, base: str, path: str, width: int):
    """A page at `width`, fully loaded (lazy images too); and the outside URLs it asked for."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    outside = []
    page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
    page.goto(base + path)
    page.wait_for_load_state("networkidle")
    # lazy images below the fold: scroll through so that all of them load
    page.evaluate("""async () => {
      for (let y = 0; y < document.body.scrollHeight; y += 600) {
        window.scrollTo(0, y); await new Promise(r => setTimeout(r, 30)); }
      window.scrollTo(0, 0); }""")
    page.wait_for_load_state("networkidle")
    return page, outside


def shoot(base: str, paths: list[str], out_dir: Path, figure: Path | None,
          figure_root: str | None = None) -> list[str]:
    """Save the screenshots; return a line per file written."""
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    lines, figure_done = [], figure is None
    fallback = None  # the first page with any tree, in case none is rooted at figure_root
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for path in paths:
            for name, width in WIDTHS.items():
                page, outside = load(browser, base, path, width)
                target = out_dir / f"{slug(path)}-{name}.png"
                page.screenshot(path=str(target), full_page=True)
                wide = page.evaluate("document.documentElement.scrollWidth")
                note = f" (page is {wide}px wide)" if wide > width else ""
                if outside:
                    note += f" ({len(outside)} outside requests: {outside[0]} ...)"
                lines.append(f"{target}{note}")
                if not figure_done and name == "desktop":
                    tree = pick_tree(page, figure_root)
                    if tree is not None and (not figure_root or _root(tree) == figure_root):
                        lines.append(_save_tree(tree, figure, path))
                        figure_done = True
                    elif tree is not None and fallback is None:
                        fallback = path
                page.close()
        if not figure_done and fallback is not None:
            page, _ = load(browser, base, fallback, WIDTHS["desktop"])
            lines.append(_save_tree(pick_tree(page, None), figure, fallback)
                         + f" (no tree rooted at {figure_root})")
            page.close()
        browser.close()
    return lines


def _root(tree) -> str | None:
    return tree.eval_on_selector(".ft-tree", "el => el.dataset.root")


def _save_tree(tree, figure: Path, path: str) -> str:
    figure.parent.mkdir(parents=True, exist_ok=True)
    tree.scroll_into_view_if_needed()
    tree.screenshot(path=str(figure))
    size = figure.stat().st_size
    warn = f" -- over {FIGURE_MAX_BYTES} bytes" if size > FIGURE_MAX_BYTES else ""
    return f"{figure} ({size} bytes, {_root(tree)} tree from {path}){warn}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("site", nargs="?", default=str(ROOT / "content"), help="site directory")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"), help="screenshot folder")
    ap.add_argument("--figure", default=str(ROOT / "docs" / "figure.png"),
                    help="where the hierarchy figure goes ('' to skip)")
    ap.add_argument("--figure-root", default="fc6_245",
                    help="root unit of the hierarchy figure to save ('' for the first one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ft-shots-") as tmp:
        site_out = Path(tmp) / "site"
        build(Path(args.site), site_out)
        paths = post_paths(site_out)
        httpd = serve(site_out)
        try:
            base = f"http://127.0.0.1:{httpd.server_port}"
            figure = Path(args.figure) if args.figure else None
            for line in shoot(base, paths, Path(args.out), figure, args.figure_root or None):
                print(line)
        finally:
            httpd.shutdown()


if __name__ == "__main__":
    main()
