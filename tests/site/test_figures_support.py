"""Hand-made figure data and directives shared by the figure tests (no tests here)."""
from dataclasses import dataclass, field

from generator.site.errors import Pos


@dataclass
class FakeDirective:
    """The shape of generator.site.directives.Directive."""

    name: str
    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)
    pos: Pos = Pos("posts/a.md", 3, 1)
    raw: str = ""
    block: bool = True


def node(unit, weight=None, children=(), tile="t.png", activation=1.0):
    layer, _, index = unit.rpartition("_")
    return {"unit": unit, "layer": layer, "index": int(index), "activation": activation,
            "weight": weight, "path": unit, "tile": tile, "children": list(children)}


def hierarchy_data():
    kids2 = [node("conv4_7", 0.75, tile="c.png"), node("conv4_8", 0.125, tile="d.png")]
    kids1 = [node("conv5_243", 2.5, kids2, tile="a.png"), node("conv5_9", 0.5, tile="b.png")]
    return {"model": "default", "rule": "guided", "image_name": "boot.png", "tile_w": 64,
            "tile_h": 64, "tree": node("fc6_1068", None, kids1, tile="r.png", activation=3.0)}
