"""The three ReLU backward rules, and a way to impose them on any model.

A rule replaces the backward of every ReLU; `g` is the gradient arriving at the ReLU's
output and `x` its input:

* `gradient`: g * [x > 0]            (plain backpropagation)
* `deconv`:   relu(g)                (Zeiler & Fergus' deconvnet)
* `guided`:   relu(g) * [x > 0]      (Springenberg et al.'s guided backpropagation)

Each rule is idempotent (applying it twice equals applying it once); the engine relies on
this to hand a gradient that already had a layer's rule applied back to that layer's ReLU.

`ReluRules` is a `TorchFunctionMode`: while it is active every `F.relu`, `torch.relu`,
`Tensor.relu` and their in-place forms (which is what `nn.ReLU`, inplace or not, calls) run
through an autograd Function carrying the rule, so modules and functional calls in a
model's `forward` are covered alike. Other elementwise nonlinearities (GELU, SiLU, sigmoid,
tanh, leaky ReLU, ReLU6, ...) have no defined rule: their backward raises `EngineError`,
so a model that uses one below a visualized unit fails with one clear line, while one
that uses it only above (e.g. a final softmax) still works.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from generator.vis.errors import EngineError
from generator.vis.names import RULES


def check_rule(rule: str) -> str:
    """Return `rule` if it is a known rule name, else raise EngineError listing them."""
    if rule not in RULES:
        raise EngineError(f"unknown rule {rule!r}: use one of {', '.join(RULES)}")
    return rule


def apply_rule(rule: str, grad: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """The ReLU backward of `rule`: `grad` at the ReLU output, `active` = [x > 0]."""
    if rule == "gradient":
        return grad * active
    if rule == "deconv":
        return grad.clamp(min=0)
    if rule == "guided":
        return grad.clamp(min=0) * active
    raise EngineError(f"unknown rule {rule!r}: use one of {', '.join(RULES)}")


def apply_rule_(rule: str, grad: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """`apply_rule` in place on `grad` (which the caller owns); returns `grad`."""
    if rule == "gradient":
        return grad.mul_(active)
    if rule == "deconv":
        return grad.clamp_(min=0)
    if rule == "guided":
        return grad.clamp_(min=0).mul_(active)
    raise EngineError(f"unknown rule {rule!r}: use one of {', '.join(RULES)}")


class RuleReLU(torch.autograd.Function):
    """relu(x) whose backward is a rule; the rule is a plain string argument."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, rule):
        return x.clamp(min=0)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.rule = inputs[1]
        ctx.save_for_backward(output > 0)

    @staticmethod
    def backward(ctx, grad):
        (active,) = ctx.saved_tensors
        return apply_rule(ctx.rule, grad, active), None


class RuleReLUInplace(torch.autograd.Function):
    """In-place relu_(x) with a rule backward; keeps in-place semantics for callers that
    ignore the return value (`x.relu_()`)."""

    @staticmethod
    def forward(ctx, x, rule):
        x.clamp_(min=0)
        ctx.mark_dirty(x)
        ctx.rule = rule
        ctx.save_for_backward(x > 0)
        return x

    @staticmethod
    def backward(ctx, grad):
        (active,) = ctx.saved_tensors
        return apply_rule(ctx.rule, grad, active), None


class Undefined(torch.autograd.Function):
    """Identity whose backward refuses: a nonlinearity the rules do not define."""

    @staticmethod
    def forward(ctx, y, name):
        ctx.name = name
        return y.view_as(y)

    @staticmethod
    def backward(ctx, grad):
        raise EngineError(
            f"the model applies {ctx.name} below the visualized unit; the backward rules "
            f"are defined only for ReLU (nn.ReLU, F.relu, torch.relu, inplace or not)"
        )


_RELU = {torch.relu, F.relu, torch.Tensor.relu}
_RELU_INPLACE = {torch.relu_, F.relu_, torch.Tensor.relu_}
_UNDEFINED = {
    F.gelu, F.silu, F.elu, F.selu, F.celu, F.leaky_relu, F.leaky_relu_, F.hardtanh,
    F.hardtanh_, F.relu6, F.hardswish, F.hardsigmoid, F.mish, F.softplus, F.prelu, F.rrelu,
    F.glu, F.logsigmoid, F.softsign, F.tanhshrink, F.threshold, F.sigmoid, F.tanh,
    torch.sigmoid, torch.tanh, torch.Tensor.sigmoid, torch.Tensor.tanh, torch.sigmoid_,
    torch.tanh_, torch.Tensor.sigmoid_, torch.Tensor.tanh_, torch.prelu, torch.selu,
    torch.celu, torch.rrelu, torch.nn.functional.elu_,
}


def is_rule_relu_output(t: torch.Tensor) -> bool:
    """True when `t` was produced by a ReLU under `ReluRules` (so a rule applies at it)."""
    fn = getattr(t, "grad_fn", None)
    return isinstance(fn, (RuleReLU._backward_cls, RuleReLUInplace._backward_cls))


class ReluRules(TorchFunctionMode):
    """While active, every ReLU backpropagates with `rule` (see the module docstring)."""

    def __init__(self, rule: str = "guided"):
        super().__init__()
        self.rule = check_rule(rule)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _RELU or func in _RELU_INPLACE:
            inplace = func in _RELU_INPLACE or kwargs.get("inplace", False) or (
                func is F.relu and len(args) > 1 and bool(args[1]))
            x = args[0] if args else kwargs["input"]
            fn = RuleReLUInplace if inplace else RuleReLU
            return fn.apply(x, self.rule)
        out = func(*args, **kwargs)
        if func in _UNDEFINED and isinstance(out, torch.Tensor) and out.requires_grad:
            name = getattr(func, "__name__", str(func))
            return Undefined.apply(out, name)
        return out
