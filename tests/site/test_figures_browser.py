"""Figures in headless Chromium: lines meet their tiles, hover zoom is not clipped or
covered, a phone shows the whole tree, and nothing is fetched from outside the site."""

import pytest

from browser_support import needs_chromium, serve
from generator.site.pipeline import build
from test_figures_support import make_site

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = make_site(tmp_path_factory.mktemp("figbrowser") / "site")
    build(root, quiet=True)
    with serve(root / "out") as origin:
        yield origin


def _open(browser, url, width):
    page = browser.new_page(viewport={"width": width, "height": 900})
    outside = []
    page.on("request", lambda r: None if r.url.startswith(url.split("/all")[0]) else outside.append(r.url))
    page.goto(url)
    page.wait_for_load_state("networkidle")
    return page, outside


LINE_ENDS = """fig => {
  const svg = fig.querySelector('svg'), box = svg.getBoundingClientRect();
  const vb = svg.viewBox.baseVal, sx = box.width / vb.width, sy = box.height / vb.height;
  const node = u => fig.querySelector(`.ft-node[data-unit="${u}"]`);
  return [...fig.querySelectorAll('g.ft-edge')].map(g => {
    const l = g.querySelector('line.ft-edge-line');
    const p = node(g.dataset.parent).querySelector('img').getBoundingClientRect();
    const c = node(g.dataset.child).getBoundingClientRect();
    return {
      x1: box.left + l.x1.baseVal.value * sx, y1: box.top + l.y1.baseVal.value * sy,
      x2: box.left + l.x2.baseVal.value * sx, y2: box.top + l.y2.baseVal.value * sy,
      pcx: p.left + p.width / 2, pbottom: p.bottom, ccx: c.left + c.width / 2, ctop: c.top,
      title: g.querySelector('title').textContent };
  });
}"""


@pytest.mark.parametrize("width", [1100, 375])
def test_lines_meet_tiles_and_page_fits(server, browser, width):
    page, outside = _open(browser, f"{server}/all/", width)
    fig = page.query_selector("figure.ft-hierarchy")
    ends = fig.evaluate(LINE_ENDS)
    assert len(ends) == 6
    for e in ends:
        assert abs(e["x1"] - e["pcx"]) < 1.5 and abs(e["y1"] - e["pbottom"]) < 1.5
        assert abs(e["x2"] - e["ccx"]) < 1.5 and abs(e["y2"] - e["ctop"]) < 1.5
        assert "edge weight" in e["title"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert outside == []
    page.close()


def test_hover_zoom_rises_above_neighbours(server, browser):
    page, _ = _open(browser, f"{server}/all/", 1100)
    img = page.query_selector("figure.ft-hierarchy .ft-node:nth-of-type(2) img")
    before = img.bounding_box()
    img.hover()
    page.wait_for_timeout(600)
    after = img.bounding_box()
    assert after["width"] > before["width"] * 1.2
    # the zoomed tile is on top at its own edge, where it now overlaps its neighbour/lines
    x, y = after["x"] + after["width"] - 3, after["y"] + 3
    top = page.evaluate(f"document.elementFromPoint({x}, {y}) === document.querySelector("
                        "'figure.ft-hierarchy .ft-node:nth-of-type(2) img')")
    assert top
    page.close()
