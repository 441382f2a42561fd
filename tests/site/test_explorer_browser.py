"""The explorer in headless Chromium: a reader clicks three levels down a hierarchy and
sees the precomputed tiles of that path, a reload with the fragment reopens it, the keys
work, the breadcrumb goes back up, nothing is fetched from outside the site, and with
JavaScript off (or before any click) the figure is the static one."""
import json

import pytest

from browser_support import needs_chromium, serve
from generator.site.pipeline import build
from test_explorer_support import make_explore_site

pytestmark = needs_chromium
FIG = "figure.ft-hierarchy >> nth=0"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site served under /blog/, its base_url."""
    root = make_explore_site(tmp_path_factory.mktemp("explorebrowser") / "site")
    build(root, quiet=True)
    with serve(root / "out", prefix="/blog/") as origin:
        yield root, origin


def _doc(root, page):
    url = page.locator(FIG).locator(".ft-tree").get_attribute("data-explore")
    doc = json.loads((root / "out" / url[len("/blog/"):]).read_text())
    return {n["path"]: n for n in doc["nodes"]}, doc


def _open(browser, origin, fragment="", **context):
    ctx = browser.new_context(viewport={"width": 1000, "height": 900}, **context)
    page = ctx.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{origin}/blog/explore/{fragment}")
    page.wait_for_load_state("networkidle")
    return ctx, page, requests


SHOWN = """fig => ({
  nodes: [...fig.querySelectorAll('.ft-node')].map(d => [d.dataset.path, d.querySelector('img').getAttribute('src'),
                                                         d.getAttribute('aria-expanded')]),
  edges: [...fig.querySelectorAll('g.ft-edge')].map(g => [g.dataset.parent, g.dataset.child, +g.dataset.weight]),
  crumbs: [...fig.querySelectorAll('.ft-crumbs button')].map(b => b.textContent),
  status: fig.querySelector('.ft-explore-status').textContent,
  hash: location.hash })"""


def _shown(page):
    return page.locator(FIG).evaluate(SHOWN)


def _expect_path(page, nodes, path):
    """What is drawn is exactly the precomputed tree along `path`: each node on it with
    its children, every tile the JSON's, a line per child with the JSON's weight."""
    s = _shown(page)
    want = [path[0]] + [c for i in range(len(path)) for c in nodes["-".join(path[:i + 1])]["children"]]
    assert [p for p, _, _ in s["nodes"]] == want
    for p, src, expanded in s["nodes"]:
        assert src == nodes[p]["tile"]
        on_path = p in {"-".join(path[:i + 1]) for i in range(len(path))}
        assert expanded == ("true" if on_path and nodes[p]["children"] else "false")
    edges = [(nodes[c.rsplit("-", 1)[0]]["unit"], nodes[c]["unit"], nodes[c]["weight"])
             for c in want[1:]]
    assert [(a, b) for a, b, _ in s["edges"]] == [(a, b) for a, b, _ in edges]
    assert [w for _, _, w in s["edges"]] == pytest.approx([w for _, _, w in edges], rel=1e-12)
    assert s["crumbs"] == [p.split("_")[0] + "_" + p.split("_")[1] for p in path]
    assert s["hash"] == "#fig-fc5_1=" + "-".join(path)
    return s


def _wait_hash(page, path):
    page.wait_for_function("h => location.hash === h", arg="#fig-fc5_1=" + "-".join(path))


def test_three_levels_reload_keyboard_and_only_local_requests(site, browser):
    root, origin = site
    ctx, page, requests = _open(browser, origin)
    nodes, doc = _doc(root, page)
    static = _shown(page)
    assert static["crumbs"] == [] and static["hash"] == ""
    # Three clicks, each on a unit the static figure does not follow: the second-heaviest
    # child at every level, so every row comes from the explorer's data.
    path = ["fc5_1"]
    for _ in range(3):
        child = nodes["-".join(path)]["children"][1]
        page.locator(FIG).locator(f'.ft-node[data-path="{child}"]').click()
        path.append(nodes[child]["unit"])
        _wait_hash(page, path)
        _expect_path(page, nodes, path)
    assert len(path) == 4 and page.locator(FIG).locator(".ft-node").count() == 1 + 2 * 4

    # a reload with the fragment opens the same path
    page.reload()
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => document.querySelectorAll('figure .ft-crumbs button').length === 4")
    _expect_path(page, nodes, path)

    # the breadcrumb goes back up
    page.locator(FIG).locator(".ft-crumbs button").nth(1).click()
    _wait_hash(page, path[:2])
    _expect_path(page, nodes, path[:2])

    # keyboard: tiles are focusable buttons; Enter and Space open them, focus stays put
    target = nodes["-".join(path[:2])]["children"][0]
    tile = page.locator(FIG).locator(f'.ft-node[data-path="{target}"]')
    assert tile.get_attribute("role") == "button" and tile.get_attribute("tabindex") == "0"
    tile.focus()
    page.keyboard.press("Enter")
    path = path[:2] + [nodes[target]["unit"]]
    _wait_hash(page, path)
    _expect_path(page, nodes, path)
    assert page.evaluate("document.activeElement.dataset.path") == target
    deeper = nodes[target]["children"][1]
    page.locator(FIG).locator(f'.ft-node[data-path="{deeper}"]').focus()
    page.keyboard.press(" ")
    path.append(nodes[deeper]["unit"])
    _wait_hash(page, path)
    _expect_path(page, nodes, path)
    # Enter on the open node closes it again
    page.keyboard.press("Enter")
    _wait_hash(page, path[:-1])
    _expect_path(page, nodes, path[:-1])

    # every request stayed on the site, and the explorer data was one of them
    assert requests and all(u.startswith(origin + "/blog/") for u in requests)
    assert any(u.endswith(".json") and "/blog/figures/explore-" in u for u in requests)
    ctx.close()


def test_nodes_past_the_budget_say_so(site, browser):
    root, origin = site
    ctx, page, _ = _open(browser, origin)
    fig = page.locator("figure.ft-hierarchy >> nth=1")
    url = fig.locator(".ft-tree").get_attribute("data-explore")
    nodes = {n["path"]: n for n in json.loads((root / "out" / url[len("/blog/"):]).read_text())["nodes"]}
    closed = next(p for p, n in nodes.items() if n["stop"] == "budget" and p.count("-") == 1)
    fig.locator(f'.ft-node[data-path="{closed}"]').click()
    page.wait_for_function("() => document.querySelectorAll('figure.ft-hierarchy')[1]"
                           ".querySelector('.ft-crumbs button[aria-current]')")
    status = fig.locator(".ft-explore-status").text_content()
    assert nodes[closed]["unit"] in status and "not precomputed" in status
    assert fig.locator(f'.ft-node[data-path="{closed}"]').get_attribute("aria-expanded") == "false"
    ctx.close()


def test_without_javascript_or_before_a_click_the_figure_is_static(site, browser):
    _, origin = site
    boxes = []
    for js in (False, True):
        ctx, page, _ = _open(browser, origin, java_script_enabled=js)
        fig = page.locator(FIG)
        boxes.append([(n.get_attribute("data-path"), n.bounding_box(), n.locator("img").get_attribute("src"))
                      for n in fig.locator(".ft-node").all()])
        if not js:
            assert fig.locator("[role=button], .ft-crumbs, .ft-explore-status").count() == 0
        ctx.close()
    no_js, with_js = boxes
    assert [(p, s) for p, _, s in no_js] == [(p, s) for p, _, s in with_js] and len(no_js) == 3
    for (_, a, _), (_, b, _) in zip(no_js, with_js):
        # the breadcrumb is hidden until used, so not even a shift: only the status line
        # below the tree is added
        assert a == pytest.approx(b, abs=0.5)
