"""Explored hierarchies (generator/vis/explore.py, through generator.vis.api): the tree
contains the static figure exactly, forced path units and skipped layers included, the
budget holds, and every expanded node's children are `hierarchy(..., path=...)`'s."""
from pathlib import Path

import pytest
import torch

from generator.vis import api
from generator.vis.core.backprop import Backprop
from generator.vis.core.explore import explore
from generator.vis.core.hierarchy import hierarchy
from generator.vis.core.models import load_model

TINY = f"{Path(__file__).parent / 'vis_tiny_models.py'}"


@pytest.fixture(scope="module")
def bp():
    model = load_model(f"{TINY}:chain", device="cpu")     # conv1..conv4, fc5, fc6, fc7
    torch.manual_seed(3)
    return Backprop(model, torch.rand(model.input_shape))


def _strongest(bp, name):
    layer = bp.model.layer(name)
    return bp.model.unit_name(layer, int(bp.acts[name].reshape(layer.size, -1).amax(1).argmax()))


def _weak(bp, root):
    """The root's lightest child: outside its top few, so a path naming it forces it in."""
    layer = bp.model.below(bp.model.parse_unit(root)[0])
    return hierarchy(bp, root, depth=1, children=layer.size).children[-1].unit


def _same(a, b):
    assert [n.path_name for n in a.walk()] == [n.path_name for n in b.walk()]
    for x, y in zip(a.walk(), b.walk()):
        assert x.activation == pytest.approx(y.activation, rel=1e-6)
        assert (x.weight is None) == (y.weight is None)
        if x.weight is not None:
            assert x.weight == pytest.approx(y.weight, rel=1e-5, abs=1e-12)
        torch.testing.assert_close(x.image, y.image, rtol=1e-4, atol=1e-4 * float(y.image.abs().max()) + 1e-12)


def test_static_tree_is_the_hierarchy_with_forced_units_and_skipped_layers(bp):
    root = _strongest(bp, "fc6")
    weak = _weak(bp, root)                                 # not among fc6's top 2
    path = [weak, _strongest(bp, "conv3")]                 # fc5 -> conv3 skips conv4
    ex = explore(bp, root, depth=3, children=2, path=path, levels=1, budget=1)
    static = hierarchy(bp, root, depth=3, children=2, path=path)
    _same(ex.static_tree(), static)
    assert len(static.children) == 3 and static.children[-1].unit == weak
    assert [c.layer for c in static.children[-1].children] == ["conv3"] * len(static.children[-1].children)
    # budget=1 cannot hold even the static figure: it is kept whole, nothing more is opened
    assert ex.size == sum(1 for _ in static.walk())
    assert set(ex.stops.values()) == {"budget"}


def test_budget_counts_tiles_and_opens_heaviest_first(bp):
    root = _strongest(bp, "fc7")
    full = explore(bp, root, depth=1, children=3, levels=2, budget=10_000)
    assert full.size == 1 + 3 + 9 + 27 and set(full.stops.values()) == {"depth"}
    small = explore(bp, root, depth=1, children=3, levels=2, budget=1 + 3 + 9 + 6)
    assert small.size == 19
    level2 = sorted((n for n in small.root.walk() if len(n.path) == 3),
                    key=lambda n: -n.weight)
    assert [bool(n.children) for n in level2] == [True] * 2 + [False] * 7
    assert all(small.stops[n.path_name] == "budget" for n in level2[2:])
    for node in small.root.walk():               # the same nodes as the unlimited tree
        twin = next(n for n in full.root.walk() if n.path == node.path)
        assert node.weight == twin.weight


def test_every_expanded_node_is_hierarchy_down_its_path(bp):
    root = _strongest(bp, "fc5")
    ex = explore(bp, root, depth=1, children=2, levels=2, budget=300)
    assert ex.depth == 3 and ex.size == 1 + 2 + 4 + 8
    for node in ex.root.walk():
        if not node.children:
            assert ex.stops[node.path_name] in ("depth", "bottom")
            continue
        units = list(node.path)
        ref = hierarchy(bp, units[0], depth=len(units), children=2, path=units[1:])
        for u in units[1:]:
            ref = next(c for c in ref.children if c.unit == u)
        assert [c.unit for c in node.children] == [c.unit for c in ref.children]
        for c, r in zip(node.children, ref.children):
            assert c.weight == pytest.approx(r.weight, rel=1e-5, abs=1e-12)
            torch.testing.assert_close(c.image, r.image, rtol=1e-4,
                                       atol=1e-4 * float(r.image.abs().max()) + 1e-12)


def test_api_result_holds_static_tree_and_explorer_tree_with_shared_tiles(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 40), (90, 160, 30)).save(tmp_path / "a.png")
    req = api.FigureRequest(kind="hierarchy", model=f"{TINY}:chain", weights=None,
                            images=[str(tmp_path / "a.png")],
                            params={"root": "fc6_2", "depth": 1, "children": 2, "path": [],
                                    "rule": "guided", "explore": 1, "explore_budget": 5})
    (res,) = api.compute([req])
    ex = res.data["explore"]
    assert ex["levels"] == 1 and ex["budget"] == 5 and ex["size"] == 5 and ex["depth"] == 2

    def walk(n):
        yield n
        for c in n["children"]:
            yield from walk(c)

    static = {n["path"]: n["tile"] for n in walk(res.data["tree"])}
    explored = {n["path"]: n for n in walk(ex["tree"])}
    assert len(static) == 3 and all(explored[p]["tile"] == t for p, t in static.items())
    assert [n.get("stop") for n in explored.values()].count("budget") == 1
    assert set(res.tiles) == {n["tile"] for n in explored.values()} == set(res.data["tiles"])
