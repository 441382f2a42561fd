"""Issue 15 in headless Chromium, served under a project-page base URL: a figure
reference jumps to its figure, the search page finds posts offline, no page load hits
a 404 (favicon), the scheme toggle is remembered, and text, captions, KaTeX, citations
and hierarchy edges keep their contrast in both schemes."""
from __future__ import annotations

from urllib.parse import urlparse

import pytest
from PIL import Image

from browser_support import needs_chromium, serve
from generator.site.pipeline import build
from generator.site.theme import SITE_SRC

pytestmark = needs_chromium

POST = r"""---
title: Why is this a sneaker?
date: 2024-05-01
description: A hierarchy of units on a sneaker.
bibliography: refs.bib
---

The tree in @fig-tree follows guided backpropagation [@springenberg2015], and
$w_c = |\operatorname{mean}(h \odot G)|$ is the edge weight of @eq-weight.

<< hierarchy fc6_3 id=fig-tree caption="The units below fc6_3" >>

$$ w_c = \left|\operatorname{mean}(h_B[c] \odot G_B[c])\right| \label{eq-weight} $$

Long text so the figure is below the fold.

""" + "\n\nFiller paragraph about sneakers and filters.\n" * 40

BIB = r"""@article{springenberg2015,
  author = {Springenberg, Jost Tobias and Dosovitskiy, Alexey and Brox, Thomas and Riedmiller, Martin},
  title = {Striving for Simplicity: The All Convolutional Net},
  journal = {ICLR (workshop track)}, year = {2015}}
"""

OTHER = """---
title: A deconvnet walkthrough
date: 2024-06-01
---

Zeiler and Fergus's deconvnet, step by step.
"""


class TreeStage:
    """A figures stage whose figure looks like a hierarchy: SVG edges, labels, tiles."""

    def __init__(self, site, cache_dir, quiet=False):
        self.counters = {}

    def plan(self, directive, params, page_meta):
        pass

    def run(self):
        pass

    def render(self, directive):
        edges = "".join(f'<g class="ft-edge"><line class="ft-edge-line" x1="50" y1="10" x2="{x}" y2="60" '
                        f'style="stroke-width: 2px"/></g>' for x in (10, 50, 90))
        return ('<figure class="ft-figure ft-hierarchy zoom_img"><div class="ft-tree" style="aspect-ratio: 2">'
                f'<svg class="ft-lines" viewBox="0 0 100 70" preserveAspectRatio="none">{edges}</svg>'
                '<div class="ft-node" style="left: 40%; top: 0; width: 20%"><div class="ft-head">'
                '<span class="ft-label">fc6_3</span></div></div></div>'
                f'<figcaption>{directive.get("caption")}</figcaption></figure>')

    def files(self):
        return {}

    def watch_paths(self):
        return []


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not (SITE_SRC / "vendor" / "katex" / "katex.min.css").exists():
        pytest.skip("KaTeX assets missing: run `make katex`")
    root = tmp_path_factory.mktemp("www")
    site = root / "src"
    (site / "posts").mkdir(parents=True)
    (site / "site.toml").write_text('title = "featuretree"\n')
    (site / "posts" / "2024-05-01-sneaker.md").write_text(POST)
    (site / "posts" / "2024-06-01-deconvnet.md").write_text(OTHER)
    (site / "posts" / "refs.bib").write_text(BIB)
    Image.new("RGB", (8, 8)).save(site / "posts" / "unused.png")
    build(site, out=root / "REPO", stage_factory=TreeStage, quiet=True, base_url="/REPO/")
    with serve(root) as origin:
        yield f"{origin}/REPO/"


def open_page(browser, url, **context):
    """A page recording console errors, failed responses and requests leaving the site."""
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    seen = {"errors": [], "failed": [], "outside": []}
    page.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("response", lambda r: r.status >= 400 and seen["failed"].append(f"{r.status} {r.url}"))

    def route(r):
        u = urlparse(r.request.url)
        if u.scheme in ("data", "blob", "about") or u.hostname == "127.0.0.1":
            return r.continue_()
        seen["outside"].append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="load")
    page.evaluate("document.fonts.ready.then(() => true)")
    return page, seen


def clean(seen):
    return seen["errors"] == [] and seen["failed"] == [] and seen["outside"] == []


