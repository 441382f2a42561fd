"""Typed figure results, and their JSON form (what the figure cache stores).

Each kind's result is a dataclass deriving from `Figure`; nested parts are dataclasses
too. `to_json` leaves out optional fields that are None (a node without patches carries
no `patches` key), `from_json` rebuilds the dataclasses from their type hints, so the
cache stays plain JSON while the engine and the templates work with named fields.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(kw_only=True)
class PatchGrid:
    """A unit's top dataset patches and their gradients, as two grid tiles."""

    k: int
    cols: int
    rows: int
    patch_h: int
    patch_w: int
    dataset: str
    image_grid: str
    gradient_grid: str
    examples: list[Example] = field(default_factory=list)


class OneUnit:
    """What a tile of one unit on the image (a result with an `activation` field) can say
    of itself: the one definition the warning and the templates read."""

    @property
    def inactive(self) -> bool:
        """Off on this image: exactly 0. A ReLU output is never below it, and a negative
        logit still seeds a picture (its gradient, scaled by a negative value, is not empty)."""
        return self.activation == 0


@dataclass(kw_only=True)
class Example:
    source: str
    label: str | None
    activation: float


@dataclass(kw_only=True)
class Figure:
    """What every figure says about its making: the model, the input size, the image."""

    model: str
    tile_w: int
    tile_h: int
    image_name: str
    tiles: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return _dump(self)

    @classmethod
    def from_json(cls, data: dict):
        return _load(cls, data)


def _dump(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _dump(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None or f.default is not None}
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    return value


@lru_cache(maxsize=None)
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _load(tp, value):
    """`value` (JSON) as type `tp`: dataclasses by their fields, lists by their items."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _load(inner[0], value) if len(inner) == 1 else value
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_load(item, v) for v in value]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ValueError(f"{tp.__name__}: expected an object, got {type(value).__name__}")
        hints = _hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        return tp(**{k: _load(hints[k], v) for k, v in value.items() if k in names})
    return value
