"""A small explorable site shared by the explorer tests (no tests here).

It reuses the 24x24 user model of the figure tests: layers conv1 (6), conv2 (8),
conv3 (8), fc4 (16), fc5 (4 logits), so a tree rooted at fc5 can go four levels down.
"""
from test_figures_support import NET_PY, save_weights

SITE_TOML = '''title = "explorer test"
model = "a.safetensors"
image = "one.png"
output = "out"
cache = "cache"
base_url = "/blog/"

[figures]
architecture = "net.py:build"
'''

# depth=1 children=2 explore=3: the figure shows fc5_1 and two fc4 units; the explorer
# holds every node down to conv2 (1 + 2 + 4 + 8 + 16 = 31 tiles). The second figure has a
# budget too small for its tree, and the third explores nothing.
POST = '''---
title: Explore
date: 2024-02-01
---
Click a unit.

<< hierarchy fc5_1 depth=1 children=2 explore=3 caption="Two `fc4` units under `fc5_1`" >>

<< hierarchy fc4_3 depth=1 children=3 explore=2 explore_budget=10 >>

<< hierarchy fc4_3 depth=1 children=3 >>
'''


def make_explore_site(root):
    from PIL import Image, ImageDraw

    (root / "posts").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "net.py").write_text(NET_PY)
    (root / "site.toml").write_text(SITE_TOML)
    save_weights(root / "a.safetensors", 1)
    im = Image.new("L", (48, 48), 0)
    d = ImageDraw.Draw(im)
    d.ellipse((8, 10, 38, 40), fill=255)
    d.line((0, 0, 47, 47), fill=128, width=3)
    im.save(root / "images" / "one.png")
    (root / "posts" / "2024-02-01-explore.md").write_text(POST)
    return root
