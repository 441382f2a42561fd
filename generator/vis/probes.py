"""Small read-outs of one forward: predictions, a layer's feature maps, and one unit's
response across several images (`maxacts`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .backprop import Backprop
from .errors import EngineError
from .models import Model


def top_predictions(logits: torch.Tensor, labels: Sequence[str], k: int = 5) -> list[dict]:
    """[{'index', 'label', 'prob'}] of the k most probable classes (softmax of the logits)."""
    if k < 1:
        raise EngineError(f"k must be 1 or more, got {k}")
    probs = torch.softmax(logits.detach().reshape(-1).double().cpu(), dim=0)
    top = torch.topk(probs, min(k, probs.numel()))
    return [{"index": i, "label": labels[i] if i < len(labels) else str(i), "prob": p}
            for p, i in zip(top.values.tolist(), top.indices.tolist())]


def feature_maps(bp: Backprop, layer: str) -> torch.Tensor:
    """All channels of a conv layer's h_L, (C, H, W)."""
    L = bp.model.layer(layer)
    if L.kind != "conv":
        raise EngineError(f"{layer} is a fully connected layer; feature maps need a conv "
                          f"layer ({', '.join(l.name for l in bp.model.layers if l.kind == 'conv')})")
    return bp.acts[L.name]


@dataclass
class Response:
    """One image's response for `maxacts`: activation, its location, and the unit image."""

    activation: float
    location: tuple[int, ...]
    image: torch.Tensor


def maxacts(model: Model, inputs: Sequence[torch.Tensor], unit: str,
            rule: str = "guided") -> list[Response]:
    """One unit on several inputs (C, H, W): a forward and one backward per input, in order."""
    layer, index = model.parse_unit(unit)
    out = []
    for x in inputs:
        bp = Backprop(model, x, rule)
        (image,) = bp.backward(bp.seeds(layer, [index]), layer, [None])
        out.append(Response(bp.activation(layer, index), tuple(bp.location(layer, index)),
                            image[0]))
    return out
