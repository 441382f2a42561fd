"""Running a user's model file: its import, factory, `preprocess()` and constants.

A model file is the user's code, so whatever it does (raise, call `sys.exit(0)`, set
`INPUT_SHAPE = 'abc'`, ship NaN weights) must end as one `EngineError` line naming the
file, never a traceback and never a silent exit 0 of the whole build.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from generator.vis.errors import EngineError

MAX_SIDE = 4096       # INPUT_SHAPE's H and W past this cannot be a real CNN input
MAX_CHANNELS = 64


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_user(where: str, what: str, fn: Callable, *args):
    """`fn(*args)`, any exception or SystemExit (even exit code 0) as one EngineError
    `where: WHAT failed (...)`. KeyboardInterrupt still stops the program."""
    try:
        return fn(*args)
    except EngineError:
        raise
    except SystemExit as exc:
        raise EngineError(f"{where}: {what} called sys.exit({exc.code!r}); a model file "
                          f"must not exit") from None
    except Exception as exc:
        raise EngineError(f"{where}: {what} failed ({type(exc).__name__}: "
                          f"{first_line(exc)})") from None


def input_shape(value, file: str) -> tuple[int, int, int]:
    """INPUT_SHAPE (or the module's `input_shape`) as (C, H, W) of sensible positive ints."""
    try:
        shape = tuple(value)
    except TypeError:
        shape = None
    ok = shape is not None and len(shape) == 3 and all(
        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
    if not ok or shape[0] > MAX_CHANNELS or max(shape[1:]) > MAX_SIDE:
        raise EngineError(f"{file}: INPUT_SHAPE must be (C, H, W) of positive integers "
                          f"(C <= {MAX_CHANNELS}, H, W <= {MAX_SIDE}), got {value!r:.60}")
    return shape


def labels(value, file: str) -> list[str] | None:
    """LABELS as a list of strings (None when the file has none)."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise EngineError(f"{file}: LABELS must be a list of class names, got {value!r:.60}")
    if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        raise EngineError(f"{file}: LABELS must be a list of class names (strings)")
    return [str(v) for v in value]


def norm_values(value, name: str, channels: int, file: str) -> tuple[float, ...]:
    """MEAN or STD: one finite number per channel (STD non-zero)."""
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        vals = ()
    if len(vals) != channels or not all(v == v and abs(v) != float("inf") for v in vals) \
            or (name == "STD" and 0.0 in vals):
        raise EngineError(f"{file}: {name} must be {channels} finite numbers"
                          f"{' (none zero)' if name == 'STD' else ''}, got {value!r:.60}")
    return vals


def check_finite(state: dict, where: str) -> None:
    """Refuse weights holding NaN or Inf: every figure made from them would be noise."""
    for key, t in state.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel() \
                and not bool(torch.isfinite(t).all()):
            raise EngineError(f"{where}: tensor {key} holds NaN or infinite values; "
                              f"these weights cannot be used")


@dataclass(frozen=True)
class GuardedPreprocess:
    """A model file's `preprocess(image)`, run guarded and checked to give (C, H, W)."""

    fn: Callable
    file: str
    shape: tuple[int, int, int]

    def __call__(self, image) -> torch.Tensor:
        x = run_user(self.file, "preprocess()", self.fn, image)
        if not isinstance(x, torch.Tensor):
            raise EngineError(f"{self.file}: preprocess() returned {type(x).__name__}, "
                              f"not a tensor")
        if tuple(x.shape) != tuple(self.shape):
            raise EngineError(f"{self.file}: preprocess() returned shape {tuple(x.shape)}, "
                              f"INPUT_SHAPE is {tuple(self.shape)}")
        return x


def blame(exc: BaseException, model_name: str) -> EngineError | None:
    """An error raised from inside a user's model file (its forward, a hook) while
    computing, as one line at the file's line; None when the file is not to blame."""
    import traceback

    file = model_name.rpartition(":")[0] if ".py:" in model_name else ""
    if not file:
        return None
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == file:
            what = f"sys.exit({exc.code!r})" if isinstance(exc, SystemExit) \
                else f"{type(exc).__name__}: {first_line(exc)}"
            return EngineError(f"{file}:{frame.lineno}: the model's code failed ({what})")
    return None
