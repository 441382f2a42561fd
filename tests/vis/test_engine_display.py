"""Display normalization, inputs, and the small probes."""
import numpy as np
import pytest
import torch
from PIL import Image

from generator.vis.render import display
from generator.vis.core.backprop import Backprop
from generator.vis.errors import EngineError
from generator.vis.core.inputs import load_array, load_image
from generator.vis.core.models import load_model
from generator.vis.core.probes import feature_maps, top_predictions
from pathlib import Path

TINY = f"{Path(__file__).parent / 'vis_tiny_models.py'}"


def test_zero_is_gray_and_scale_is_robust():
    g = torch.zeros(1, 4, 50)
    g[0, 0, :] = torch.linspace(-1, 1, 50)
    g[0, 1, 0] = 1000.0  # one extreme pixel
    px = display.to_pixels(g, percentile=98)
    assert px.shape == (4, 50, 1) and px.dtype == np.uint8
    assert (px[2:] == 128).all()           # zero gradient -> neutral gray
    assert px[1, 0, 0] == 255               # the outlier clips
    # the ramp is not flattened by the outlier: it still spans most of the range
    assert px[0, :, 0].max() - px[0, :, 0].min() > 100


def test_scale_ignores_how_much_of_the_image_is_zero():
    small = torch.zeros(3, 64, 64)
    small[:, 10:14, 10:14] = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(0))
    big = torch.zeros(3, 8, 8)
    big[:, 2:6, 2:6] = small[:, 10:14, 10:14]
    a = display.normalize(small)[:, 10:14, 10:14]
    b = display.normalize(big)[:, 2:6, 2:6]
    np.testing.assert_allclose(a, b)


def test_all_zero_gradient_is_plain_gray():
    assert (display.to_pixels(torch.zeros(3, 5, 5)) == 128).all()


def test_tiles_and_grids():
    t = display.tile(torch.randn(1, 8, 8), min_size=32)
    assert t.mode == "L" and t.size == (32, 32)
    grid = display.feature_grid(torch.rand(5, 4, 4), columns=3, gap=1, min_cell=4)
    assert grid.size == (3 * 5 + 1, 2 * 5 + 1)


def test_load_image_errors(tmp_path):
    (tmp_path / "t.txt").write_text("hello")
    with pytest.raises(EngineError, match="not a readable image"):
        load_image(tmp_path / "t.txt")
    Image.new("RGB", (300, 300)).save(tmp_path / "big.png")
    with pytest.raises(EngineError, match="more than the limit of 1000 pixels"):
        load_image(tmp_path / "big.png", max_pixels=1000)
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert load_image(tmp_path / "clear.png").getpixel((0, 0)) == (255, 255, 255)


def test_load_array_errors(tmp_path):
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(EngineError, match="expected a numeric array"):
        load_array(tmp_path / "s.npy", (3, 4, 4))
    np.save(tmp_path / "n.npy", np.full((3, 4, 4), np.nan))
    with pytest.raises(EngineError, match="NaN"):
        load_array(tmp_path / "n.npy", (3, 4, 4))
    (tmp_path / "bad.npy").write_bytes(b"nope")
    with pytest.raises(EngineError, match="not a readable .npy array"):
        load_array(tmp_path / "bad.npy", (3, 4, 4))


def test_top_predictions_by_hand():
    logits = torch.tensor([0.0, 2.0, 1.0])
    p = np.exp([0.0, 2.0, 1.0]) / np.exp([0.0, 2.0, 1.0]).sum()
    out = top_predictions(logits, ["a", "b", "c"], k=2)
    assert [(o["index"], o["label"]) for o in out] == [(1, "b"), (2, "c")]
    assert out[0]["prob"] == pytest.approx(p[1])


def test_feature_maps_and_unit_readouts():
    m = load_model(f"{TINY}:chain", device="cpu")
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(m.input_shape, generator=gen) for _ in range(3)]
    bp = Backprop(m, xs[0])
    maps = feature_maps(bp, "conv2")
    torch.testing.assert_close(maps, m.module.features[:5](xs[0][None])[0])
    with pytest.raises(EngineError, match="fully connected"):
        feature_maps(bp, "fc5")
    for x in xs:    # the read-outs `maxacts` figures show: activation, location
        h = m.module.features[:7](x[None])[0, 2]
        b = Backprop(m, x)
        assert b.activation(m.layer("conv3"), 2) == pytest.approx(float(h.max()))
        assert tuple(b.location(m.layer("conv3"), 2)) == divmod(int(torch.argmax(h)), h.shape[1])
