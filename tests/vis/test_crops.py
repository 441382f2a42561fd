"""crop=: tiles cut to where the gradient is, scaled up; the cut marked on the input."""
import io

import pytest
import torch
from PIL import Image

from generator.vis.kinds.crops import Cut, crop_all, cut_gradient, support_cut
from generator.vis.kinds.session import Tiles


def _grad(h=224, box=(100, 60, 111, 71)):
    g = torch.zeros(3, h, h)
    t, l, b, r = box
    g[:, t:b, l:r] = torch.randn(3, b - t, r - l)
    return g


def test_cut_is_the_support_square_with_a_margin():
    cut = support_cut(_grad(), "auto")          # an 11 x 11 support at (100, 60)
    assert cut == Cut(top=99, left=59, side=13)  # 11 * 1.2 rounded, centred
    assert support_cut(_grad(), "off") is None


def test_auto_leaves_small_inputs_and_wide_supports_whole():
    assert support_cut(_grad(64, (10, 10, 16, 16)), "auto") is None      # a 64-px input
    assert support_cut(_grad(64, (10, 10, 16, 16)), "on") is not None
    assert support_cut(_grad(224, (0, 0, 150, 150)), "auto") is None     # > half the side
    assert support_cut(torch.zeros(3, 224, 224), "on") is None           # nothing to cut to


def test_cut_gradient_pads_gray_outside_and_keeps_the_tile_size():
    g = _grad(224, (0, 0, 20, 20))             # support at the corner: the cut leaves the image
    cut = support_cut(g, "auto")
    assert cut.top < 0 and cut.left < 0
    out = cut_gradient(g, cut)
    assert out.shape == g.shape
    f = 224 / cut.side                          # nearest upscale: input pixel (0, 0) lands here
    r0 = int(-cut.top * f) + 1
    assert torch.all(out[:, :int(-cut.top * f) - 1] == 0)        # the padded band is zero (gray)
    assert torch.equal(out[:, r0, int(-cut.left * f) + 1], g[:, 0, 0])


def test_markers_outline_the_cut_on_a_small_input():
    tiles = Tiles()
    x = torch.rand(3, 224, 224)
    grads, markers = crop_all(torch.stack([_grad(), torch.zeros(3, 224, 224)]), "auto", x, tiles)
    assert markers[1] is None and torch.equal(grads[1], torch.zeros(3, 224, 224))
    marker = Image.open(io.BytesIO(tiles.files[markers[0]]))
    assert marker.size == (56, 56)
    rgb = marker.convert("RGB")
    outline = [(x_, y_) for x_ in range(56) for y_ in range(56)
               if rgb.getpixel((x_, y_)) == (255, 64, 32)]
    xs, ys = [p[0] for p in outline], [p[1] for p in outline]
    # the cut (59..72, 99..112 in input pixels) outlined at a quarter of the size
    assert outline and 14 <= min(xs) <= 15 and 17 <= max(xs) <= 18
    assert 24 <= min(ys) <= 25 and 27 <= max(ys) <= 28


@pytest.mark.parametrize("kind", ["unit", "units", "hierarchy"])
def test_crop_key_stays_out_of_the_request_unless_set(kind):
    from generator.site.directives import find_directives, validate
    from generator.vis.api import KINDS

    base = {"unit": "<< unit conv1_1{} >>", "units": "<< units conv1_1{} >>",
            "hierarchy": "<< hierarchy fc6_1{} >>"}[kind]
    params = lambda text: KINDS[kind].request_params(validate(find_directives(text, "p")[0]))  # noqa: E731
    assert "crop" not in params(base.format(""))
    assert params(base.format(" crop=off"))["crop"] == "off"


def test_a_224_px_conv1_unit_is_cut_and_marked(tmp_path):
    """On AlexNet (random weights) at 224 px a conv1 unit's tile is its field enlarged,
    with a marker; a conv5 unit, whose support spans most of the input, stays whole."""
    import numpy as np

    from generator.vis import api

    img = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)).save(img)
    req = api.FigureRequest("units", "alexnet", None, [str(img)],
                            {"units": ["conv1_5", "conv5_5"], "rule": "guided"})
    (res,) = api.compute([req])
    conv1, conv5 = res.figure.units
    assert conv1.field is not None and conv1.field in res.tiles
    assert conv5.field is None
    tile = Image.open(io.BytesIO(res.tiles[conv1.tile]))
    assert tile.size == (224, 224)
    gray = np.asarray(tile.convert("L"), dtype=float)
    assert (np.abs(gray - 128) > 8).mean() > 0.3    # most of the enlarged tile carries signal
