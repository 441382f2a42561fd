"""Feature visualization by optimization and DeepDream (generator/vis/core/featurevis.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from generator.vis.core.dream import dream
from generator.vis.core.featurevis import optimize
from generator.vis.core.objectives import capturing
from generator.vis.core.imageparam import FFTImage, colour_matrix, image_range
from generator.vis.core.models import describe_layers, load_model, Model, Resize
from generator.vis.core.transforms import Transforms
from generator.vis.errors import EngineError

UNITS = ["conv3_5", "conv3_40", "conv4_2", "conv5_1", "conv5_30", "fc6_7", "fc6_100",
         "fc7_3", "fc7_200", "fc8_0", "fc8_7", "conv4_50"]


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    return load_model("default", device="cpu")


@pytest.fixture(scope="module")
def results(model):
    return optimize(model, UNITS, steps=64, seed=0)


@pytest.fixture(scope="module")
def sample_inputs():
    from generator.vis.default import model as default_model
    images, _ = default_model.load_sample()
    return default_model.to_input(torch.from_numpy(images))


def test_inputs_stay_inside_the_preprocessing_range(model, results):
    from generator.vis.default import model as default_model
    lo = (0 - default_model.MEAN) / default_model.STD
    hi = (1 - default_model.MEAN) / default_model.STD
    for r in results:
        assert r.input.shape == (1, 64, 64) and r.input.dtype == torch.float32
        assert float(r.input.min()) >= lo - 1e-5 and float(r.input.max()) <= hi + 1e-5
        assert 0 <= float(r.image.min()) and float(r.image.max()) <= 1
        assert torch.allclose(image_range(model).to_input(r.image), r.input, atol=1e-6)


def test_optimized_inputs_beat_every_sample_image(model, results, sample_inputs):
    layers = [model.layer(n) for n in ("conv3", "conv4", "conv5", "fc6", "fc7", "fc8")]
    with torch.no_grad(), capturing(model, layers) as forward:
        hs, _ = forward(sample_inputs)
    wins = []
    for r in results:
        layer, index = model.parse_unit(r.unit)
        h = hs[layer.name][:, index]
        if h.dim() == 3:
            h = h[:, h.shape[1] // 2, h.shape[2] // 2]
        wins.append(r.activation > float(h.max()))
    assert len(sample_inputs) == 2000
    assert sum(wins) >= 0.8 * len(results), list(zip(UNITS, wins))


def test_reported_activation_is_what_the_input_reaches(model, results):
    x = torch.stack([r.input for r in results])
    with torch.no_grad(), capturing(model, model.layers) as forward:
        hs = forward(x)[0]
    for i, r in enumerate(results):
        layer, c = model.parse_unit(r.unit)
        h = hs[layer.name][i, c]
        value = h[4, 4] if layer.kind == "conv" else h
        assert value.item() == pytest.approx(r.activation, rel=1e-4, abs=1e-5)


def test_objective_rises(results):
    for r in results:
        assert len(r.history) == 16
    rising = [np.mean(r.history[-4:]) > r.history[0] + 0.1 for r in results]
    assert sum(rising) >= 0.9 * len(results)


def test_batch_equals_singles_and_seed_is_reproducible(model):
    units = ["conv4_2", "fc7_3", "fc8_1"]
    batch = optimize(model, units, steps=24, seed=3, objective="channel")
    for r in batch[::2]:
        (alone,) = optimize(model, [r.unit], steps=24, seed=3, objective="channel")
        # Adam divides by the gradient's running size, so where a ReLU passes only the
        # small leak term, float rounding of a batched convolution moves a few pixels a
        # little; the picture as a whole and what it reaches agree closely
        diff = (alone.input - r.input).abs()
        assert float(diff.mean()) < 1e-3 and float(diff.max()) < 0.05
        assert alone.activation == pytest.approx(r.activation, rel=1e-2, abs=1e-3)
    again = optimize(model, units, steps=24, seed=3, objective="channel")
    assert all(torch.equal(a.input, b.input) for a, b in zip(batch, again))
    other = optimize(model, units, steps=24, seed=4, objective="channel")
    assert not torch.equal(other[0].input, batch[0].input)


def test_diversity_gives_distinct_copies(model):
    out = optimize(model, ["conv4_2", "fc6_100"], steps=16, seed=0, diversity=3,
                   param="pixel", transforms="none")
    assert [(r.unit, r.copy) for r in out] == [(u, k) for u in ("conv4_2", "fc6_100")
                                               for k in range(3)]
    assert not torch.allclose(out[0].input, out[1].input, atol=1e-2)


def test_progress_is_called_every_step(model):
    seen = []
    optimize(model, ["fc8_0"], steps=5, progress=lambda i, n: seen.append((i, n)))
    assert seen == [(i, 5) for i in range(1, 6)]


@pytest.mark.parametrize("kwargs, message", [
    ({"units": ["conv9_1"]}, "no layer"),
    ({"units": ["conv3_999"]}, "has 96 channels"),
    ({"units": []}, "no units"),
    ({"steps": 0}, "steps"),
    ({"steps": 10001}, "steps"),
    ({"lr": 0.0}, "lr"),
    ({"lr": -1}, "lr"),
    ({"param": "cppn"}, "parametrization"),
    ({"objective": "gram"}, "objective"),
    ({"transforms": "heavy"}, "transforms"),
    ({"diversity": 0}, "diversity"),
])
def test_bad_input_is_one_line(model, kwargs, message):
    args = {"units": ["fc8_0"], "steps": 2, **kwargs}
    with pytest.raises(EngineError) as info:
        optimize(model, **args)
    assert message in str(info.value) and "\n" not in str(info.value)


class _Detached(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv(x.detach().round()))


def test_model_without_differentiable_path_is_refused():
    module = _Detached().eval().requires_grad_(False)
    layers = describe_layers(module, {"conv1": "relu"}, (1, 16, 16), torch.device("cpu"), "tiny")
    tiny = Model(name="tiny", module=module, device=torch.device("cpu"), layers=layers,
                 input_shape=(1, 16, 16), labels=[], weights_digest="",
                 preprocess_fn=Resize((1, 16, 16), (0.5,), (0.5,)))
    with pytest.raises(EngineError, match="does not depend differentiably"):
        optimize(tiny, ["conv1_0"], steps=3)


def test_fft_image_matches_a_hand_built_spectrum():
    h = w = 12
    p = FFTImage(1, h, w)
    params = torch.zeros((1, *p.shape()))
    params[0, 0, 2, 3, 0] = 1.0  # real part at (ky=2, kx=3)
    y, x = np.mgrid[0:h, 0:w]
    weight = 1 / np.sqrt((2 / h) ** 2 + (3 / w) ** 2)
    expected = weight * 2 * np.cos(2 * np.pi * (2 * y / h + 3 * x / w)) / np.sqrt(h * w)
    got = p.raw(params)[0, 0].numpy()
    assert np.allclose(got, expected, atol=1e-5)
    assert np.allclose(p.image(params)[0, 0].numpy(), 1 / (1 + np.exp(-expected)), atol=1e-6)


def test_fft_colour_decorrelation_against_numpy():
    gen = torch.Generator().manual_seed(0)
    h, w = 10, 14
    p = FFTImage(3, h, w)
    params = p.init(gen)[None] * 100
    spectrum = params[0, ..., 0].numpy() + 1j * params[0, ..., 1].numpy()
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    scale = 1 / np.maximum(np.sqrt(fy ** 2 + fx ** 2), 1 / max(h, w))
    spatial = np.fft.irfft2(spectrum * scale, s=(h, w), norm="ortho")
    mixed = np.einsum("ij,jhw->ihw", colour_matrix().numpy(), spatial)
    assert np.allclose(p.raw(params)[0].numpy(), mixed, atol=1e-4)
    m = colour_matrix().numpy()
    assert np.allclose(m, m.T, atol=1e-6) and np.isclose(np.linalg.norm(m, axis=0).max(), 1)


def test_identity_transform_is_exact_and_pad_grows_the_canvas():
    gen = torch.Generator().manual_seed(1)
    images = torch.rand((2, 3, 9, 9), generator=gen)
    none = Transforms()
    assert torch.allclose(none.apply(images, torch.tensor([[0, 0, 1, 0]] * 2, dtype=torch.float64)),
                          images, atol=1e-6)
    padded = Transforms(pad=2).apply(images, torch.tensor([[0, 0, 1, 0]] * 2, dtype=torch.float64))
    assert padded.shape == (2, 3, 13, 13)
    assert torch.allclose(padded[:, :, 2:-2, 2:-2], images, atol=1e-6)
    assert torch.allclose(padded[:, :, 0], torch.full_like(padded[:, :, 0], 0.5))
    shifted = none.apply(images, torch.tensor([[1, 0, 1, 0]] * 2, dtype=torch.float64))
    assert torch.allclose(shifted[..., 1:], images[..., :-1], atol=1e-6)


@pytest.mark.parametrize("unit, k, radius", [("conv1_10", 0, 3), ("conv2_20", 1, 9)])
def test_dream_changes_the_image_most_where_the_unit_responds(model, sample_inputs, unit, k, radius):
    """The ReLU gates the gradient: pixels outside the receptive fields of the unit's
    active positions barely change, those inside change much more."""
    x = sample_inputs[k]
    layer, c = model.parse_unit(unit)
    with torch.no_grad(), capturing(model, [layer]) as forward:
        response = forward(x[None])[0][layer.name][0, c]
    out = dream(model, x, unit, octaves=1, steps=6, lr=0.02, seed=0, jitter=0)
    assert out.after > out.before and out.target == unit
    active = F.interpolate((response > 0).float()[None, None], size=(64, 64), mode="nearest")
    near = F.max_pool2d(active, 2 * radius + 1, 1, radius)[0, 0] > 0
    assert 0.1 < float(near.float().mean()) < 0.95
    assert float(out.change[near].mean()) > 5 * float(out.change[~near].mean())


def test_dream_octaves_stay_valid_and_are_reproducible(model, sample_inputs):
    x = sample_inputs[0]
    out = dream(model, x, "conv3_40", octaves=2, steps=6, lr=0.02, seed=0)
    assert out.after > out.before and len(out.history) == 12
    lo, hi = image_range(model).bounds()
    assert float(out.input.min()) >= float(lo) - 1e-5 and float(out.input.max()) <= float(hi) + 1e-5
    assert out.change.shape == (64, 64) and float(out.change.max()) > 0
    again = dream(model, x, "conv3_40", octaves=2, steps=6, lr=0.02, seed=0)
    assert torch.equal(again.input, out.input)
    layer_dream = dream(model, x, "conv4", octaves=1, steps=4, lr=0.02)
    assert layer_dream.after > layer_dream.before and layer_dream.target == "conv4"
    for kwargs, message in (({"steps": 0}, "steps"), ({"lr": 0}, "lr"),
                            ({"target": "conv9"}, "neither a layer nor a unit"),
                            ({"target": "conv9_1"}, "no layer"), ({"octaves": 0}, "octaves")):
        with pytest.raises(EngineError, match=message):
            dream(model, x, **{"target": "conv4", **kwargs})
