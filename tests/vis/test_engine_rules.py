"""The three ReLU rules, on every way a model can call a ReLU."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from generator.vis.errors import EngineError
from generator.vis.core.rules import ReluRules, apply_rule, check_rule, is_rule_relu_output

X = torch.tensor([[-1.0, 2.0, 0.5, -0.3]])
G = torch.tensor([[3.0, -4.0, 5.0, -6.0]])
EXPECTED = {  # worked by hand: mask [x>0] = (0, 1, 1, 0)
    "gradient": [0.0, -4.0, 5.0, 0.0],
    "deconv": [3.0, 0.0, 5.0, 0.0],
    "guided": [0.0, 0.0, 5.0, 0.0],
}
CALLS = {
    "nn.ReLU": lambda t: nn.ReLU()(t),
    "nn.ReLU(inplace)": lambda t: nn.ReLU(inplace=True)(t),
    "F.relu": F.relu,
    "F.relu(inplace)": lambda t: F.relu(t, inplace=True),
    "F.relu positional inplace": lambda t: F.relu(t, True),
    "torch.relu": torch.relu,
    "torch.relu_": torch.relu_,
    "Tensor.relu": lambda t: t.relu(),
    "Tensor.relu_": lambda t: t.relu_(),
}


@pytest.mark.parametrize("rule", EXPECTED)
def test_apply_rule_by_hand(rule):
    assert apply_rule(rule, G, X > 0).tolist() == [EXPECTED[rule]]


@pytest.mark.parametrize("rule", EXPECTED)
def test_rules_are_idempotent(rule):
    once = apply_rule(rule, G, X > 0)
    assert torch.equal(apply_rule(rule, once, X > 0), once)


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("rule", EXPECTED)
def test_every_relu_form_follows_the_rule(rule, call):
    x = X.clone().requires_grad_(True)
    with ReluRules(rule):
        y = CALLS[call](x * 1)
    assert torch.equal(y.detach(), X.clamp(min=0))
    assert is_rule_relu_output(y)
    (gx,) = torch.autograd.grad(y, x, G)
    assert gx.tolist() == [EXPECTED[rule]]


def test_outside_the_mode_relu_is_plain():
    x = X.clone().requires_grad_(True)
    y = F.relu(x * 1)
    assert not is_rule_relu_output(y)


@pytest.mark.parametrize("act", [nn.GELU(), nn.SiLU(), nn.Sigmoid(), nn.Tanh(), nn.LeakyReLU(), nn.ReLU6()])
def test_nonlinearity_without_rule_fails_clearly_on_backward(act):
    x = X.clone().requires_grad_(True)
    with ReluRules("guided"):
        y = F.relu(act(x * 1))
    with pytest.raises(EngineError, match="defined only for ReLU"):
        torch.autograd.grad(y, x, G)


def test_unknown_rule():
    with pytest.raises(EngineError, match="guided, deconv, gradient"):
        check_rule("lrp")
