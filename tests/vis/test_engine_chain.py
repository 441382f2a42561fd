"""The windowed chain backward: which models qualify, and windowed == full == autograd."""
from pathlib import Path

import pytest
import torch

import vis_tiny_models as tiny
from generator.vis.core.backprop import Backprop
from generator.vis.core.chain import compile_chain
from generator.vis.errors import EngineError
from generator.vis.core.models import load_model

TINY = f"{Path(__file__).parent / 'vis_tiny_models.py'}"


@pytest.fixture(scope="module")
def alexnet():
    return tiny.alexnet_random()


@pytest.mark.parametrize("name, layers, qualifies", [
    ("chain", None, True), ("chain_batchnorm", None, True), ("hand_net", None, True),
    ("functional", tiny.FUNCTIONAL_LAYERS, False),  # functional ReLUs between modules
    ("residual", tiny.RESIDUAL_LAYERS, False),      # a residual add
])
def test_which_models_are_chains(name, layers, qualifies):
    m = load_model(f"{TINY}:{name}", layers=layers, device="cpu")
    assert (compile_chain(m) is not None) == qualifies
    assert Backprop(m, torch.zeros(m.input_shape)).method == ("chain" if qualifies else "autograd")


def test_forcing_the_chain_on_a_residual_net_is_an_error():
    m = load_model(f"{TINY}:residual", layers=tiny.RESIDUAL_LAYERS, device="cpu")
    with pytest.raises(EngineError, match="not a plain chain"):
        Backprop(m, torch.zeros(m.input_shape), method="chain")


def test_alexnet_is_a_chain_with_the_same_activations(alexnet):
    torch.manual_seed(0)
    x = torch.randn(alexnet.input_shape)
    fast, slow = Backprop(alexnet, x, method="chain"), Backprop(alexnet, x, method="autograd")
    for name in alexnet.layer_names:
        torch.testing.assert_close(fast.acts[name], slow.acts[name])
    torch.testing.assert_close(fast.logits, slow.logits)


@pytest.mark.parametrize("rule", ["guided", "deconv", "gradient"])
def test_windowed_equals_full_equals_autograd(alexnet, rule):
    torch.manual_seed(1)
    x = torch.randn(alexnet.input_shape)
    chain = compile_chain(alexnet)
    windowed, full = chain.forward(x, rule, windowed=True), chain.forward(x, rule, windowed=False)
    slow = Backprop(alexnet, x, rule, method="autograd")
    conv5, conv3 = alexnet.layer("conv5"), alexnet.layer("conv3")
    seeds = Backprop(alexnet, x, rule).seeds(conv5, list(range(0, 256, 64)))
    to = [conv3, None]
    a = windowed.backward(seeds, conv5, to)
    b = full.backward(seeds, conv5, to)
    c = slow.backward(seeds, conv5, to)
    assert windowed.flops * 4 < full.flops  # the windows did save work
    for got_w, got_f, want in zip(a, b, c):
        assert want.abs().sum() > 0
        tol = 1e-5 * float(want.abs().max())
        torch.testing.assert_close(got_w, want, rtol=1e-4, atol=tol)
        torch.testing.assert_close(got_f, want, rtol=1e-4, atol=tol)


def test_windows_at_the_border_and_overlapping_pools():
    """Units at every corner of the map: windows reach outside it and must be clipped."""
    m = load_model(f"{TINY}:chain", device="cpu")
    torch.manual_seed(2)
    x = torch.randn(m.input_shape).abs()
    layer = m.layer("conv4")
    fast, slow = Backprop(m, x, method="chain"), Backprop(m, x, method="autograd")
    seeds = torch.zeros((4, *layer.shape))
    for n, (r, c) in enumerate([(0, 0), (0, 8), (8, 0), (8, 8)]):
        channel = int(torch.argmax(fast.acts["conv4"][:, r, c]))  # an active unit there
        seeds[n, channel, r, c] = 1.0
    for to in ([None], [m.layer("conv2"), m.layer("conv1")]):
        for got, want in zip(fast.backward(seeds, layer, to), slow.backward(seeds, layer, to)):
            assert (want.flatten(1).abs().sum(1) > 0).all()
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_an_all_zero_seed_does_not_widen_the_windows(alexnet):
    torch.manual_seed(1)
    x = torch.randn(alexnet.input_shape)
    conv5 = alexnet.layer("conv5")
    chain = compile_chain(alexnet)
    one, two = chain.forward(x, "guided"), chain.forward(x, "guided")
    strongest = int(torch.argmax(one.acts["conv5"].flatten(1).amax(1)))
    seeds = Backprop(alexnet, x).seeds(conv5, [strongest])
    (a,) = one.backward(seeds, conv5, [None])
    assert a.abs().sum() > 0
    (b,) = two.backward(torch.cat([seeds, torch.zeros_like(seeds)]), conv5, [None])
    assert two.flops == 2 * one.flops
    torch.testing.assert_close(b[0], a[0])
    assert b[1].abs().sum() == 0
