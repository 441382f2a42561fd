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


# ------------------------------------------------------------------ a tiny site

NET_PY = '''
from torch import nn

INPUT_SHAPE = (1, 24, 24)
LABELS = ["circle", "square", "cross", "stripe"]


def build():
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(8 * 6 * 6, 16), nn.ReLU(),
        nn.Linear(16, 4))
'''

SITE_TOML = '''title = "figures test"
model = "a.safetensors"
image = "one.png"
output = "out"
cache = "cache"

[figures]
architecture = "net.py:build"
dataset = "dataset"
'''

ALL_POST = '''---
title: Every figure
date: 2024-01-01
---
Prose before the figures.

<< unit conv1_4 >>

<< units conv2_1 conv2_5 caption="Two conv2 units" size=small >>

<< hierarchy fc4_3 depth=2 children=3 >>

<< predictions k=3 >>

<< featuremaps conv1 >>

<< maxacts conv3_2 images=one.png,two.png >>
'''

OTHER_POST = '''---
title: Another model
date: 2024-01-02
model: b.safetensors
image: two.png
---
Prose.

<< hierarchy conv3_1 depth=1 children=2 >>
'''


PATCHES_POST = '''---
title: Patch grids
date: 2024-01-03
---
Prose.

<< patches conv2_3 k=4 >>

<< hierarchy conv3_1 depth=1 children=2 patches=4 >>
'''


def save_weights(path, seed: int) -> None:
    """Random weights for NET_PY's architecture, as safetensors."""
    import torch
    from safetensors.torch import save_file

    scope = {}
    exec(NET_PY, scope)
    torch.manual_seed(seed)
    save_file(scope["build"]().state_dict(), str(path))


def make_site(root):
    """A three-post site on a 24x24 user model: every figure directive, two weight files,
    a folder dataset for patch grids."""
    from PIL import Image, ImageDraw

    (root / "posts").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "net.py").write_text(NET_PY)
    (root / "site.toml").write_text(SITE_TOML)
    save_weights(root / "a.safetensors", 1)
    save_weights(root / "b.safetensors", 2)
    for i, name in enumerate(["one", "two"]):
        im = Image.new("L", (48, 48), 0)
        d = ImageDraw.Draw(im)
        d.ellipse((8 + 4 * i, 10, 38, 40 - 6 * i), fill=255)
        d.line((0, 10 * i, 47, 47), fill=128, width=3)
        im.save(root / "images" / f"{name}.png")
    (root / "dataset").mkdir()
    for i in range(24):   # small shapes on black: what the patch grids mine
        im = Image.new("L", (32, 32), 0)
        d = ImageDraw.Draw(im)
        x, y, s = (7 * i) % 20, (11 * i) % 20, 5 + i % 9
        (d.ellipse if i % 2 else d.rectangle)((x, y, x + s, y + s), fill=120 + (37 * i) % 136)
        im.save(root / "dataset" / f"{i:02d}.png")
    (root / "posts" / "2024-01-01-all.md").write_text(ALL_POST)
    (root / "posts" / "2024-01-03-patches.md").write_text(PATCHES_POST)
    (root / "posts" / "2024-01-02-other.md").write_text(OTHER_POST)
    return root


def values(name: str, args=(), **given) -> dict:
    """A directive's validated values, as `directives.validate` returns them: the
    positional arguments under the kind's `arg`, every key at its default, then `given`."""
    from generator.site.directives import SPECS

    spec = SPECS[name]
    out = {k: (list(key.default) if isinstance(key.default, list) else key.default)
           for k, key in spec.keys.items()}
    if spec.arg:
        out[spec.arg] = list(args) if spec.nmax > 1 else args[0]
    out.update(given)
    return out
