"""What feature visualization and DeepDream measure: forward hooks on named layers (the
forward stops at the deepest one), the per-unit objectives, argument checks and the
per-picture seeds.

Objectives (per unit): `neuron` is h_L[c] at the centre of its map (fc units: h_L[c]),
`channel` the mean of h_L[c] over its map.
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Callable, Sequence

import torch
from torch import nn

from generator.vis.errors import EngineError
from generator.vis.core.models import Layer, Model
from generator.vis.core.taps import hook_output, split

OBJECTIVES = ("neuron", "channel")
MAX_STEPS = 10000

Progress = Callable[[int, int], None]  # (steps done, steps in all)


def check_steps(steps: int) -> int:
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS:
        raise EngineError(f"steps must be an integer in 1..{MAX_STEPS}, got {steps!r}")
    return steps


def check_lr(lr: float) -> float:
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0 or lr != lr or lr == float("inf"):
        raise EngineError(f"lr must be a positive number, got {lr!r}")
    return float(lr)


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise EngineError(f"unknown objective {objective!r}: use one of {', '.join(OBJECTIVES)}")
    return objective


def unit_seed(seed: int, unit: str, copy: int) -> int:
    """A 63-bit seed for one picture, independent of its batch position."""
    digest = hashlib.sha256(f"featurevis|{int(seed)}|{unit}|{copy}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


# ---------------------------------------------------------------- forward with hooks


class _Stop(Exception):
    """Raised by the deepest needed layer's hook: nothing after it is computed."""


@contextlib.contextmanager
def capturing(model: Model, layers: Sequence[Layer]):
    """Forward hooks on `layers`' modules; yields forward(x) -> (h, pre), both
    {layer name: (N, ...)}: h_L, and for a ReLU module its input (the pre-activation,
    whose gradient does not vanish on a dead unit; h_L itself otherwise).

    The forward stops at the deepest of them (later layers are not computed). Raises
    EngineError when a captured output is modified in place afterwards.
    """
    modules = dict(model.module.named_modules())
    wanted = {layer.name: layer for layer in layers}
    last = max(wanted.values(), key=model.position).name
    captured: dict[str, tuple[torch.Tensor, int]] = {}
    pre: dict[str, torch.Tensor] = {}
    handles = []
    for name, layer in wanted.items():
        module_path, functional = split(layer.path)
        module = modules[module_path]
        if functional:
            # a functional ReLU's input is this module's output, cloned before relu_ runs
            def out_hook(mod, args, out, name=name):
                pre[name] = out.clone()
            handles.append(module.register_forward_hook(out_hook))
        elif isinstance(module, nn.ReLU):
            # the input of a ReLU, cloned before an inplace ReLU overwrites it
            def pre_hook(mod, args, name=name):
                pre[name] = args[0].clone()
            handles.append(module.register_forward_pre_hook(pre_hook))

        def hook(mod, args, out, name=name):
            captured[name] = (out, out._version)
            if name == last:
                raise _Stop()
        handles.append(hook_output(model.module, layer.path, hook))

    def forward(x: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        captured.clear()
        pre.clear()
        try:
            model.module(x)
        except _Stop:
            pass
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(f"{model.name}: forward of a {tuple(x.shape[1:])} input failed "
                              f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})") from None
        for name, (h, version) in captured.items():
            if h._version != version:
                raise EngineError(f"{model.name}: the output of layer {name} is modified in "
                                  f"place later in forward; name the module after that operation")
        hs = {name: h for name, (h, _) in captured.items()}
        return hs, {name: pre.get(name, h) for name, h in hs.items()}

    try:
        yield forward
    finally:
        for h in handles:
            h.remove()


def unit_values(h: torch.Tensor, layer: Layer, channels: torch.Tensor, objective: str) -> torch.Tensor:
    """h (N, C[, H, W]) and one channel per element -> (N,) objective values."""
    rows = torch.arange(len(h), device=h.device)
    if layer.kind == "fc":
        return h[rows, channels]
    maps = h[rows, channels]  # (N, H, W)
    if objective == "neuron":
        return maps[:, maps.shape[1] // 2, maps.shape[2] // 2]
    return maps.mean(dim=(1, 2))


def require_gradient(values: torch.Tensor, model: Model, what: str) -> None:
    if not values.requires_grad:
        raise EngineError(f"{model.name}: {what} does not depend differentiably on the input "
                          f"(no gradient path from the input to it)")
