"""`<< hierarchy ROOT depth= children= path= explore= >>`: a unit and, level by level, the
units that contribute most to it; with `explore=N`, N more levels precomputed for the
reader's explorer."""
from __future__ import annotations

from dataclasses import dataclass

from generator.vis.kinds.pictures import Picture
from generator.vis.kinds.results import Figure, OneUnit, PatchGrid
from generator.vis.kinds.session import percentile_of
from generator.vis.kinds.spec import DATASET, FEATUREVIS, PATCHES, Key, Kind, keys
from generator.vis.kinds.crops import crop_all
from generator.vis.kinds.units import (CROP, OPTIMIZE, add_patches, add_pictures, check_units,
                                       want_pictures, warn_inactive,
                                       figure_base, on_image, optimized_phrase,
                                       optimizing_params)

# Tiles an explorable hierarchy may precompute when `explore_budget=` is not given.
# Measured: a tile of the default model (1x64x64) is ~2 kB as PNG, so 300 tiles plus the
# ~80 kB JSON stay near 0.6 MB; an ImageNet-sized tile (3x224x224) is ~115 kB, so for
# such inputs the default shrinks to keep a figure's explorer near 4 MB.
EXPLORE_BUDGET = 300
EXPLORE_BYTES = 4_000_000


def default_explore_budget(input_shape, bytes_per_pixel=None) -> int:
    """The tile budget for a model's input shape (C, H, W): as many tiles as fit in
    EXPLORE_BYTES at the size a tile's PNG really takes, not its raw C*H*W bytes.
    Measured on the tiles a build writes (tests/vis/test_explore_budget.py checks the
    first): 0.54 bytes per pixel for gray tiles (default model, 64 px: 2.2 kB a tile), 2.3
    for colour ones (AlexNet, 224 px: 115 kB a tile)."""
    c, h, w = input_shape
    per_pixel = bytes_per_pixel or (0.54 if c == 1 else 2.3)
    return max(32, min(EXPLORE_BUDGET, int(EXPLORE_BYTES // max(per_pixel * h * w, 1.0))))


@dataclass(kw_only=True)
class TreeNode(OneUnit):
    unit: str
    layer: str
    index: int
    activation: float
    weight: float | None
    path: str
    tile: str
    children: list[TreeNode]
    stop: str | None = None             # an explored leaf: why it has no children
    patches: PatchGrid | None = None
    picture: Picture | None = None      # optimize=1 (static tree only)
    field: str | None = None            # crop: the input with the cut marked

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()


@dataclass(kw_only=True)
class Explored:
    levels: int
    budget: int
    children: int
    depth: int
    size: int
    tree: TreeNode


@dataclass(kw_only=True)
class HierarchyFigure(Figure):
    rule: str
    tree: TreeNode
    explore: Explored | None = None
    optimized: str | None = None


class Hierarchy(Kind):
    name = "hierarchy"
    doc = "a unit and, level by level, the units that contribute most to it"
    legend = 'Gray: no effect on the unit; lighter (darker): brightening that pixel raises (lowers) it, per channel in colour; each tile scaled on its own. Line width: edge weight relative to its siblings.'
    example = "<< hierarchy fc6_1068 depth=3 path=conv5_243 >>"
    arg, positional, nmin, nmax = "root", "unit", 1, 1
    keys = keys(
        depth=Key("int", 2, 0, 8, doc="levels below the root"),
        children=Key("int", 5, 1, 16, doc="children shown per node (top-k by edge weight)"),
        path=Key("units", [], doc="comma list of units to follow down, one per level"),
        crop=CROP, patches=PATCHES, dataset=DATASET, optimize=OPTIMIZE, **FEATUREVIS,
        explore=Key("int", 0, 0, 8, doc="extra levels precomputed for the reader", unset=0),
        explore_budget=Key("int", None, 1, 100000, unset=None,
                           doc=f"most tiles precomputed for exploring (default {EXPLORE_BUDGET}, "
                               "fewer for large inputs)"),
    )
    template = "hierarchy"
    layout = "tree"
    result = HierarchyFigure

    def check_values(self, values):
        if len(values["path"]) > values["depth"]:
            return "path", (f"path has {len(values['path'])} units but depth is "
                            f"{values['depth']}; a path names at most one unit per level")
        return None

    def request_params(self, values: dict) -> dict:
        out = optimizing_params(self, values)
        if "explore" not in out:            # a budget means nothing without exploring
            out.pop("explore_budget", None)
        return out

    def check(self, session, req, model) -> None:
        from generator.vis.core.hierarchy import tree_start

        p = req.params
        tree_start(model, p["root"], p["depth"], p["children"], p.get("path") or ())
        check_units(session, req, model, [p["root"], *(p.get("path") or ())])
        want_pictures(session, req, model, [p["root"], *(p.get("path") or ())])

    def run(self, session, req, model, tiles) -> HierarchyFigure:
        import torch

        from generator.vis.core.explore import explore
        from generator.vis.core.hierarchy import hierarchy
        from generator.vis.render.tiles import gradient_pngs

        p = req.params
        bp = session.state(req, req.images[0], p["rule"])
        path = p.get("path") or ()
        explored = None
        if p.get("explore"):
            budget = p.get("explore_budget") or default_explore_budget(model.input_shape)
            explored = explore(bp, p["root"], depth=p["depth"], children=p["children"],
                               path=path, levels=p["explore"], budget=budget)
            tree, nodes = explored.static_tree(), list(explored.root.walk())
        else:
            tree = hierarchy(bp, p["root"], depth=p["depth"], children=p["children"], path=path)
            nodes = list(tree.walk())
        grads, markers = crop_all(torch.stack([n.image for n in nodes]), p.get("crop", "auto"),
                                  session.input(req, req.images[0]), tiles)
        pngs = gradient_pngs(grads, percentile_of(p))
        names = {n.path_name: tiles.add(png) for n, png in zip(nodes, pngs)}
        fields = {n.path_name: m for n, m in zip(nodes, markers)}
        fig = HierarchyFigure(**figure_base(model, req), rule=p["rule"],
                              tree=_tree(tree, names, fields=fields))
        if explored is not None:
            fig.explore = Explored(levels=p["explore"], budget=budget, children=p["children"],
                                   depth=explored.depth, size=len(nodes),
                                   tree=_tree(explored.root, names, explored.stops))
        add_patches(session, req, model, tiles, list(fig.tree.walk()))
        fig.optimized = add_pictures(session, req, model, tiles, list(fig.tree.walk()))
        wanted = {model.unit_name(*model.parse_unit(u)) for u in [p["root"], *path]}
        warn_inactive(list(fig.tree.walk()), wanted)
        return fig

    def caption(self, fig: HierarchyFigure) -> str:
        return (f"Units under `{fig.tree.unit}` ({fig.rule} backprop, model "
                f"{fig.model}{on_image(fig)}){optimized_phrase(fig.optimized)}; hover a "
                "line for its edge weight.")


def _tree(node, names: dict, stops: dict | None = None, fields: dict | None = None) -> TreeNode:
    """An engine `Node` tree as figure data, tiles by path name; with `stops` (an explored
    tree) each leaf says why it has no children."""
    return TreeNode(unit=node.unit, layer=node.layer, index=node.index,
                    activation=node.activation, weight=node.weight, path=node.path_name,
                    tile=names[node.path_name],
                    children=[_tree(c, names, stops, fields) for c in node.children],
                    stop=stops.get(node.path_name) if stops is not None else None,
                    field=(fields or {}).get(node.path_name))
