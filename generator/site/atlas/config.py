"""`[atlas]` in site.toml: off unless the table is there, every key checked in one line."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from generator.vis import api

from ..errors import BuildError, Pos

_OPT = api.KINDS["optimize"].keys
# key -> (type, default, help)
KEYS: dict[str, tuple[type, object, str]] = {
    "model": (str, "default", "model name, file.py:factory or weights file"),
    "weights": (str, "", "weights file for a model file (default: the model's own)"),
    "dataset": (str, "fashion-sample", "dataset spec, as for patch grids"),
    "layers": (list, [], "layer names (default: every named conv and fc layer)"),
    "k": (int, 8, "dataset examples per unit"),
    "name": (str, "", "the model's name in URLs, /atlas/NAME/ (default: from the model)"),
    **{key: (float if key == "lr" else str if _OPT[key].kind == "choice" else int,
             _OPT[key].default, _OPT[key].doc)
       for key in ("steps", "seed", "objective", "lr", "param", "transforms")},
    "diversity": (int, 1, "pictures per unit pushed apart from each other, shown on its page "
                          "beside the main picture (1: the main picture only)"),
    "diversity_layers": (list, [], "the layers whose units get diversity pictures "
                                   "(default: every atlas layer)"),
}
K_RANGE = (1, 64)
NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclass(frozen=True)
class AtlasConfig:
    """The atlas of one model on one dataset, with its optimization settings."""

    model: str
    weights: str
    dataset: str
    layers: tuple[str, ...]
    k: int
    name: str
    steps: int
    seed: int
    objective: str
    lr: float
    param: str
    transforms: str
    diversity: int = 1
    diversity_layers: tuple[str, ...] = ()


def model_slug(model: str) -> str:
    """'default' -> 'default'; 'models/my_net.py:build' -> 'my-net'."""
    stem = model.split(":", 1)[0].rsplit("/", 1)[-1]
    stem = re.sub(r"\.(py|safetensors|pt|pth|bin)$", "", stem)
    return re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "model"


def _check(key: str, value, where: Callable[[str], Pos]):
    want = KEYS[key][0]
    ok = isinstance(value, want) and not isinstance(value, bool) or \
        (want is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise BuildError(f"'atlas.{key}' must be a {want.__name__} ({KEYS[key][2]})", where(key))
    if key in _OPT:
        spec = _OPT[key]
        if spec.kind == "choice" and value not in spec.choices:
            raise BuildError(f"'atlas.{key}' must be one of {', '.join(spec.choices)}", where(key))
        if spec.kind in ("int", "float") and not spec.lo <= value <= spec.hi:
            raise BuildError(f"'atlas.{key}' must be in {spec.lo}..{spec.hi}", where(key))
    if key == "diversity" and not 1 <= value <= _OPT["diversity"].hi:
        raise BuildError(f"'atlas.diversity' must be in 1..{_OPT['diversity'].hi}", where(key))
    if key == "k" and not K_RANGE[0] <= value <= K_RANGE[1]:
        raise BuildError(f"'atlas.k' must be in {K_RANGE[0]}..{K_RANGE[1]}", where(key))
    if key in ("layers", "diversity_layers") and not all(isinstance(v, str) and v for v in value):
        raise BuildError(f"'atlas.{key}' must be a list of layer names", where(key))
    if key == "name" and value and not NAME.fullmatch(value):
        raise BuildError("'atlas.name' must be lowercase letters, digits and '-'", where(key))
    return float(value) if want is float else value


def check_atlas(table: dict, where: Callable[[str], Pos]) -> AtlasConfig | None:
    """The checked `[atlas]` table, or None when it is absent or empty (atlas off)."""
    if not table:
        return None
    for key in table:
        if key not in KEYS:
            raise BuildError(f"unknown setting 'atlas.{key}'; valid: {', '.join(KEYS)}", where(key))
    values = {k: _check(k, table[k], where) if k in table else default
              for k, (_, default, _) in KEYS.items()}
    values["layers"] = tuple(values["layers"])
    values["diversity_layers"] = tuple(values["diversity_layers"])
    values["name"] = values["name"] or model_slug(values["model"])
    return AtlasConfig(**values)
