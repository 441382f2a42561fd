"""The built fixture site in headless Chromium, served from 127.0.0.1: KaTeX lays
out math with its own fonts, hovering a `.zoom_img` image scales it, the layout
fits a phone, nothing is requested from elsewhere, and the console stays clean."""
from __future__ import annotations

from urllib.parse import urlparse

import pytest
from site_helpers import FakeStage, copy_site

from browser_support import needs_chromium, serve
from generator.site.pipeline import build
from generator.site.theme import SITE_SRC

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not (SITE_SRC / "vendor" / "katex" / "katex.min.css").exists():
        pytest.skip("KaTeX assets missing: run `make katex` (npm ci + copy into site_src/vendor/katex)")
    root = tmp_path_factory.mktemp("www")
    site = copy_site("kramdown_site", root / "src")
    build(site, out=root / "REPO", stage_factory=FakeStage, quiet=True)
    with serve(root) as origin:
        yield f"{origin}/REPO/"


def open_page(browser, url, **context):
    """A page that records console errors and every request, and blocks non-local ones."""
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    seen = {"errors": [], "requests": [], "outside": []}
    page.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))

    def route(r):
        u = urlparse(r.request.url)
        seen["requests"].append(r.request.url)
        if u.scheme in ("data", "blob", "about") or u.hostname == "127.0.0.1":
            return r.continue_()
        seen["outside"].append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="load")
    page.evaluate("document.fonts.ready.then(() => true)")
    return page, seen


def test_math_is_laid_out_with_local_katex_fonts(server, browser):
    page, seen = open_page(browser, server + "edges-between-units/")
    sizes = page.eval_on_selector_all(
        ".post-body .katex", "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; })")
    assert len(sizes) == 6  # h^7, a_i, b^2, the array, E = mc^2, x^2 in the footnote
    assert all(w > 0 and h > 0 for w, h in sizes), sizes
    # The display array is taller than a line of text: KaTeX's CSS did the layout.
    tall = page.eval_on_selector(".math-display .katex", "e => e.getBoundingClientRect().height")
    assert tall > 40
    fonts = page.evaluate("[...document.fonts].filter(f => f.status === 'loaded').map(f => f.family)")
    assert any("KaTeX" in f for f in fonts), fonts
    assert any("/REPO/assets/vendor/katex/fonts/" in u for u in seen["requests"])
    assert seen["outside"] == [] and seen["errors"] == []


def test_hovering_a_zoom_img_scales_it(server, browser):
    page, seen = open_page(browser, server + "edges-between-units/", reduced_motion="reduce")
    img = page.locator(".zoom_img img").first
    img.scroll_into_view_if_needed()
    before = img.bounding_box()
    assert page.evaluate("e => getComputedStyle(e).transform", img.element_handle()) == "none"
    img.hover()
    transform = page.evaluate("e => getComputedStyle(e).transform", img.element_handle())
    after = img.bounding_box()
    assert transform.startswith("matrix(") and transform != "none"
    assert after["width"] > before["width"] * 1.4
    page.mouse.move(0, 0)
    assert page.evaluate("e => getComputedStyle(e).transform", img.element_handle()) == "none"
    assert seen["outside"] == [] and seen["errors"] == []


@pytest.mark.parametrize("path", ["", "first-light/", "tags/", "tags/kramdown/", "404.html"])
def test_pages_fit_a_phone_and_stay_local(server, browser, path):
    page, seen = open_page(browser, server + path, viewport={"width": 375, "height": 740})
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    assert page.locator("header.site-header a.site-title").count() == 1
    assert seen["outside"] == []
    assert seen["errors"] == []
