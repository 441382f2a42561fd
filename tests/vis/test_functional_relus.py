"""Functional ReLUs are layers like nn.ReLU modules (issue 12): derived names, the
`relu(MODULE)` layer-map syntax, the not-a-ReLU error, and the rules applied at them
(checked against plain autograd with a hand-written rule).

This file is also a model file: `tests/vis/test_functional_relus.py:NAME`.
"""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from generator.vis.core.backprop import Backprop
from generator.vis.core.models import load_model
from generator.vis.errors import EngineError

INPUT_SHAPE = (3, 24, 24)
HERE = Path(__file__)

RELUS = {
    "module": None,
    "F.relu": F.relu,
    "F.relu(inplace)": lambda t: F.relu(t, inplace=True),
    "torch.relu": torch.relu,
    "torch.relu_": torch.relu_,
    "Tensor.relu": lambda t: t.relu(),
    "Tensor.relu_": lambda t: t.relu_(),
}


class Blocks(nn.Module):
    """Four conv blocks (conv, BatchNorm, ReLU) and two Linear; block 3's ReLU is `relu3`."""

    def __init__(self, relu3=None):
        super().__init__()
        self.relu3 = relu3
        self.conv1, self.bn1, self.act1 = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()
        self.conv2, self.act2 = nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU()
        self.conv3, self.bn3 = nn.Conv2d(6, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.act3 = nn.ReLU()
        self.conv4, self.act4 = nn.Conv2d(6, 5, 3, stride=2, padding=1), nn.ReLU()
        self.fc5, self.act5 = nn.Linear(5 * 6 * 6, 7), nn.ReLU()
        self.fc6 = nn.Linear(7, 3)

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.conv2(x))
        x = self.bn3(self.conv3(x))
        x = self.act3(x) if self.relu3 is None else self.relu3(x)
        x = self.act4(self.conv4(x))
        x = self.act5(self.fc5(x.flatten(1)))
        return self.fc6(x)


def blocks(kind="module"):
    net = Blocks(RELUS[kind])
    with torch.no_grad():   # BatchNorm with non-trivial statistics
        for bn in (net.bn1, net.bn3):
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
    return net


for _kind in RELUS:
    globals()["blocks_" + _kind.replace(".", "_").replace("(", "_").replace(")", "")] = (
        lambda kind=_kind: blocks(kind))


def factory(kind: str) -> str:
    return f"{HERE}:blocks_" + kind.replace(".", "_").replace("(", "_").replace(")", "")


def load(kind, **kw):
    return load_model(factory(kind), device="cpu", **kw)


@pytest.mark.parametrize("kind", [k for k in RELUS if k != "module"])
def test_functional_relu_is_named_like_a_module(kind):
    modules = load("module")
    functional = load(kind)
    assert functional.layer_names == modules.layer_names == [
        "conv1", "conv2", "conv3", "conv4", "fc5", "fc6"]
    assert functional.layer("conv3").path == "relu(bn3)"
    assert [l.shape for l in functional.layers] == [l.shape for l in modules.layers]
    assert all(l.relu for l in functional.layers[:-1])


def test_functional_relu_straight_after_a_conv_names_the_conv():
    import vis_tiny_models  # noqa: F401  (the tests' tiny nets)

    m = load_model(f"{HERE.parent / 'vis_tiny_models.py'}:functional", device="cpu")
    assert [(l.name, l.path) for l in m.layers] == [
        ("conv1", "relu(conv1)"), ("conv2", "relu(conv2)"), ("conv3", "relu(conv3)"),
        ("fc4", "relu(fc)"), ("fc5", "out")]


def test_a_layer_map_can_name_a_functional_call():
    m = load("F.relu", layers={"early": "act1", "mid": "relu(bn3)", "logits": "fc6"})
    assert m.layer_names == ["early", "mid", "logits"]
    assert m.layer("mid").shape == (6, 12, 12) and m.layer("mid").relu


