"""Small read-outs of one forward: the top predictions and a layer's feature maps."""
from __future__ import annotations

from typing import Sequence

import torch

from generator.vis.core.backprop import Backprop
from generator.vis.errors import EngineError


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
