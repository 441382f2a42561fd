"""Where a named layer's h_L is read: a module's output, or a functional ReLU's.

A layer map value is a module path (`features.11`: the output of that module) or
`relu(PATH)`: the output of the `F.relu` / `torch.relu` / `Tensor.relu` call (in place or
not) whose input is the output of module PATH, e.g. `relu(bn3)` for
`x = F.relu(self.bn3(self.conv3(x)))`. A functional call is no module, so it cannot carry
a forward hook; `hook_output` gives both kinds the same hook interface instead, so every
part of the engine that reads h_L (backprop, mining, patches, objectives) handles them
alike. A functional tap watches the module's output tensor by identity and fires when a
ReLU is applied to that very tensor, through a `TorchFunctionMode` pushed for the
duration of the model's forward (by hooks on the root module).
"""
from __future__ import annotations

import re
import weakref

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

RELU_CALLS = {torch.relu, F.relu, torch.Tensor.relu, torch.relu_, F.relu_, torch.Tensor.relu_}
_FUNCTIONAL = re.compile(r"relu\(([^()]*)\)")


def split(path: str) -> tuple[str, bool]:
    """'relu(bn3)' -> ('bn3', True); 'features.1' -> ('features.1', False)."""
    m = _FUNCTIONAL.fullmatch(path)
    return (m.group(1), True) if m else (path, False)


def functional(module_path: str) -> str:
    """The layer-map value of the ReLU call applied to `module_path`'s output."""
    return f"relu({module_path})"


def relu_input(func, args, kwargs):
    """The input tensor of a ReLU call, or None when `func` is no ReLU."""
    if func not in RELU_CALLS:
        return None
    return args[0] if args else (kwargs or {}).get("input")


class _Watch(TorchFunctionMode):
    """Fires the hooks of a watched tensor when a ReLU is applied to it."""

    def __init__(self):
        super().__init__()
        self.watched: dict[int, tuple[torch.Tensor, list]] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        x = relu_input(func, args, kwargs) if self.watched else None
        entry = self.watched.get(id(x)) if x is not None else None
        if entry is not None and entry[0] is x:
            del self.watched[id(x)]
            for fn in list(entry[1]):
                fn(None, (x,), out)
        return out


class _RootTaps:
    """The functional taps of one root module: one mode, pushed while it runs forward."""

    def __init__(self, root: nn.Module):
        self.mode = _Watch()
        self.count = 0
        self.pushed = 0
        self.handles = [root.register_forward_pre_hook(self._enter),
                        root.register_forward_hook(self._exit, always_call=True)]

    def _enter(self, mod, args):
        self.mode.__enter__()
        self.pushed += 1

    def _exit(self, mod, args, out):
        if self.pushed:
            self.pushed -= 1
            self.mode.watched.clear()
            self.mode.__exit__(None, None, None)


_ROOTS: "weakref.WeakKeyDictionary[nn.Module, _RootTaps]" = weakref.WeakKeyDictionary()


class _Handle:
    def __init__(self, removers):
        self.removers = removers

    def remove(self) -> None:
        for fn in self.removers:
            fn()
        self.removers = []


def hook_output(root: nn.Module, path: str, fn) -> _Handle:
    """Call `fn(module, args, out)` with layer `path`'s output on each forward of `root`
    (for a functional ReLU, `module` is None and `args` is its input). KeyError when the
    module does not exist."""
    module_path, is_call = split(path)
    module = dict(root.named_modules())[module_path]
    if not is_call:
        return module.register_forward_hook(fn)
    taps = _ROOTS.get(root)
    if taps is None:
        taps = _ROOTS[root] = _RootTaps(root)
    taps.count += 1

    def watch(mod, args, out):
        if isinstance(out, torch.Tensor) and taps.pushed:
            taps.mode.watched.setdefault(id(out), (out, []))[1].append(fn)

    handle = module.register_forward_hook(watch)

    def release():
        handle.remove()
        taps.count -= 1
        if taps.count == 0:
            for h in taps.handles:
                h.remove()
            _ROOTS.pop(root, None)

    return _Handle([release])
