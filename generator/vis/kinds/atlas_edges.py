"""Typical children and top labels: the method's image-specific edges, averaged.

For a unit u of layer L and each of its top-k dataset examples, the hierarchy's edge
weight to every channel c of the layer below, w_c = |mean_spatial(h_B[c] * G_B[c])|
(G_B: u's guided gradient seeded at its argmax, see `core.hierarchy`), is averaged over
the k examples; the heaviest channels (weight > 0) are u's typical children. For the last hidden
layer, the labels u pushes up most are those with the largest mean h_u * d logit / d h_u
over the same examples. Work is grouped by image: one forward per image serves every
unit of the chunk that has it among its top-k, all seeds in one batched backward.
"""
from __future__ import annotations

import torch

from generator.vis.core.backprop import Backprop
from generator.vis.core.hierarchy import edge_weights
from generator.vis.kinds.atlas_types import CHILDREN, LABELS, Weighted


def _ranked(mean: torch.Tensor, names, keep: int, positive: bool = False) -> list[Weighted]:
    order = torch.sort(mean, descending=True, stable=True).indices.tolist()
    out = [Weighted(names[i], round(float(mean[i]), 6)) for i in order[:keep]]
    return [w for w in out if w.weight > 0] if positive else out


def typical_edges(model, dataset, layer, units: list[int], tops: dict[int, list],
                  last_hidden: bool) -> tuple[dict[int, list[Weighted]], dict[int, list[Weighted]]]:
    """({unit: typical children}, {unit: top labels}) for `units` of `layer`."""
    below = model.below(layer)
    logits = model.layers[-1]
    by_image: dict[int, list[int]] = {}
    for u in units:
        for image_id, *_ in tops[u]:
            by_image.setdefault(image_id, []).append(u)
    child_sum = {u: torch.zeros(below.size) for u in units} if below is not None else {}
    label_sum = {u: torch.zeros(logits.size) for u in units} if last_hidden else {}
    for image_id in sorted(by_image):
        us = by_image[image_id]
        bp = Backprop(model, model.preprocess(dataset.image(image_id)), "guided")
        if below is not None:
            (grads,) = bp.backward(bp.seeds(layer, us), layer, [below])
            weights = edge_weights(bp.acts[below.name], grads).cpu()
            for j, u in enumerate(us):
                child_sum[u] += weights[j]
        if last_hidden:
            seeds = torch.eye(logits.size, device=model.device)
            (g,) = bp.backward(seeds, logits, [layer])
            contrib = (bp.acts[layer.name].unsqueeze(0) * g).cpu()   # (labels, units)
            for u in us:
                label_sum[u] += contrib[:, u]
    children, labels = {}, {}
    for u in units:
        n = max(1, len(tops[u]))
        if below is not None:
            children[u] = _ranked(child_sum[u] / n, [model.unit_name(below, c)
                                                     for c in range(below.size)], CHILDREN, True)
        if last_hidden:
            labels[u] = _ranked(label_sum[u] / n, model.labels, LABELS, positive=True)
    return children, labels
