"""The fast path for chain models: a hand-written, windowed, batched backward.

A model qualifies when its forward is a plain chain of leaf modules -- Conv2d (numeric
zero padding), ReLU, MaxPool2d, AdaptiveAvgPool2d, BatchNorm (eval, running stats),
Dropout, Identity, Flatten, Linear -- each taking the previous one's output, with nothing
between them but reshapes (`torch.flatten`, `view`, `reshape`). AlexNet, VGG and the
default model do. `compile_chain` checks this once per model by tracing a forward with
hooks and a function mode, then replays the chain and compares the outputs.

The forward records what the backward needs: each ReLU's mask [x > 0] and each max-pool's
argmax indices. The backward then runs op by op over a batch of gradients. A conv unit's
gradient is zero outside its receptive field, so each row of the batch is carried as a
window (its own top-left offset, one common size) that grows layer by layer; only when a
window would cover its whole map does the row become a full map. Results equal plain
autograd with the rules (the tests compare both), in a fraction of the work.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from generator.vis.core.models import Layer, Model
from generator.vis.core.rules import apply_rule_

_IDENTITY = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)
_RESHAPES = {torch.flatten, torch.Tensor.flatten, torch.Tensor.view, torch.Tensor.reshape,
             torch.reshape, torch.Tensor.size, torch.Tensor.dim, torch.Tensor.contiguous,
             torch.Tensor.shape.__get__, torch.Tensor.ndim.__get__}


@dataclass
class Op:
    kind: str  # conv relu maxpool adaptive bn linear flatten identity
    module: nn.Module | None
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


def compile_chain(model: Model) -> "Chain | None":
    """The model as a `Chain`, or None when it is not a plain chain (cached per model)."""
    cache = model.engine_cache
    if "chain" not in cache:
        try:
            cache["chain"] = _compile(model)
        except _NotAChain:
            cache["chain"] = None
    return cache["chain"]


class _NotAChain(Exception):
    pass


class _OutsideCalls(TorchFunctionMode):
    """Records torch functions called outside leaf modules (other than reshapes)."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.foreign: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if self.depth == 0 and func not in _RESHAPES:
            self.foreign.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def _compile(model: Model) -> "Chain":
    module = model.module
    leaves = [(p, m) for p, m in module.named_modules() if p and not list(m.children())]
    calls: list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]] = []
    mode = _OutsideCalls()
    handles = []
    for path, m in leaves:
        def pre(mod, args):
            mode.depth += 1
        def post(mod, args, out, path=path):
            mode.depth -= 1
            calls.append((path, mod, args[0] if args else None, out))
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((1, *model.input_shape), generator=gen).to(model.device)
    try:
        with torch.no_grad(), mode:
            out = module(x)
    finally:
        for h in handles:
            h.remove()
    if mode.foreign or not calls or calls[-1][3] is not out:
        raise _NotAChain()
    ops: list[Op] = []
    paths: list[str] = []
    previous = x
    for path, m, inp, outp in calls:
        if not isinstance(inp, torch.Tensor) or not isinstance(outp, torch.Tensor):
            raise _NotAChain()
        if inp is not previous:
            same_data = inp.data_ptr() == previous.data_ptr() and inp.numel() == previous.numel()
            if not (same_data and previous.dim() == 4 and inp.dim() == 2):
                raise _NotAChain()
            ops.append(Op("flatten", None, tuple(previous.shape[1:]), tuple(inp.shape[1:])))
            paths.append("")
        ops.append(Op(_kind(m), m, tuple(inp.shape[1:]), tuple(outp.shape[1:])))
        paths.append(path)
        previous = outp
    chain = Chain(model, ops, _layer_ops(model, ops, paths))
    with torch.no_grad():
        replay = chain.run(x)
    if not torch.allclose(replay, out, rtol=1e-4, atol=1e-5 * float(out.abs().max()) + 1e-7):
        raise _NotAChain()
    return chain


def _kind(m: nn.Module) -> str:
    if isinstance(m, nn.Conv2d) and not isinstance(m.padding, str) and m.padding_mode == "zeros":
        return "conv"
    if isinstance(m, nn.ReLU):
        return "relu"
    if isinstance(m, nn.MaxPool2d):
        return "maxpool"
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return "adaptive"
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.running_var is not None and not m.training:
        return "bn"
    if isinstance(m, nn.Linear):
        return "linear"
    if isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1:
        return "flatten"
    if isinstance(m, _IDENTITY) and not m.training:
        return "identity"
    raise _NotAChain()


