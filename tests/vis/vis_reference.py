"""An independent implementation of the method, for the engine's tests.

It shares nothing with `generator.vis` but the layer map: ReLUs are swapped (by patching
`F.relu` / `torch.relu`, which `nn.ReLU` calls) for `x * (x > 0)` with a tensor hook that
applies the rule, every quantity is one unbatched `torch.autograd.grad` after a fresh
forward, and gradients "at" a layer are taken w.r.t. the ReLU's input itself.
"""
import contextlib
from unittest import mock

import torch
import torch.nn.functional as F


class _Relus:
    def __init__(self, rule):
        self.rule = rule
        self.inputs = {}  # id(relu output) -> relu input

    def relu(self, x, inplace=False):
        y = x * (x > 0)
        if self.rule == "deconv":
            y = x + (y - x).detach()  # forward relu(x), backward identity
        if self.rule in ("guided", "deconv"):
            y.register_hook(lambda g: g.clamp(min=0))
        self.inputs[id(y)] = x
        return y


@contextlib.contextmanager
def _patched(rule):
    r = _Relus(rule)

    def relu_method(x):  # a plain function, so that `t.relu()` passes t as x
        return r.relu(x)

    with mock.patch.object(F, "relu", r.relu), mock.patch.object(torch, "relu", r.relu), \
            mock.patch.object(torch.Tensor, "relu", relu_method), \
            mock.patch.object(torch.Tensor, "relu_", relu_method):
        yield r


def forward(model, x, rule):
    """Fresh forward: (input leaf, {layer: (h, pre)}), pre = the ReLU input or h itself."""
    x = x.detach().clone().to(torch.float32).unsqueeze(0).requires_grad_(True)
    modules = dict(model.module.named_modules())
    outs, handles = {}, []
    for layer in model.layers:
        handles.append(modules[layer.path].register_forward_hook(
            lambda m, a, o, name=layer.name: outs.__setitem__(name, o)))
    try:
        with torch.enable_grad(), _patched(rule) as r:
            model.module(x)
    finally:
        for h in handles:
            h.remove()
    return x, {name: (h, r.inputs.get(id(h), h)) for name, h in outs.items()}


def seed(h, layer_kind, c):
    s = torch.zeros_like(h)
    if layer_kind == "fc":
        s[0, c] = h[0, c]
    else:
        flat = h[0, c].reshape(-1)
        i = int(torch.argmax(flat))
        r, q = divmod(i, h.shape[-1])
        s[0, c, r, q] = h[0, c, r, q]
    return s


def walk(model, x, rule, units, child_layer=None):
    """Follow `units` (root first) with masking; return (input gradient, weights at
    `child_layer` of the last unit or None)."""
    x, caps = forward(model, x, rule)
    layer, c = model.parse_unit(units[0])
    h, _ = caps[layer.name]
    cur_t, cur_g = h, seed(h, layer.kind, c)
    for u in units[1:]:
        layer, c = model.parse_unit(u)
        target = caps[layer.name][1]
        (g,) = torch.autograd.grad(cur_t, target, cur_g, retain_graph=True)
        kept = torch.zeros_like(g)
        kept[:, c] = g[:, c]
        denom = g[:, c].abs().sum()
        kept = kept * (g.abs().sum() / denom) if denom > 0 else kept * 0
        cur_t, cur_g = target, kept
    (image,) = torch.autograd.grad(cur_t, x, cur_g, retain_graph=True)
    weights = None
    if child_layer is not None:
        h, pre = caps[child_layer]
        (g,) = torch.autograd.grad(cur_t, pre, cur_g, retain_graph=True)
        prod = (h * g)[0]
        weights = (prod.flatten(1).mean(1) if prod.dim() > 1 else prod).abs()
    return image[0].detach(), weights.detach() if weights is not None else None


def tree(model, x, rule, root, depth, children):
    """The whole hierarchy by `walk` alone: {path: (unit, weight, image)} and the order."""
    nodes = {}
    image, _ = walk(model, x, rule, [root])
    nodes[root] = (None, image)
    path = [root]
    for _ in range(depth):
        parent_layer, _ = model.parse_unit(path[-1])
        below = model.below(parent_layer)
        if below is None:
            break
        _, w = walk(model, x, rule, path, below.name)
        order = sorted(range(len(w)), key=lambda i: (-float(w[i]), i))[:children]
        for c in order:
            unit = f"{below.name}_{c}"
            img, _ = walk(model, x, rule, path + [unit])
            nodes["-".join(path + [unit])] = (float(w[c]), img)
        path = path + [f"{below.name}_{order[0]}"]
    return nodes
