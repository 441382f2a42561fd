"""Explorable hierarchies through the real build: the precomputed tree (schema, budget,
base URL, content-hashed files) equals the engine's hierarchy followed down each node's
own path, the static figure is unchanged, and the data is cached like any figure."""
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from PIL import Image

from generator.site.pipeline import build
from test_explorer_support import make_explore_site

REPO = Path(__file__).resolve().parents[2]
NODE_KEYS = {"path", "unit", "layer", "index", "weight", "activation", "tile", "children", "stop"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = make_explore_site(tmp_path_factory.mktemp("explore") / "site")
    return root, build(root, quiet=True)


def _figures(root):
    page = BeautifulSoup((root / "out" / "explore" / "index.html").read_text(), "html.parser")
    return page.find_all("figure", class_="ft-hierarchy")


def _doc(root, fig):
    url = fig.find(class_="ft-tree")["data-explore"]
    assert url.startswith("/blog/figures/explore-") and url.endswith(".json")
    path = root / "out" / url[len("/blog/"):]
    blob = path.read_bytes()
    assert path.name == f"explore-{hashlib.sha256(blob).hexdigest()[:24]}.json"
    return json.loads(blob)


def _file(root, url):
    assert url.startswith("/blog/figures/")
    return root / "out" / url[len("/blog/"):]


def test_schema_urls_and_files(built):
    root, result = built
    assert result.figures["computed"] == 3
    fig = _figures(root)[0]
    doc = _doc(root, fig)
    assert doc["root"] == "fc5_1" and doc["levels"] == 3 and doc["depth"] == 4
    assert doc["children"] == 2 and doc["tile_w"] == doc["tile_h"] == 24
    assert doc["budget"] == 300        # the default for 24x24 tiles
    nodes = {n["path"]: n for n in doc["nodes"]}
    assert len(nodes) == len(doc["nodes"]) == 1 + 2 + 4 + 8 + 16     # every node, 4 levels
    assert doc["nodes"][0]["path"] == "fc5_1"
    for n in doc["nodes"]:
        assert set(n) == NODE_KEYS
        assert n["path"].split("-")[-1] == n["unit"] and n["unit"] == f"{n['layer']}_{n['index']}"
        tile = _file(root, n["tile"])
        assert tile.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert tile.name == hashlib.sha256(tile.read_bytes()).hexdigest()[:24] + ".png"
        for c in n["children"]:
            assert c.rsplit("-", 1)[0] == n["path"] and c in nodes
        depth = n["path"].count("-")
        if depth < 4:
            assert len(n["children"]) == 2 and n["stop"] is None
        else:   # conv1, the lowest layer, four levels down
            assert n["children"] == [] and n["stop"] == "bottom" and n["layer"] == "conv1"
        ws = [nodes[c]["weight"] for c in n["children"]]
        assert ws == sorted(ws, reverse=True) and all(w >= 0 for w in ws)
    # the static figure's tiles are the explorer's tiles for the same paths
    for div in fig.find_all(class_="ft-node"):
        assert div.img["src"] == nodes[div["data-path"]]["tile"]


def test_budget_is_respected_breadth_first_by_weight(built):
    root, _ = built
    fig = _figures(root)[1]                    # fc4_3, children=3, explore=2, budget 10
    doc = _doc(root, fig)
    nodes = {n["path"]: n for n in doc["nodes"]}
    assert doc["budget"] == 10 and len(nodes) == 10
    level1 = nodes["fc4_3"]["children"]
    assert len(level1) == 3
    # 1 + 3 = 4 tiles leave room for two of the three level-1 nodes: the two heaviest
    opened = [p for p in level1 if nodes[p]["children"]]
    assert opened == level1[:2]
    assert nodes[level1[2]]["stop"] == "budget" and nodes[level1[2]]["children"] == []
    for p in opened:          # level 2 could go one level further, but the budget is spent
        for c in nodes[p]["children"]:
            assert nodes[c]["stop"] == "budget" and c.count("-") == 2
    assert doc["depth"] == 3
    # every static node is in the data
    assert {d["data-path"] for d in fig.find_all(class_="ft-node")} <= set(nodes)


def test_static_figure_is_unchanged_by_explore(built):
    """fc4_3 with explore=2 and without explore: the same HTML but the data URL."""
    root, _ = built
    _, explored, plain = _figures(root)
    assert plain.find(class_="ft-tree").get("data-explore") is None
    html = re.sub(r' data-explore="[^"]*"', "", str(explored))
    # figures are numbered in page order: the anchor and the label differ
    numbered = re.compile(r' id="figure-\d+"|<span class="fig-label">Figure \d+\.</span> ')
    assert numbered.sub("", html) == numbered.sub("", str(plain))


def _hierarchy_at(bp, path, children):
    """The engine's own tree followed down `path` (an independent run per node)."""
    from generator.vis.core.hierarchy import hierarchy

    units = path.split("-")
    tree = hierarchy(bp, units[0], depth=len(units), children=children, path=units[1:])
    node = tree
    for u in units[1:]:
        node = next(c for c in node.children if c.unit == u)
    return node


def _pixels(png_path):
    return np.asarray(Image.open(png_path)).astype(int)


def test_every_explored_node_equals_the_engine_hierarchy_down_its_path(built):
    from generator.vis.core.backprop import Backprop
    from generator.vis.render.display import to_pixels
    from generator.vis.core.inputs import load_input
    from generator.vis.core.models import load_model

    root, _ = built
    doc = _doc(root, _figures(root)[0])
    model = load_model(f"{root / 'net.py'}:build", str(root / "a.safetensors"), device="cpu")
    bp = Backprop(model, load_input(root / "images" / "one.png", model), "guided")
    nodes = {n["path"]: n for n in doc["nodes"]}
    checked = 0
    for n in doc["nodes"]:
        if not n["children"]:
            continue
        ref = _hierarchy_at(bp, n["path"], doc["children"])
        assert [c.unit for c in ref.children] == [nodes[c]["unit"] for c in n["children"]]
        for c, path in zip(ref.children, n["children"]):
            assert nodes[path]["weight"] == pytest.approx(c.weight, rel=1e-5, abs=1e-12)
            assert nodes[path]["activation"] == pytest.approx(c.activation, rel=1e-6)
            got = _pixels(_file(root, nodes[path]["tile"]))
            want = to_pixels(c.image, 99.5)[:, :, 0]
            assert np.abs(got - want).max() <= 1          # same picture, up to rounding
        checked += 1
    assert checked == 1 + 2 + 4 + 8


def test_deepest_path_equals_build_py_explain(built):
    """One leaf's whole path through the CLI (`build.py explain --path`)."""
    from generator.cli import main

    root, _ = built
    doc = _doc(root, _figures(root)[0])
    nodes = {n["path"]: n for n in doc["nodes"]}
    leaf = doc["nodes"][-1]["path"].split("-")
    result = CliRunner().invoke(main, [
        "explain", "--model", f"{root / 'net.py'}:build", "--weights", str(root / "a.safetensors"),
        "--image", str(root / "images" / "one.png"), "--root", leaf[0], "--depth", "3",
        "--children", "2", "--path", ",".join(leaf[1:4]), "--json", "-"])
    assert result.exit_code == 0, result.output
    node = json.loads(result.stdout[result.stdout.index("{"):])["tree"]
    for depth in range(1, 4):
        here = "-".join(leaf[:depth])
        assert [c["unit"] for c in node["children"]] == [nodes[p]["unit"] for p in nodes[here]["children"]]
        for c in node["children"]:
            assert nodes[c["path"]]["weight"] == pytest.approx(c["weight"], rel=1e-5, abs=1e-12)
        node = next(c for c in node["children"] if c["unit"] == leaf[depth])


def test_rebuild_reuses_everything_without_torch_and_params_are_in_the_key(built, tmp_path):
    root = tmp_path / "site"
    shutil.copytree(built[0], root, ignore=shutil.ignore_patterns("*.old-*"))  # see test_figures_build
    code = ("import json, sys; from generator.site.pipeline import build; "
            f"r = build({str(root)!r}, quiet=True); "
            "print(json.dumps([r.figures, 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    figures, torch_loaded = json.loads(out.strip().splitlines()[-1])
    assert figures["computed"] == 0 and figures["reused"] == 3 and torch_loaded is False
    assert _doc(root, _figures(root)[0])["levels"] == 3       # still published
    post = root / "posts" / "2024-02-01-explore.md"
    post.write_text(post.read_text().replace("explore_budget=10", "explore_budget=13"))
    again = build(root, quiet=True)
    assert again.figures["computed"] == 1 and again.figures["reused"] == 2
    assert len(_doc(root, _figures(root)[1])["nodes"]) == 13   # the third level-1 node opened too


def test_site_default_and_directive_override(tmp_path):
    """`[figures] explore` applies to every hierarchy; `explore=0` turns it off."""
    from generator.site.directives import DirectiveError, check_defaults, find_directives, validate
    from generator.vis.api import KINDS

    def params(text, site=None):
        d = find_directives(text, "p.md")[0]
        defaults = check_defaults(site or {}, "site.toml [figures]", lambda k: d.pos)
        return KINDS["hierarchy"].request_params(validate(d, defaults))

    assert "explore" not in params("<< hierarchy conv2_1 >>")
    on = params("<< hierarchy conv2_1 >>", {"explore": 2})
    assert on["explore"] == 2 and "explore_budget" not in on
    assert "explore" not in params("<< hierarchy conv2_1 explore=0 >>", {"explore": 2})
    both = params("<< hierarchy conv2_1 explore=1 explore_budget=50 >>", {"explore_budget": 9})
    assert (both["explore"], both["explore_budget"]) == (1, 50)
    assert "explore_budget" not in params("<< hierarchy conv2_1 >>", {"explore_budget": 9})
    with pytest.raises(DirectiveError, match=r"site.toml \[figures\]: explore must be an integer"):
        params("<< hierarchy conv2_1 >>", {"explore": "deep"})
    with pytest.raises(DirectiveError, match=r"p.md:1:32: explore_budget=0 is out of range; valid: 1\.\.100000"):
        params("<< hierarchy conv2_1 explore=1 explore_budget=0 >>")


def test_default_budget_keeps_large_tiles_to_a_few_megabytes():
    from generator.vis.api import default_explore_budget

    assert default_explore_budget((1, 64, 64)) == 300         # the default model: ~0.6 MB
    assert default_explore_budget((1, 24, 24)) == 300
    assert default_explore_budget((3, 224, 224)) == 34        # ImageNet tiles: ~115 kB each (2.3 B/px)