@pytest.mark.parametrize("path, what", [("bn3", "BatchNorm2d"), ("conv3", "Conv2d")])
def test_naming_a_module_that_is_not_a_relu_output_is_an_error(path, what):
    with pytest.raises(EngineError) as e:
        load("F.relu", layers={"conv3": path, "fc6": "fc6"})
    message = str(e.value)
    assert f"layer conv3 names '{path}' ({what}), whose output is not a ReLU output" in message
    assert "relu(" in message and "\n" not in message


def test_a_functional_call_that_does_not_exist_is_an_error():
    with pytest.raises(EngineError, match="layer x names module 'bn9', which does not exist"):
        load("F.relu", layers={"x": "relu(bn9)", "fc6": "fc6"})


def no_relu():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 22 * 22, 2))


def test_a_net_without_relus_cannot_be_named():
    with pytest.raises(EngineError, match="no ReLU follows a Conv2d or Linear"):
        load_model(f"{HERE}:no_relu", device="cpu")


def test_the_same_activations_as_the_module_net():
    torch.manual_seed(0)
    x = torch.randn(INPUT_SHAPE)
    a = Backprop(load("module"), x, "guided", method="autograd")
    b = Backprop(load("F.relu(inplace)"), x, "guided")
    for name in a.acts:
        torch.testing.assert_close(a.acts[name], b.acts[name])


# ---------------------------------------------------------------- fidelity

class HandRule(torch.autograd.Function):
    """relu with a rule's backward, written out here independently of the engine."""

    @staticmethod
    def forward(ctx, x, rule):
        ctx.rule = rule
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if rule_is(ctx, "guided"):
            return g.clamp(min=0) * (x > 0), None
        if rule_is(ctx, "deconv"):
            return g.clamp(min=0), None
        return g * (x > 0), None


def rule_is(ctx, name):
    return ctx.rule == name


def reference_image(net: Blocks, x, rule, layer: str, channel: int):
    """The unit image by plain autograd: the net's forward re-written with HandRule."""
    relu = lambda t: HandRule.apply(t, rule)  # noqa: E731
    x = x.unsqueeze(0).clone().requires_grad_(True)
    h1 = relu(net.bn1(net.conv1(x)))
    h2 = relu(net.conv2(h1))
    h3 = relu(net.bn3(net.conv3(h2)))
    h4 = relu(net.conv4(h3))
    h = {"conv1": h1, "conv2": h2, "conv3": h3, "conv4": h4}[layer]
    m = h[0, channel]
    r, s = divmod(int(torch.argmax(m.reshape(-1))), m.shape[-1])
    seed = torch.zeros_like(h)
    seed[0, channel, r, s] = h[0, channel, r, s]
    (g,) = torch.autograd.grad(h, x, seed)
    return g[0]


@pytest.mark.parametrize("rule", ["guided", "deconv", "gradient"])
@pytest.mark.parametrize("layer", ["conv3", "conv4"])
def test_rules_apply_at_functional_relus(rule, layer):
    model = load("F.relu")
    torch.manual_seed(3)
    x = torch.randn(INPUT_SHAPE)
    bp = Backprop(model, x, rule)
    assert bp.method == "autograd"
    got = bp.unit_images([(model.layer(layer), c) for c in range(3)])
    for c in range(3):
        want = reference_image(model.module, x, rule, layer, c)
        assert float(want.abs().max()) > 0
        torch.testing.assert_close(got[c], want, rtol=1e-5, atol=1e-6)


def test_mining_reads_a_functional_layer():
    from generator.vis.data.mining import Miner

    model = load("torch.relu")
    miner = Miner(model, [model.layer("conv3")], k=2)
    torch.manual_seed(0)
    x = torch.randn((4, *INPUT_SHAPE))
    miner.update(torch.arange(4), x)
    values = miner.state["conv3"][0]
    best = torch.stack([Backprop(model, x[n], "gradient").acts["conv3"].amax((1, 2))
                        for n in range(4)]).amax(0)
    torch.testing.assert_close(values[:, 0], best)