def test_a_figure_reference_jumps_to_its_figure(server, browser):
    page, seen = open_page(browser, server + "sneaker/", viewport={"width": 1280, "height": 700})
    link = page.locator("a.xref", has_text="Figure 1")
    assert link.get_attribute("href") == "#fig-tree"
    assert page.locator("#fig-tree .fig-label").inner_text() == "Figure 1."
    link.click()
    page.wait_for_function("location.hash === '#fig-tree'")
    top = page.eval_on_selector("#fig-tree", "e => e.getBoundingClientRect().top")
    assert -2 < top < 50
    assert page.locator("a.xref", has_text="Equation (1)").count() == 1
    assert page.locator("#references li").count() == 1
    assert clean(seen), seen


def test_search_finds_posts_offline_under_base_url(server, browser):
    if not (SITE_SRC / "vendor" / "minisearch" / "minisearch.js").exists():
        pytest.skip("MiniSearch missing: run `make minisearch`")
    page, seen = open_page(browser, server + "search/")
    page.wait_for_function("document.querySelector('.search-status').textContent.includes('indexed')")
    page.fill("#search-input", "deconvnet")
    page.wait_for_selector(".search-results li")
    hits = page.eval_on_selector_all(".search-results .post-link", "as => as.map(a => [a.textContent, a.getAttribute('href')])")
    assert hits[0] == ["A deconvnet walkthrough", "/REPO/deconvnet/"]
    assert "?q=deconvnet" in page.url
    page.fill("#search-input", "sneakr")  # fuzzy
    page.wait_for_function("document.querySelector('.search-results .post-link')?.textContent === 'Why is this a sneaker?'")
    again, seen2 = open_page(browser, server + "search/?q=guided")
    again.wait_for_selector(".search-results li")
    assert again.locator(".search-results .post-link").first.inner_text() == "Why is this a sneaker?"
    assert clean(seen) and clean(seen2), (seen, seen2)


@pytest.mark.parametrize("path", ["", "sneaker/", "search/", "tags/", "404.html"])
def test_no_page_load_fails_a_request(server, browser, path):
    page, seen = open_page(browser, server + path)
    assert page.eval_on_selector('link[rel="icon"]', "l => l.href").endswith("/REPO/assets/favicon.svg")
    ok = page.evaluate("fetch(document.querySelector('link[rel=icon]').href).then(r => r.status)")
    assert ok == 200
    assert clean(seen), seen


def test_the_scheme_toggle_is_remembered(server, browser):
    page, seen = open_page(browser, server + "sneaker/", color_scheme="light")
    button = page.locator("button.theme-toggle")
    assert button.is_visible() and button.get_attribute("aria-pressed") == "false"
    bg = "getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(bg)
    button.click()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert button.get_attribute("aria-pressed") == "true"
    dark = page.evaluate(bg)
    assert dark != light
    page.goto(server + "search/")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark" and page.evaluate(bg) == dark
    page.locator("button.theme-toggle").click()
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "light" and page.evaluate(bg) == light
    assert clean(seen), seen
    system, seen2 = open_page(browser, server + "sneaker/", color_scheme="dark")
    assert system.evaluate(bg) == dark  # no choice made: the system's scheme
    assert system.locator("button.theme-toggle").get_attribute("aria-pressed") == "true"


CONTRAST = """([selector, nonText]) => {
  const parse = c => { const m = c.match(/[\\d.]+/g).map(Number); return m.length > 3 ? m : [...m, 1]; };
  const lum = ([r, g, b]) => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = e => { for (; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
    if (c[3] > 0.5) return c; } return [255, 255, 255, 1]; };
  return [...document.querySelectorAll(selector)].slice(0, 5).map(e => {
    const fg = parse(nonText ? getComputedStyle(e).stroke : getComputedStyle(e).color);
    const a = lum(fg), b = lum(background(e));
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  });
}"""

TEXT = ["main p", ".post-meta", ".site-header nav a", "figcaption", ".fig-label", ".ft-label",
        ".katex", "a.xref", ".citation a", ".references li", ".site-footer p"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_keeps_its_contrast_in_both_schemes(server, browser, scheme):
    page, seen = open_page(browser, server + "sneaker/", color_scheme="light")
    page.evaluate(f"localStorage.setItem('ft-theme', '{scheme}')")
    page.reload()
    page.evaluate("document.fonts.ready.then(() => true)")
    assert page.evaluate("document.documentElement.dataset.theme") == scheme
    low = {}
    for sel in TEXT:
        ratios = page.evaluate(CONTRAST, [sel, False])
        assert ratios, sel
        if min(ratios) < 4.5:
            low[sel] = min(ratios)
    edges = page.evaluate(CONTRAST, [".ft-edge-line", True])
    assert edges and min(edges) >= 3, edges  # non-text contrast (WCAG 1.4.11)
    assert low == {}, low
    assert clean(seen), seen
