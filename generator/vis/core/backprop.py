"""Backpropagation with a rule from recorded state: one forward, many batched backwards.

`Backprop(model, x, rule)` forwards one image once and records every named layer's h_L.
`backward(grad, at, to)` then propagates a batch of gradients given at layer `at` down to
any lower named layers and/or the input pixels, all seeds in one pass.

Conventions (DESIGN.md, "The method"):

* The gradient "at" a layer L is the gradient w.r.t. L's pre-activation: for a layer
  whose h_L is a ReLU output, the rule has been applied at L's own ReLU; for a layer that
  is not (the logits), it is the gradient w.r.t. h_L.
* A gradient handed to `backward` at layer A is fed in at h_A; A's rule is applied again
  on the way down, which changes nothing (every rule is idempotent).
* A unit's seed: conv -> one-hot at the spatial argmax of h_L[c] (first index on ties)
  valued h_L[c, r, s]; fc -> h_L[c] at c.

Two implementations compute the same numbers:

* `autograd` works on any model the rules support (see `rules.py`): the forward runs
  under `ReluRules` and each seed is one `torch.autograd.grad` over the recorded graph.
* `chain` (see `chain.py`) works on models whose forward is a plain chain of Conv2d, ReLU,
  MaxPool2d, AdaptiveAvgPool2d, BatchNorm, Dropout, Flatten and Linear modules (AlexNet,
  VGG, the default model). It backpropagates by hand and, for conv seeds, only over the
  window of each layer that can be non-zero (the unit's receptive field), which is much
  cheaper. `method="auto"` picks it when the model qualifies.
"""
from __future__ import annotations

from typing import Sequence

import torch

from generator.vis.errors import EngineError
from generator.vis.core.models import Layer, Model
from generator.vis.core.rules import ReluRules, apply_rule, check_rule
from generator.vis.core.taps import hook_output

METHODS = ("auto", "autograd", "chain")


class Backprop:
    """One image's forward state for a model; batched backward passes from it."""

    def __init__(self, model: Model, x: torch.Tensor, rule: str = "guided",
                 method: str = "auto", batch_size: int = 64):
        self.model = model
        self.rule = check_rule(rule)
        if method not in METHODS:
            raise EngineError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
        if batch_size < 1:
            raise EngineError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        x = torch.as_tensor(x)
        if tuple(x.shape) != tuple(model.input_shape):
            raise EngineError(f"input has shape {tuple(x.shape)}; {model.name} takes "
                              f"{tuple(model.input_shape)} (C, H, W)")
        x = x.to(model.device, torch.float32)
        chain = None
        if method in ("auto", "chain"):
            from generator.vis.core.chain import compile_chain
            chain = compile_chain(model)
            if chain is None and method == "chain":
                raise EngineError(f"{model.name} is not a plain chain of supported modules; "
                                  f"use method='autograd'")
        if chain is not None:
            self.method = "chain"
            self._impl = chain.forward(x, self.rule)
        else:
            self.method = "autograd"
            self._impl = AutogradState(model, x, self.rule)
        self.acts: dict[str, torch.Tensor] = self._impl.acts
        self.logits: torch.Tensor = self._impl.logits

    # ------------------------------------------------------------ activations and seeds

    def location(self, layer: Layer, index: int) -> tuple[int, ...]:
        """(r, s) of the spatial argmax of a conv channel (first on ties); () for fc."""
        h = self.acts[layer.name][index]
        if layer.kind == "fc":
            return ()
        flat = int(torch.argmax(h.reshape(-1)))
        return divmod(flat, h.shape[-1])

    def activation(self, layer: Layer, index: int) -> float:
        """h_L[c] (fc) or max over space of h_L[c] (conv)."""
        h = self.acts[layer.name][index]
        return float(h.max()) if layer.kind == "conv" else float(h)

    def seeds(self, layer: Layer, indices: Sequence[int]) -> torch.Tensor:
        """(N, *h_L.shape): each unit's seed (see the module docstring)."""
        h = self.acts[layer.name]
        out = torch.zeros((len(indices), *h.shape), device=h.device, dtype=h.dtype)
        for n, c in enumerate(indices):
            loc = self.location(layer, c)
            out[(n, c, *loc)] = h[(c, *loc)]
        return out

    # ------------------------------------------------------------ backward

    def backward(self, grad: torch.Tensor, at: Layer,
                 to: Sequence[Layer | None]) -> list[torch.Tensor]:
        """Propagate `grad` (N, *h_at.shape) from layer `at` to each of `to`.

        An entry of `to` is a named layer strictly below `at` (its gradient, with the
        rule applied at its ReLU) or None (the input pixels, (N, C, H, W)).
        """
        grad = grad.to(self.model.device, torch.float32)
        if tuple(grad.shape[1:]) != tuple(at.shape):
            raise EngineError(f"gradient at {at.name} must be (N, {', '.join(map(str, at.shape))})")
        for layer in to:
            if layer is not None and self.model.position(layer) >= self.model.position(at):
                raise EngineError(f"layer {layer.name} is not below {at.name}; layers below "
                                  f"it: {', '.join(self._below_names(at)) or 'none'}")
        if len(grad) == 0:
            return [torch.zeros((0, *(l.shape if l else self.model.input_shape)),
                                device=self.model.device) for l in to]
        parts = [self._impl.backward(chunk, at, list(to))
                 for chunk in torch.split(grad, self.batch_size)]
        if len(parts) == 1:
            return parts[0]
        return [torch.cat([p[i] for p in parts]) for i in range(len(to))]

    def _below_names(self, layer: Layer) -> list[str]:
        return self.model.layer_names[:self.model.position(layer)]

    def unit_images(self, units: Sequence[tuple[Layer, int]]) -> torch.Tensor:
        """Input gradients (N, C, H, W) of several units, each seeded at its activation.

        Units of the same layer go through one batched backward.
        """
        out = torch.zeros((len(units), *self.model.input_shape), device=self.model.device)
        by_layer: dict[str, list[int]] = {}
        for n, (layer, _) in enumerate(units):
            by_layer.setdefault(layer.name, []).append(n)
        for name, rows in by_layer.items():
            layer = self.model.layer(name)
            seeds = self.seeds(layer, [units[n][1] for n in rows])
            (images,) = self.backward(seeds, layer, [None])
            out[rows] = images
        return out


