"""Receptive fields computed from a network's architecture.

A location (r, s) of a conv layer can only be influenced by a rectangle of input pixels.
Its size, the step between neighbouring locations and the offset of location (0, 0)
follow from the chain of kernels, strides, paddings and dilations before the layer. We
learn that chain by running one dummy forward pass under a `TorchFunctionMode` that sees
every torch call, so modules (`nn.MaxPool2d`) and functional calls in a `forward`
(`F.max_pool2d(F.relu(x), 2)`, `torch.flatten`) count alike, in real execution order.

Patch grids crop that rectangle. Near the border it reaches outside the image; the crop
is then padded (never shifted), so every patch of a layer has the same size and the
unit's centre sits at the same place in each one.

Tensors are followed by identity from the input: a call's output gets its field from
the inputs that carry one (weights and constants carry none). Sliding windows (conv2d,
max/avg pooling, adaptive pooling with even bins) and `pad` move the field; a call that
keeps the map size is pointwise (activations, normalizations, dropout, channel
concatenation; a residual add takes the union of its branches' boxes); a call that
leaves no map (flatten, linear, a spatial mean) makes it global. Anything else that
changes the map size (interpolation, transposed convs, spatial slicing) is one error
naming the call and the module it ran in.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from generator.vis.core.taps import split
from generator.vis.errors import EngineError

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
    windows: tuple | None = ()   # per window, per axis: (kernel, stride, dilation, pad_before, input_size)

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
        if self.windows is None:            # merged branches: only their common box is known
            b = self.box(r, s)
            return Box(max(b.top, 0), max(b.left, 0), min(b.bottom, self.input_hw[0]),
                       min(b.right, self.input_hw[1]))
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
    windows: tuple | None = ()    # None: past a merge whose boxes the windows do not bound

    def made_global(self) -> "_Chain":
        """After a flatten, a linear layer or a spatial reduction: the whole input."""
        return _Chain(self.size, self.jump, self.start, self.hw, True, self.windows)

    def windows_with(self, window) -> tuple | None:
        """The windows so far and one more (per axis); None stays None."""
        return None if self.windows is None else self.windows + (tuple(window),)


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
    return _Chain(tuple(size), tuple(jump), tuple(start), tuple(hw), False, chain.windows_with(window))


def _arg(args, kwargs, i: int, name: str, default=None):
    """Argument `name` of a call, given at position i or by keyword."""
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def _tensors(value):
    """Every tensor in a call's arguments (lists and tuples included, as torch.cat takes)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


_MAX_POOLS = {"max_pool2d", "_max_pool2d", "max_pool2d_with_indices"}
_ADAPTIVE = {"adaptive_avg_pool2d", "adaptive_max_pool2d", "_adaptive_max_pool2d",
             "adaptive_max_pool2d_with_indices"}