def _layer_ops(model, ops, paths) -> dict[str, tuple[int, int]]:
    """layer -> (op whose output is h_L, op after which the gradient 'at' L is read)."""
    out = {}
    for layer in model.layers:
        idx = [i for i, p in enumerate(paths) if p == layer.path or p.startswith(layer.path + ".")]
        if not idx:
            raise _NotAChain()
        top = idx[-1]
        if not layer.relu:
            out[layer.name] = (top, top + 1)
            continue
        j = top
        while j >= 0 and ops[j].kind == "identity":
            j -= 1
        if j < 0 or ops[j].kind != "relu":
            raise _NotAChain()
        out[layer.name] = (top, j)
    return out


class Chain:
    """A compiled chain model: `forward` one image, then batched windowed backwards."""

    def __init__(self, model: Model, ops: list[Op], layer_ops: dict[str, tuple[int, int]]):
        self.model = model
        self.ops = ops
        self.layer_ops = layer_ops
        self._phased: dict[int, torch.Tensor] = {}

    def phase_weights(self, conv: nn.Conv2d) -> torch.Tensor:
        """A stride-s conv's filters split by output phase: (C_out, C_in*s*s, k', k'),
        k' = ceil(k/s); tap a of the kernel is phase a % s, position a // s."""
        key = id(conv)
        if key not in self._phased:
            w = conv.weight.detach()
            cout, cin, kh, kw = w.shape
            s = conv.stride[0]
            kk_h, kk_w = -(-kh // s), -(-kw // s)
            out = w.new_zeros((cout, cin, s, s, kk_h, kk_w))
            for a in range(kh):
                for b in range(kw):
                    out[:, :, a % s, b % s, a // s, b // s] = w[:, :, a, b]
            self._phased[key] = out.reshape(cout, cin * s * s, kk_h, kk_w)
        return self._phased[key]

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """Plain replay of the chain (used to check the compilation)."""
        for op in self.ops:
            x = _forward(op, x)[0]
        return x

    def forward(self, x: torch.Tensor, rule: str, windowed: bool = True) -> "ChainState":
        return ChainState(self, x, rule, windowed)


def _forward(op: Op, x: torch.Tensor):
    """One op forward on a (1, ...) tensor: (output, recorded state)."""
    m = op.module
    if op.kind == "relu":
        y = x.clamp(min=0)
        return y, (x > 0).to(x.dtype)  # float: multiplies without a conversion
    if op.kind == "maxpool":
        y, idx = F.max_pool2d(x, m.kernel_size, m.stride, m.padding, m.dilation,
                              ceil_mode=m.ceil_mode, return_indices=True)
        return y, idx
    if op.kind == "flatten":
        return x.flatten(1), None
    return m(x), None


class ChainState:
    """The recorded forward of one image through a `Chain`."""

    def __init__(self, chain: Chain, x: torch.Tensor, rule: str, windowed: bool = True):
        self.chain = chain
        self.rule = rule
        self.windowed = windowed  # False: always full maps (for tests and benchmarks)
        self.flops = 0  # multiply-adds x 2 done by backward passes so far
        h = x.unsqueeze(0)
        outputs, self.state = [], []
        with torch.no_grad():
            for op in chain.ops:
                h, s = _forward(op, h)
                outputs.append(h)
                self.state.append(s)
        self.acts = {name: outputs[top][0] for name, (top, _) in chain.layer_ops.items()}
        self.logits = outputs[-1].reshape(-1)
        self._padded: dict[tuple[int, int], torch.Tensor] = {}

    # ------------------------------------------------------------------ backward

    def backward(self, grad: torch.Tensor, at: Layer, to: list[Layer | None]) -> list[torch.Tensor]:
        """Gradients (N, *h_at.shape) fed in at h_at, read at each of `to` (None: pixels).

        Op j's backward turns the gradient w.r.t. its output into the one w.r.t. its
        input; a layer is read after its ReLU op (its pre-activation), a layer without a
        ReLU after the op above it, the pixels after op 0.
        """
        ops, layer_ops = self.chain.ops, self.chain.layer_ops
        start = layer_ops[at.name][0]
        reads = [layer_ops[l.name][1] if l is not None else 0 for l in to]
        results: list[torch.Tensor | None] = [None] * len(to)
        with torch.no_grad():
            g = _Grad.start(grad, ops[start].out_shape, self.windowed)
            self._first_conv = True  # only seeds can have a single channel a row
            for j in range(start, min(reads) - 1, -1):
                g = self._step(j, g)
                for k, r in enumerate(reads):
                    if r == j:
                        results[k] = g.dense()
                        g.owned = False  # handed out: later ops must not write into it
        return results

    def _step(self, j: int, g: "_Grad") -> "_Grad":
        op = self.chain.ops[j]
        m = op.module
        if op.kind == "identity":
            return g
        if op.kind == "relu":
            t = g.data if g.owned else g.data.clone()
            mask = None if self.rule == "deconv" else self._window(j, self.state[j], g)
            return g.map(lambda _: apply_rule_(self.rule, t, mask))
        if op.kind == "flatten":
            return _Grad.full_map(g.data.reshape(len(g.data), *op.in_shape))
        if op.kind == "linear":
            self.flops += 2 * g.data.shape[0] * m.in_features * m.out_features
            return _Grad.vector(g.data @ m.weight)
        if op.kind == "bn":
            scale = m.weight / torch.sqrt(m.running_var + m.eps) if m.weight is not None else \
                1 / torch.sqrt(m.running_var + m.eps)
            shape = (1, -1) + (1,) * (g.data.dim() - 2)
            return g.map(lambda t: t * scale.reshape(shape))
        if op.kind == "adaptive":
            if op.in_shape == op.out_shape:
                return g
            full = g.dense()
            z = torch.zeros((len(full), *op.in_shape), device=full.device, requires_grad=True)
            with torch.enable_grad():
                (gi,) = torch.autograd.grad(F.adaptive_avg_pool2d(z, op.out_shape[1:]), z, full)
            return _Grad.full_map(gi)
        if op.kind == "conv":
            return self._conv(op, g)
        if op.kind == "maxpool":
            return self._maxpool(j, op, g)
        raise AssertionError(op.kind)

    def _conv(self, op: Op, g: "_Grad") -> "_Grad":
        m = op.module
        (sh, sw), (ph, pw), (dh, dw) = m.stride, m.padding, m.dilation
        kh, kw = m.kernel_size
        t = g.data
        n, cout, h, w = t.shape
        first, self._first_conv = self._first_conv, False
        active = t.ne(0).flatten(2).any(2) if first and m.groups == 1 and cout > 1 else None
        if active is not None and bool((active.sum(1) <= 1).all()):
            # One channel a row (a hierarchy node's masked state, a unit's seed): only that
            # channel's filters contribute -- a grouped transposed conv, one group a row.
            channel = active.int().argmax(1)
            single = t[torch.arange(n, device=t.device), channel].unsqueeze(0)
            self.flops += 2 * n * m.in_channels * kh * kw * h * w
            out = F.conv_transpose2d(single, m.weight[channel], stride=m.stride,
                                     dilation=m.dilation, groups=n)
            out = out.reshape(n, m.in_channels, *out.shape[-2:])
        elif m.groups == 1 and sh == sw > 1 and (dh, dw) == (1, 1):
            out = self._strided_conv(op, t)
        elif g.full and _exact_padding(op) is not None:
            # Whole maps: let the transposed conv drop the padding rows itself.
            self.flops += 2 * n * cout * (m.in_channels // m.groups) * kh * kw * h * w
            out = F.conv_transpose2d(t, m.weight, stride=m.stride, padding=m.padding,
                                     output_padding=_exact_padding(op), dilation=m.dilation,
                                     groups=m.groups)
            return _Grad.full_map(out)
        else:
            self.flops += 2 * n * cout * (m.in_channels // m.groups) * kh * kw * h * w
            out = F.conv_transpose2d(t, m.weight, stride=m.stride, dilation=m.dilation,
                                     groups=m.groups)
        return _Grad.settle(out, g.top * sh - ph, g.left * sw - pw, op.in_shape)

    def _strided_conv(self, op: Op, t: torch.Tensor) -> torch.Tensor:
        """conv_transpose2d(t, W, stride=s) as a stride-1 transposed conv onto s*s phases,
        then pixel_shuffle: same sums, but a dense kernel CPUs and GPUs run much faster
        than a strided one (AlexNet's conv1: stride 4, 11x11, 3 output channels)."""
        m = op.module
        (sh, sw), (kh, kw) = m.stride, m.kernel_size
        n, cout, h, w = t.shape
        self.flops += 2 * n * cout * m.in_channels * kh * kw * h * w  # the useful work
        out = F.pixel_shuffle(F.conv_transpose2d(t, self.chain.phase_weights(m)), sh)
        return out[:, :, :(h - 1) * sh + kh, :(w - 1) * sw + kw]

    def _maxpool(self, j: int, op: Op, g: "_Grad") -> "_Grad":
        m = op.module
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
        (kh, kw), (sh, sw) = pair(m.kernel_size), pair(m.stride or m.kernel_size)
        (ph, pw), (dh, dw) = pair(m.padding), pair(m.dilation)
        t = g.data
        n, c, h, w = t.shape
        if g.full:  # the recorded indices are already positions on the input map
            _, H, W = op.in_shape
            idx = self.state[j].reshape(1, c, -1).expand(n, -1, -1)
            out = t.new_zeros((n, c, H * W)).scatter_add_(2, idx, t.reshape(n, c, -1))
            return _Grad.full_map(out.reshape(n, c, H, W))
        hi, wi = (h - 1) * sh + dh * (kh - 1) + 1, (w - 1) * sw + dw * (kw - 1) + 1
        top, left = g.top * sh - ph, g.left * sw - pw
        win_w = op.in_shape[2]
        idx = self._window(j, self.state[j], g)  # (N, C, h, w) flat input positions
        rows = idx // win_w - top.view(-1, 1, 1, 1)
        cols = idx % win_w - left.view(-1, 1, 1, 1)
        rows, cols = rows.clamp(0, hi - 1), cols.clamp(0, wi - 1)  # only where t == 0
        out = torch.zeros((n, c, hi * wi), device=t.device, dtype=t.dtype)
        out.scatter_add_(2, (rows * wi + cols).reshape(n, c, -1), t.reshape(n, c, -1))
        return _Grad.settle(out.reshape(n, c, hi, wi), top, left, op.in_shape)

    def _window(self, j: int, recorded: torch.Tensor, g: "_Grad") -> torch.Tensor:
        """The recorded (1, C, H, W) map of op j under each row's window: (N, C, h, w)."""
        if g.data.dim() == 2 or g.full:
            return recorded
        n, _, h, w = g.data.shape
        H, W = recorded.shape[-2:]
        pad = max(0, int(-g.top.min()), int(-g.left.min()),
                  int((g.top + h).max()) - H, int((g.left + w).max()) - W)
        key = (j, pad)
        padded = self._padded.get(key)
        if padded is None:
            padded = F.pad(recorded[0], (pad, pad, pad, pad)) if pad else recorded[0]
            self._padded[key] = padded
        r = (g.top + pad).view(-1, 1) + torch.arange(h, device=g.top.device)
        q = (g.left + pad).view(-1, 1) + torch.arange(w, device=g.top.device)
        return padded[:, r[:, :, None], q[:, None, :]].permute(1, 0, 2, 3)


def _exact_padding(op: Op):
    """output_padding that makes a transposed conv return exactly the conv's input size,
    or None when torch cannot express it."""
    m = op.module
    extra = []
    for i in range(2):
        size = (op.out_shape[1 + i] - 1) * m.stride[i] - 2 * m.padding[i] + \
            m.dilation[i] * (m.kernel_size[i] - 1) + 1
        extra.append(op.in_shape[1 + i] - size)
        if not 0 <= extra[i] < max(m.stride[i], m.dilation[i]):
            return None
    return tuple(extra)


class _Grad:
    """A batch of gradients on one map: vectors (N, F), or windows (N, C, h, w) whose row n
    starts at (top[n], left[n]) of the (C, H, W) map. Entries of a window that fall outside
    the map are zero. `full` means every window is the whole map."""

    def __init__(self, data, top=None, left=None, shape=None, full=False, owned=True):
        self.data, self.top, self.left, self.full = data, top, left, full
        self.owned = owned  # False: data is the caller's tensor; copy before writing
        self.shape = tuple(shape) if shape is not None else tuple(data.shape[1:])

    @classmethod
    def vector(cls, data, owned=True):
        return cls(data, owned=owned)

    @classmethod
    def full_map(cls, data, owned=True):
        zero = torch.zeros(len(data), dtype=torch.long, device=data.device)
        return cls(data, zero, zero, data.shape[1:], full=True, owned=owned)

    @classmethod
    def start(cls, grad, shape, windowed=True):
        """Seeds on a map, shrunk to each row's bounding box of non-zeros when that pays."""
        if grad.dim() == 2:
            return cls.vector(grad, owned=False)
        if not windowed:
            return cls.full_map(grad, owned=False)
        n, c, H, W = grad.shape
        nz = grad.ne(0).any(1)
        rows, cols = nz.any(2), nz.any(1)
        first_r, first_c = rows.int().argmax(1), cols.int().argmax(1)
        last_r = H - 1 - rows.flip(1).int().argmax(1)
        last_c = W - 1 - cols.flip(1).int().argmax(1)
        empty = ~rows.any(1)  # an all-zero row needs no room at all
        last_r, last_c = torch.where(empty, first_r, last_r), torch.where(empty, first_c, last_c)
        h = int((last_r - first_r).clamp(min=0).max()) + 1
        w = int((last_c - first_c).clamp(min=0).max()) + 1
        if 2 * h * w > H * W:
            return cls.full_map(grad, owned=False)
        top = torch.minimum(first_r, torch.tensor(H - h, device=grad.device)).long()
        left = torch.minimum(first_c, torch.tensor(W - w, device=grad.device)).long()
        r = top.view(-1, 1) + torch.arange(h, device=grad.device)
        q = left.view(-1, 1) + torch.arange(w, device=grad.device)
        rows_idx = torch.arange(n, device=grad.device).view(-1, 1, 1)
        data = grad[rows_idx, :, r[:, :, None], q[:, None, :]].permute(0, 3, 1, 2)
        return cls(data.contiguous(), top, left, shape)

    @classmethod
    def settle(cls, data, top, left, shape):
        """A nominal window (may reach outside the map) after an op's backward."""
        n, c, h, w = data.shape
        _, H, W = shape
        if h * w >= H * W:
            if bool((top == top[0]).all()) and bool((left == left[0]).all()):
                t0, l0 = int(top[0]), int(left[0])
                if t0 <= 0 and l0 <= 0 and t0 + h >= H and l0 + w >= W:  # a view will do
                    return cls.full_map(data[:, :, -t0:H - t0, -l0:W - l0])
                full = F.pad(data, (l0, W - (l0 + w), t0, H - (t0 + h)))  # negative pads crop
                return cls.full_map(full)
            return cls.full_map(_paste(data, top, left, H, W))
        rows = top.view(-1, 1) + torch.arange(h, device=data.device)
        cols = left.view(-1, 1) + torch.arange(w, device=data.device)
        inside_r, inside_c = (rows >= 0) & (rows < H), (cols >= 0) & (cols < W)
        if not (bool(inside_r.all()) and bool(inside_c.all())):
            data = data * (inside_r[:, None, :, None] & inside_c[:, None, None, :])
        return cls(data, top, left, shape)

    def map(self, fn):
        return _Grad(fn(self.data), self.top, self.left, self.shape, self.full, owned=True)

    def dense(self) -> torch.Tensor:
        """(N, F) or the full maps (N, C, H, W)."""
        if self.data.dim() == 2 or self.full:
            return self.data
        _, H, W = self.shape
        return _paste(self.data, self.top, self.left, H, W)


def _paste(data, top, left, H, W):
    """Windows (N, C, h, w) at per-row offsets onto zero maps (N, C, H, W), clipped."""
    n, c, h, w = data.shape
    pad = max(0, int(-top.min()), int(-left.min()), int((top + h).max()) - H,
              int((left + w).max()) - W)
    canvas = data.new_zeros((n, c, H + 2 * pad, W + 2 * pad))
    r = (top + pad).view(-1, 1) + torch.arange(h, device=data.device)
    q = (left + pad).view(-1, 1) + torch.arange(w, device=data.device)
    rows_idx = torch.arange(n, device=data.device).view(-1, 1, 1)
    canvas[rows_idx, :, r[:, :, None], q[:, None, :]] = data.permute(0, 2, 3, 1)
    return canvas[:, :, pad:pad + H, pad:pad + W]
