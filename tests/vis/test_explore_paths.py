"""explore() with every kind of `path=` (none, adjacent layers, skipping layers) and levels
1 and 2, on the tiny chain and the default model: no crash, and every explored node's
picture is `hierarchy()`'s down that node's path (a skipping path put nodes of different
layers in one level and once crashed stacking their seeds)."""
from pathlib import Path

import pytest
import torch
from PIL import Image

from generator.vis.core.backprop import Backprop
from generator.vis.core.explore import explore
from generator.vis.core.hierarchy import hierarchy
from generator.vis.core.models import load_model

TINY = f"{Path(__file__).parent / 'vis_tiny_models.py'}"
SNEAKER = Path(__file__).resolve().parents[2] / "content" / "images" / "sneaker_9.png"


def _strongest(bp, name):
    layer = bp.model.layer(name)
    return bp.model.unit_name(layer, int(bp.acts[name].reshape(layer.size, -1).amax(1).argmax()))


@pytest.fixture(scope="module")
def chain():
    model = load_model(f"{TINY}:chain", device="cpu")
    torch.manual_seed(3)
    return Backprop(model, torch.rand(model.input_shape))


@pytest.fixture(scope="module")
def default():
    model = load_model("default", device="cpu")
    from generator.vis.default import model as default_model
    img = torch.from_numpy(__import__("numpy").asarray(Image.open(SNEAKER).convert("L")))
    return Backprop(model, default_model.to_input(img[None])[0])


def _check(bp, root, path, levels, children=2):
    ex = explore(bp, root, depth=2, children=children, path=path, levels=levels, budget=300)
    assert ex.size > 1
    for node in ex.root.walk():
        units = list(node.path)
        ref = hierarchy(bp, units[0], depth=len(units) - 1, children=children, path=units[1:])
        for u in units[1:]:
            ref = next(c for c in ref.children if c.unit == u)
        assert node.layer == ref.layer
        assert (node.weight is None) == (ref.weight is None)
        if node.weight is not None:
            assert node.weight == pytest.approx(ref.weight, rel=1e-5, abs=1e-12)
        torch.testing.assert_close(node.image, ref.image, rtol=1e-4,
                                   atol=1e-4 * float(ref.image.abs().max()) + 1e-12)


@pytest.mark.parametrize("levels", [1, 2])
@pytest.mark.parametrize("kind", ["none", "adjacent", "skipping"])
def test_chain_paths(chain, kind, levels):
    root = _strongest(chain, "fc6")
    path = {"none": [], "adjacent": [_strongest(chain, "fc5"), _strongest(chain, "conv4")],
            "skipping": [_strongest(chain, "conv4"), _strongest(chain, "conv1")]}[kind]
    _check(chain, root, path, levels)


@pytest.mark.parametrize("levels", [1, 2])
@pytest.mark.parametrize("kind", ["none", "adjacent", "skipping"])
def test_default_model_paths(default, kind, levels):
    path = {"none": [], "adjacent": ["conv5_0", "conv4_11"],
            "skipping": ["conv4_11", "conv1_2"]}[kind]
    _check(default, "fc6_245", path, levels)
