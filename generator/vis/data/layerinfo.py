"""What `featuretree layers` reports: each named layer's module, kind, size, map size and
receptive field, and (given an input) its most active units. Users otherwise find layer
and unit names only by provoking an error."""
from __future__ import annotations

import torch

from generator.vis.core import taps
from generator.vis.core.models import Model
from generator.vis.data.receptive import layer_fields
from generator.vis.errors import EngineError


def describe(model: Model, x: torch.Tensor | None = None, top: int = 5) -> list[dict]:
    """One dict per named layer, in forward order; with `x` (C, H, W), also `top` units
    by activation (max over space for a conv channel). `field` is None when the forward
    cannot be followed to receptive fields, and `field_error` then says why."""
    try:
        fields, why = layer_fields(model), None
    except EngineError as e:   # e.g. an interpolation: listing the layers still helps
        fields, why = {}, str(e)
    modules = dict(model.module.named_modules())
    acts = _activations(model, x) if x is not None else {}
    out = []
    for layer in model.layers:
        module_path, functional = taps.split(layer.path)
        module = type(modules[module_path]).__name__
        f = fields.get(layer.name)
        row = {
            "name": layer.name, "path": layer.path,
            "module": f"ReLU call after {module}" if functional else module,
            "kind": layer.kind, "units": layer.size,
            "map": list(layer.shape[1:]) if layer.kind == "conv" else [],
            "relu": layer.relu,
            "field": None if f is None else {"size": list(f.size), "stride": list(f.jump),
                                             "global": f.is_global},
        }
        if f is None:
            row["field_error"] = why
        if layer.name in acts:
            row["top"] = _top(model, layer, acts[layer.name], top)
        out.append(row)
    return out


def _activations(model: Model, x: torch.Tensor) -> dict[str, torch.Tensor]:
    from generator.vis.core.backprop import Backprop

    with torch.no_grad():
        return dict(Backprop(model, x, "gradient").acts)


def _top(model: Model, layer, h: torch.Tensor, k: int) -> list[dict]:
    per_unit = h.reshape(h.shape[0], -1).amax(1) if layer.kind == "conv" else h
    values, indices = torch.topk(per_unit.float().cpu(), min(k, per_unit.numel()))
    label = layer is model.layers[-1]
    return [{"unit": model.unit_name(layer, int(i)), "activation": float(v),
             **({"label": model.labels[int(i)]} if label else {})}
            for v, i in zip(values, indices)]
