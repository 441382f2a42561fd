"""Patch grids: padded crops, gradient patches from one batched backward, checked
against the engine's own per-image backward."""
import numpy as np
import pytest
import torch
from PIL import Image

from generator.vis.core.backprop import Backprop
from generator.vis.data.datasets import open_dataset
from generator.vis.data.mining import load_or_mine
from generator.vis.core.models import load_model
from generator.vis.data.patches import crop, gradient_pixels, image_pixels, unit_patches
from generator.vis.data.receptive import Box, layer_fields

MODEL_SOURCE = '''
import numpy as np
import torch
from torch import nn

INPUT_SHAPE = (3, 16, 16)


def preprocess(image):
    a = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).contiguous() - 0.4


def factory():
    return nn.Sequential(
        nn.Conv2d(3, 4, 5, stride=2, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(inplace=True),
        nn.Flatten(), nn.Linear(6 * 4 * 4, 5), nn.ReLU(), nn.Linear(5, 3))
'''


@pytest.fixture(scope="module")
def mined(tmp_path_factory):
    root = tmp_path_factory.mktemp("patches")
    (root / "net.py").write_text(MODEL_SOURCE)
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), "RGB").save(root / f"{i:02d}.png")
    model = load_model(f"{root / 'net.py'}:factory", device="cpu")
    dataset = open_dataset(str(root))
    topk = load_or_mine(model, dataset, 6, None, root / "cache", progress=False, batch_size=5)
    return model, dataset, topk


def test_crop_pads_instead_of_shifting():
    x = torch.arange(2 * 1 * 6 * 7, dtype=torch.float32).view(2, 1, 6, 7)
    boxes = [Box(-2, -1, 3, 4), Box(3, 4, 8, 9)]     # hang over top-left / bottom-right
    patches, inside = crop(x, boxes, fill=-1.0)
    assert patches.shape == (2, 1, 5, 5) and inside.shape == (2, 5, 5)
    assert torch.equal(patches[0, 0, 2:, 1:], x[0, 0, 0:3, 0:4])   # image starts at offset (2, 1)
    assert (patches[0, 0, :2] == -1).all() and (patches[0, 0, :, 0] == -1).all()
    assert torch.equal(patches[1, 0, :3, :3], x[1, 0, 3:6, 4:7])
    assert (patches[1, 0, 3:] == -1).all() and (patches[1, 0, :, 3:] == -1).all()
    assert torch.equal(inside, patches[:, 0] != -1)


def test_gradient_patches_match_the_engine_per_image(mined, monkeypatch):
    model, dataset, topk = mined
    layer = model.layers[1]                      # the second conv layer
    calls = []
    real_grad = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **kw: calls.append(1) or real_grad(*a, **kw))
    grid = unit_patches(model, dataset, topk, layer.name, 2)
    monkeypatch.undo()
    assert len(calls) == 1                      # all K examples: one batched backward
    field = layer_fields(model, [layer.name])[layer.name]
    assert len(grid.examples) == 6 and grid.images.shape[-2:] == field.size
    for n, (image_id, r, s, value) in enumerate(grid.examples):
        x = model.preprocess(dataset.image(image_id))
        bp = Backprop(model, x, "guided")
        assert torch.isclose(grid.activations[n], torch.tensor(value), rtol=1e-5)
        seed = torch.zeros((1, *layer.shape))
        seed[0, 2, r, s] = bp.acts[layer.name][2, r, s]
        (full,) = bp.backward(seed, layer, [None])
        box = field.box(r, s)
        expected, inside = crop(full, [box])
        assert torch.allclose(grid.gradients[n], expected[0], atol=1e-6)
        # the box holds all of the gradient: nothing outside the receptive field
        assert torch.isclose(expected.abs().sum(), full.abs().sum())
        image_patch, _ = crop(x.unsqueeze(0), [box])
        assert torch.equal(grid.images[n], image_patch[0])
        assert torch.equal(grid.inside[n], inside[0])


def test_fc_units_use_whole_images_and_pixels_render(mined):
    model, dataset, topk = mined
    grid = unit_patches(model, dataset, topk, model.layers[-1].name, 1, k=3)
    assert grid.images.shape == (3, 3, 16, 16) and bool(grid.inside.all())
    assert [g.shape for g in image_pixels(grid)] == [(16, 16, 3)] * 3
    conv = unit_patches(model, dataset, topk, model.layers[0].name, 0, k=4)
    pics = image_pixels(conv)
    assert all(p.dtype == np.uint8 for p in pics + gradient_pixels(conv))
    for pic, inside in zip(pics, conv.inside):
        assert (pic[~inside.numpy()] == 128).all()
