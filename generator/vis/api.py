"""The one narrow API between the site and the engine: figure requests in, results out.

Importing this module does not import torch: the site uses `model_spec` and
`engine_version` to key its cache on every build, and only calls `compute` (which
imports the engine) when some figure is missing. Results are plain JSON-able data plus
PNG tiles named by the hash of their bytes.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

# Bump when the meaning of a figure's data changes without any engine source changing.
API_VERSION = "1"
ENGINE_DIR = Path(__file__).resolve().parent
DEFAULT_WEIGHTS = ENGINE_DIR / "assets" / "default" / "fashion_alexnet.safetensors"
BUILTIN_MODELS = ("default", "alexnet", "vgg16", "resnet18")
KINDS = ("unit", "units", "hierarchy", "predictions", "featuremaps", "maxacts")


class RequestError(Exception):
    """A request that cannot be computed; `ref` says which (the caller's own reference)."""

    def __init__(self, ref, message: str):
        super().__init__(message)
        self.ref, self.message = ref, message


@dataclass(frozen=True)
class ModelSpec:
    """A model as the cache sees it: its name, weights and the files whose bytes define it."""

    name: str                      # registry name or `/abs/path/file.py:factory`
    weights: str | None            # absolute path, `imagenet`, or None
    files: tuple[Path, ...]        # weights file, model code: hashed into figure keys
    identity: str                  # what else identifies it (name, weights kind, version)
    builtin: bool                  # ships with the engine (its files live in the package)


@dataclass
class FigureRequest:
    """One figure to compute. `params` are already normalized (see the planner)."""

    kind: str
    model: str
    weights: str | None
    images: list[str]
    params: dict
    ref: object = None             # echoed in RequestError so the caller can place it


@dataclass
class FigureResult:
    """A computed figure: JSON-able `data` referring to `tiles` (name -> PNG bytes)."""

    data: dict
    tiles: dict[str, bytes] = field(default_factory=dict)


def tile_name(png: bytes) -> str:
    """A tile's name: the hash of its bytes, so equal tiles share one file."""
    return hashlib.sha256(png).hexdigest()[:24] + ".png"


@lru_cache(maxsize=1)
def engine_version() -> str:
    """API version plus a hash of the engine's sources: editing the engine invalidates figures."""
    h = hashlib.sha256(API_VERSION.encode())
    for path in sorted(ENGINE_DIR.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return f"{API_VERSION}-{h.hexdigest()[:16]}"


def _find(name: str, base_dirs, what: str) -> Path:
    raw = Path(name).expanduser()
    for cand in ([raw] if raw.is_absolute() else [Path(b) / raw for b in base_dirs] or [raw]):
        if cand.is_file():
            return cand.resolve()
    raise RequestError(None, f"{what} {name!r} not found")


def model_spec(name: str, weights: str | None = None, base_dirs=()) -> ModelSpec:
    """Resolve a model name and weights to a `ModelSpec`, without importing torch.

    `name` is a registry name (`default`, `alexnet`, ...) or `file.py:factory`;
    `weights` is a file (state_dict or .safetensors), `imagenet`, or None.
    """
    name = str(name)
    files: list[Path] = []
    builtin = True
    if ":" in name and name.split(":", 1)[0].endswith(".py"):
        path, factory = name.split(":", 1)
        code = _find(path, base_dirs, "model file")
        files.append(code)
        name, builtin = f"{code}:{factory}", False
    elif name not in BUILTIN_MODELS:
        raise RequestError(None, f"unknown model {name!r}; use one of {', '.join(BUILTIN_MODELS)} "
                                 "or path/to/file.py:factory")
    if weights in (None, "") and name == "default":
        files.append(DEFAULT_WEIGHTS)
        weights = None
    elif weights == "imagenet":
        pass
    elif weights not in (None, ""):
        w = _find(str(weights), base_dirs, "weights file")
        files.append(w)
        weights, builtin = str(w), False
    identity = f"{name}|weights={'imagenet' if weights == 'imagenet' else 'file' if weights else 'builtin'}"
    return ModelSpec(name=name, weights=weights, files=tuple(files), identity=identity,
                     builtin=builtin)


def compute(requests: list[FigureRequest], device=None, progress: Callable[[int], None] | None = None,
            on_result: Callable[[int, FigureResult], None] | None = None) -> list[FigureResult]:
    """Compute figures, grouped by (model, image): each image forwarded once per model.

    Every request is checked first (model loads, images decode, units exist), so a bad
    request raises `RequestError(ref, message)` before anything is computed. `progress(n)`
    is called as figures complete; `on_result(i, result)` receives each as soon as it is
    done so the caller can cache it.
    """
    from generator.vis import figures_compute  # imports torch

    return figures_compute.compute(requests, device=device, progress=progress,
                                   on_result=on_result)
