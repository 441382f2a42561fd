"""Receptive fields computed from a network's architecture.

A location (r, s) of a conv layer can only be influenced by a rectangle of input pixels.
Its size, the step between neighbouring locations and the offset of location (0, 0)
follow from the chain of kernels, strides, paddings and dilations before the layer. We
learn that chain by running one dummy forward pass with hooks on every leaf module, so
the order is the real execution order, not the registration order.

Patch grids crop that rectangle. Near the border it reaches outside the image; the crop
is then padded (never shifted), so every patch of a layer has the same size and the
unit's centre sits at the same place in each one.

Tensors are followed by identity: a module's input is the output of the module that
produced it. An input made by a functional op (`F.relu(x)`) is matched to the latest
module output of the same shape. Branches that are merged back by functional ops
(residual adds) are assumed to lie inside the main path's field, which holds for the
usual centred, symmetrically padded convolutions.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from generator.vis.core.taps import split
from generator.vis.errors import EngineError

# Modules that act on each spatial location separately (or only across channels).
POINTWISE = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus,
    nn.Identity, nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.BatchNorm2d,
    nn.LocalResponseNorm, nn.Softmax2d,
)
# Modules after which every output depends on the whole input.
GLOBAL = (nn.Flatten, nn.Linear, nn.LazyLinear)


@dataclass(frozen=True)
class Box:
    """A half-open input rectangle [top, bottom) x [left, right); may reach outside."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left


@dataclass(frozen=True)
class Field:
    """Where each location of one layer looks in the input.

    Per axis (rows, cols): `size` is the box's extent, `jump` the input distance between
    neighbouring locations, `start` the input coordinate of location 0's first pixel
    (negative when padding reaches outside). A global field (fc layers, or anything after
    a flatten) covers the whole input at every location.
    """

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[int, int]
    input_hw: tuple[int, int]
    output_hw: tuple[int, int]
    is_global: bool = False
    windows: tuple = ()   # per sliding window, per axis: (kernel, stride, dilation, pad_before, input_size)

    def box(self, r: int, s: int) -> Box:
        """The input box of location (r, s)."""
        if self.is_global:
            return Box(0, 0, self.input_hw[0], self.input_hw[1])
        top = self.start[0] + r * self.jump[0]
        left = self.start[1] + s * self.jump[1]
        return Box(top, left, top + self.size[0], left + self.size[1])

    def clipped(self, r: int, s: int) -> Box:
        """The bounding box of the input pixels that really reach (r, s).

        Tighter than `box` clipped to the image when an intermediate layer's window hangs
        over its own padding (e.g. a strided layer that never reads the last column).
        """
        if self.is_global:
            return self.box(r, s)
        rows, cols = _reach(r, (w[0] for w in self.windows)), _reach(s, (w[1] for w in self.windows))
        return Box(min(rows), min(cols), max(rows) + 1, max(cols) + 1)


def _reach(x: int, windows) -> set[int]:
    """Input positions (one axis) that reach position x through the windows.

    Followed as a set, not an interval: a dilated window may skip the position that would
    otherwise be the box's edge.
    """
    positions = {x}
    for k, st, d, before, size in reversed(list(windows)):
        positions = {p * st - before + d * j for p in positions for j in range(k)}
        positions = {p for p in positions if 0 <= p < size} or positions
    return positions