def _windowed(name: str, chain: _Chain, args, kwargs) -> _Chain | None:
    """The chain after a sliding-window call (or pad), None when `name` is none of them."""
    if name == "conv2d":
        weight = _arg(args, kwargs, 1, "weight")
        return _window(chain, tuple(weight.shape[-2:]), _arg(args, kwargs, 3, "stride", 1),
                       _arg(args, kwargs, 4, "padding", 0), _arg(args, kwargs, 5, "dilation", 1),
                       False)
    if name in _MAX_POOLS or name == "avg_pool2d":
        kernel = _arg(args, kwargs, 1, "kernel_size")
        stride = _arg(args, kwargs, 2, "stride") or kernel      # None or [] mean the kernel
        if name == "avg_pool2d":
            return _window(chain, kernel, stride, _arg(args, kwargs, 3, "padding", 0), 1,
                           _arg(args, kwargs, 4, "ceil_mode", False))
        return _window(chain, kernel, stride, _arg(args, kwargs, 3, "padding", 0),
                       _arg(args, kwargs, 4, "dilation", 1), _arg(args, kwargs, 5, "ceil_mode", False))
    if name in _ADAPTIVE:
        size = _pair_opt(_arg(args, kwargs, 1, "output_size"))
        out = tuple(o if o is not None else i for o, i in zip(size, chain.hw))
        if out == chain.hw:
            return chain
        if out == (1, 1):
            return chain.made_global()
        if all(i % o == 0 for i, o in zip(chain.hw, out)):
            k = tuple(i // o for i, o in zip(chain.hw, out))
            return _window(chain, k, k, 0, 1, False)
        raise EngineError(f"adaptive pooling from {chain.hw} to {out} has uneven bins; "
                          f"use an input size divisible by the output size")
    if name == "pad":
        pad = list(_arg(args, kwargs, 1, "pad")) + [0, 0, 0, 0]
        before = (int(pad[2]), int(pad[0]))                  # (top, left)
        after = (int(pad[3]), int(pad[1]))                   # (bottom, right)
        return _Chain(chain.size, chain.jump,
                      tuple(chain.start[i] - before[i] * chain.jump[i] for i in range(2)),
                      tuple(chain.hw[i] + before[i] + after[i] for i in range(2)), False,
                      chain.windows_with((1, 1, 1, before[i], chain.hw[i]) for i in range(2)))
    return None


def _union(chains: list[_Chain]) -> _Chain:
    """Branches merged by a pointwise call (a residual add, a channel concat): the box
    that holds each branch's box. The largest branch's windows still bound it exactly
    when it holds the others (the usual case); otherwise only the box is known."""
    base = max(chains, key=lambda c: c.size[0] * c.size[1])
    lo = tuple(min(c.start[i] for c in chains) for i in range(2))
    hi = tuple(max(c.start[i] + c.size[i] for c in chains) for i in range(2))
    if lo == base.start and hi == tuple(base.start[i] + base.size[i] for i in range(2)):
        return base
    return _Chain(tuple(hi[i] - lo[i] for i in range(2)), base.jump, lo, base.hw, False, None)


class _Tracer(TorchFunctionMode):
    """Follows the input's field through every torch call of one dummy forward pass.

    State because the forward pass is one: `seen` maps each tensor (by identity, kept
    alive so ids are not reused) to its chain; `where` is the stack of running modules,
    for error messages."""

    def __init__(self, x: torch.Tensor, start: _Chain):
        super().__init__()
        self.seen: dict[int, tuple[torch.Tensor, _Chain]] = {id(x): (x, start)}
        self.where: list[tuple[str, nn.Module]] = []
        self.failure: EngineError | None = None

    def chain_of(self, t) -> _Chain | None:
        hit = self.seen.get(id(t))
        return hit[1] if hit is not None and hit[0] is t else None

    def place(self) -> str:
        path, mod = self.where[-1] if self.where else ("", None)
        kind = type(mod).__name__ if mod is not None else "the model"
        return f"{path} ({kind})" if path else f"{kind}.forward"

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        first = _first(out)
        if self.failure is not None or not isinstance(first, torch.Tensor):
            return out
        chains = [c for c in map(self.chain_of, _tensors((args, kwargs))) if c is not None]
        if not chains:              # weights, constants: nothing derived from the input
            return out
        try:
            self.seen[id(first)] = (first, self._follow(func, chains, args, kwargs, first))
        except EngineError as e:
            self.failure = EngineError(f"cannot compute receptive fields through "
                                       f"{self.place()}: {e}")
            raise _Done
        return out

    def _follow(self, func, chains, args, kwargs, out) -> _Chain:
        name = getattr(func, "__name__", str(func))
        out_hw = _hw(out)
        if any(c.is_global for c in chains) or out_hw is None:
            return chains[0].made_global()
        first = self.chain_of(_arg(args, kwargs, 0, "input"))
        new = _windowed(name, first, args, kwargs) if first is not None else None
        if new is not None:
            if not new.is_global and new.hw != out_hw:
                raise EngineError(f"{name}: expected output size {new.hw}, the model "
                                  f"produced {out_hw}")
            return new
        if all(c.hw == out_hw for c in chains):
            return _union(chains)
        if out_hw == (1, 1):
            return chains[0].made_global()
        raise EngineError(
            f"{name} changes the map from {chains[0].hw} to {out_hw}; supported: conv2d, "
            f"max/avg pooling, adaptive pooling with even bins, pad, calls that keep the map "
            f"size, flatten/linear")


def _first(out):
    """A call's or module's main output: the first of a tuple (max pooling's indices)."""
    return out[0] if isinstance(out, (tuple, list)) and out else out


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
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = torch.zeros(1, c, h, w, device=device, dtype=dtype)
    tracer = _Tracer(x, _Chain((1, 1), (1, 1), (0, 0), (h, w)))
    fields: dict[str, Field] = {}

    def enter(mod, args):
        tracer.where.append((names[id(mod)], mod))

    def leave(mod, args, out):
        tracer.where.pop()
        p = names[id(mod)]
        if p not in wanted or p in fields or tracer.failure is not None:
            return
        ch = tracer.chain_of(_first(out))
        if ch is None:
            tracer.failure = EngineError(f"cannot follow the model's forward pass from the "
                                         f"input to the output of {p}")
            raise _Done
        fields[p] = Field(ch.size, ch.jump, ch.start, (h, w),
                          ch.hw if not ch.is_global else (1, 1), ch.is_global, ch.windows)
        if len(fields) == len(wanted):
            raise _Done

    names = {id(m): p for p, m in named.items()}
    handles = [hd for m in named.values()
               for hd in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
    try:
        with torch.no_grad(), tracer:
            try:
                module(x)
            except _Done:
                pass
    finally:
        for hd in handles:
            hd.remove()
    if tracer.failure is not None:
        raise tracer.failure
    lost = [p for p in paths if p not in fields]
    if lost:
        raise EngineError(f"module {lost[0]!r} did not run in the model's forward pass")
    return {p: fields[p] for p in paths}


class _Done(Exception):
    """Stops the dummy forward pass once every wanted field is known (or one failed)."""


def layer_fields(model, names=None) -> dict[str, Field]:
    """Receptive fields of a loaded model's named layers (all layers by default)."""
    layers = [model.layer(n) for n in names] if names is not None else list(model.layers)
    # a functional ReLU is pointwise: its field is that of the module it is applied to
    paths = {l.name: split(l.path)[0] for l in layers}
    by_path = receptive_fields(model.module, model.input_shape, list(paths.values()))
    return {l.name: by_path[paths[l.name]] for l in layers}