class AutogradState:
    """The generic implementation: the recorded autograd graph of one forward."""

    def __init__(self, model: Model, x: torch.Tensor, rule: str):
        self.model = model
        self.rule = rule
        self.x = x.unsqueeze(0).requires_grad_(True)
        captured: dict[str, tuple[torch.Tensor, int]] = {}
        handles = []
        for layer in model.layers:
            def hook(mod, args, out, name=layer.name):
                captured[name] = (out, out._version)
            handles.append(hook_output(model.module, layer.path, hook))
        try:
            with torch.enable_grad(), ReluRules(rule):
                out = model.module(self.x)
        finally:
            for h in handles:
                h.remove()
        for layer in model.layers:
            h, version = captured[layer.name]
            if h._version != version:
                raise EngineError(
                    f"{model.name}: the output of {layer.path!r} (layer {layer.name}) is "
                    f"modified in place later in forward (e.g. by ReLU(inplace=True)); name "
                    f"the module after that operation instead")
        self.h = {name: t for name, (t, _) in captured.items()}
        self.acts = {name: t.detach()[0] for name, t in self.h.items()}
        self.logits = out.detach().reshape(-1)

    def backward(self, grad, at, to):
        """One autograd pass per seed over the recorded graph.

        (`is_grads_batched=True` would vmap the backward, but on CPU torch falls back to a
        per-sample loop for convolution backward and is slower than this plain loop.)
        """
        inputs = [self.h[l.name] if l is not None else self.x for l in to]
        out = [torch.zeros((len(grad), *(l.shape if l is not None else self.model.input_shape)),
                           device=grad.device) for l in to]
        for n in range(len(grad)):
            try:
                grads = torch.autograd.grad(self.h[at.name], inputs, grad[n:n + 1],
                                            retain_graph=True, allow_unused=True)
            except RuntimeError as exc:
                cause = exc.__cause__ or exc.__context__
                if isinstance(cause, EngineError):
                    raise cause from None
                raise
            for i, g in enumerate(grads):
                if g is not None:
                    out[i][n] = g[0]
        for i, layer in enumerate(to):
            if layer is not None and layer.relu:
                out[i] = apply_rule(self.rule, out[i], self.acts[layer.name] > 0)
        return out