@dataclass
class _Chain:
    """Running field of one tensor: per-axis size, jump, start; hw of the tensor."""

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[int, int]
    hw: tuple[int, int]
    is_global: bool = False
    windows: tuple = ()


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _window(chain: _Chain, kernel, stride, padding, dilation, ceil_mode) -> _Chain:
    """The chain after a sliding window (conv or pool)."""
    k, st, d = _pair(kernel), _pair(stride), _pair(dilation)
    if padding == "valid":
        before = total = (0, 0)
    elif padding == "same":  # stride 1 only: d*(k-1) in all, the smaller half first
        total = tuple(d[i] * (k[i] - 1) for i in range(2))
        before = tuple(t // 2 for t in total)
    else:
        before = _pair(padding)
        total = tuple(2 * b for b in before)
    size, jump, start, hw, window = [], [], [], [], []
    for i in range(2):
        window.append((k[i], st[i], d[i], before[i], chain.hw[i]))
        eff = d[i] * (k[i] - 1) + 1
        size.append(chain.size[i] + (eff - 1) * chain.jump[i])
        start.append(chain.start[i] - before[i] * chain.jump[i])
        jump.append(chain.jump[i] * st[i])
        span = chain.hw[i] + total[i] - eff
        out = (-(-span // st[i]) if ceil_mode else span // st[i]) + 1
        if ceil_mode and (out - 1) * st[i] >= chain.hw[i] + before[i]:
            out -= 1
        hw.append(out)
    return _Chain(tuple(size), tuple(jump), tuple(start), tuple(hw), False,
                  chain.windows + (tuple(window),))


def _step(chain: _Chain, module: nn.Module, path: str, out_hw) -> _Chain:
    """The chain after one leaf module, or an EngineError naming the module."""
    if chain.is_global or isinstance(module, GLOBAL):
        return _Chain(chain.size, chain.jump, chain.start, chain.hw, True, chain.windows)
    if isinstance(module, POINTWISE):
        return chain
    if isinstance(module, nn.Conv2d):
        new = _window(chain, module.kernel_size, module.stride, module.padding,
                      module.dilation, False)
    elif isinstance(module, nn.MaxPool2d):
        new = _window(chain, module.kernel_size, module.stride or module.kernel_size,
                      module.padding, module.dilation, module.ceil_mode)
    elif isinstance(module, nn.AvgPool2d):
        new = _window(chain, module.kernel_size, module.stride or module.kernel_size,
                      module.padding, 1, module.ceil_mode)
    elif isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        out = tuple(o if o is not None else i for o, i in zip(_pair_opt(module.output_size), chain.hw))
        if out == chain.hw:
            return chain
        if out == (1, 1):
            return _Chain(chain.size, chain.jump, chain.start, chain.hw, True, chain.windows)
        if all(i % o == 0 for i, o in zip(chain.hw, out)):
            k = tuple(i // o for i, o in zip(chain.hw, out))
            new = _window(chain, k, k, 0, 1, False)
        else:
            raise EngineError(
                f"cannot compute receptive fields through {path} ({type(module).__name__}): "
                f"adaptive pooling from {chain.hw} to {out} has uneven bins; "
                f"use an input size divisible by the output size")
    else:
        raise EngineError(
            f"cannot compute receptive fields through {path} ({type(module).__name__}); "
            f"supported: Conv2d, MaxPool2d, AvgPool2d, adaptive pooling, pointwise "
            f"activations/normalizations/dropout, Flatten, Linear")
    if out_hw is not None and tuple(out_hw) != new.hw:
        raise EngineError(
            f"cannot compute receptive fields through {path} ({type(module).__name__}): "
            f"expected output size {new.hw}, the model produced {tuple(out_hw)}")
    return new


def _pair_opt(v):
    return (v, v) if v is None or isinstance(v, int) else tuple(v)


def _hw(t):
    return tuple(t.shape[-2:]) if isinstance(t, torch.Tensor) and t.dim() == 4 else None


def receptive_fields(module: nn.Module, input_shape, paths) -> dict[str, Field]:
    """For each module path in `paths`, the receptive field of that module's output.

    `input_shape` is (C, H, W). Runs one forward pass on a zero image (no gradients).
    """
    paths = list(paths)
    wanted = set(paths)
    named = dict(module.named_modules())
    missing = [p for p in paths if p not in named]
    if missing:
        raise EngineError(f"no module {missing[0]!r} in the model; valid paths look like "
                          f"{', '.join(list(named)[1:4])}")
    c, h, w = input_shape
    start = _Chain((1, 1), (1, 1), (0, 0), (h, w))
    seen: dict[int, tuple[torch.Tensor, _Chain]] = {}   # id(tensor) -> (tensor, chain)
    last: list[tuple[torch.Tensor, _Chain]] = []
    fields: dict[str, Field] = {}
    failure: list[EngineError] = []

    def chain_of(x) -> _Chain:
        if id(x) in seen and seen[id(x)][0] is x:
            return seen[id(x)][1]
        for t, ch in reversed(last):  # made by a functional op: latest output of its shape
            if _hw(t) == _hw(x) and (ch.is_global or _hw(x) == ch.hw):
                return ch
        if _hw(x) == (h, w) and not last:
            return start
        if _hw(x) is None and last:   # flattened by a functional op
            ch = last[-1][1]
            return _Chain(ch.size, ch.jump, ch.start, ch.hw, True, ch.windows)
        raise EngineError(f"cannot follow the model's forward pass to a tensor of shape "
                          f"{tuple(x.shape)}; receptive fields need a chain of modules")

    def record(t, ch):
        seen[id(t)] = (t, ch)
        last.append((t, ch))

    def hook(mod, args, out):
        if failure:
            return
        p = names[id(mod)]
        try:
            if leaf[id(mod)]:
                x = args[0] if args else None
                ch = chain_of(x) if x is not None else start
                ch = _step(ch, mod, p, _hw(out))
                if isinstance(out, torch.Tensor):
                    record(out, ch)
            else:
                ch = chain_of(out)
            if p in wanted and p not in fields:
                fields[p] = Field(ch.size, ch.jump, ch.start, (h, w),
                                  ch.hw if not ch.is_global else (1, 1), ch.is_global,
                                  ch.windows)
                if len(fields) == len(wanted):
                    raise _Done
        except EngineError as e:
            failure.append(e)
            raise _Done

    names = {id(m): p for p, m in named.items()}
    leaf = {id(m): not any(True for _ in m.children()) for m in named.values()}
    handles = [m.register_forward_hook(hook) for p, m in named.items()
               if p and (leaf[id(m)] or p in wanted)]
    try:
        param = next(module.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        x = torch.zeros(1, c, h, w, device=device, dtype=dtype)
        start_t = x
        seen[id(start_t)] = (start_t, start)
        with torch.no_grad():
            try:
                module(x)
            except _Done:
                pass
    finally:
        for hd in handles:
            hd.remove()
    if failure:
        raise failure[0]
    lost = [p for p in paths if p not in fields]
    if lost:
        raise EngineError(f"module {lost[0]!r} did not run in the model's forward pass")
    return {p: fields[p] for p in paths}


class _Done(Exception):
    """Stops the dummy forward pass once every wanted field is known."""


def layer_fields(model, names=None) -> dict[str, Field]:
    """Receptive fields of a loaded model's named layers (all layers by default)."""
    layers = [model.layer(n) for n in names] if names is not None else list(model.layers)
    # a functional ReLU is pointwise: its field is that of the module it is applied to
    paths = {l.name: split(l.path)[0] for l in layers}
    by_path = receptive_fields(model.module, model.input_shape, list(paths.values()))
    return {l.name: by_path[paths[l.name]] for l in layers}
