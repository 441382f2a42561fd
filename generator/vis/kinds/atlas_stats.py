"""One pass over the dataset for the atlas: every unit's activation on every image.

Per image and unit we keep the activation (the max over space for a conv channel, with
its first argmax location), which gives at once the unit's top-k examples (ties: lower
image id), its histogram and its mean and max. Memory is images x units per layer: fine
for a sample, the first thing to stream at ImageNet scale (docs/SCALE.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from generator.vis.core.taps import hook_output
from generator.vis.data.datasets import Dataset, batches
from generator.vis.kinds.atlas_types import BINS, Histogram

BATCH = 64


@dataclass
class LayerStats:
    """(N, U) activations and locations (r * W + s) of one layer over the dataset."""

    values: torch.Tensor     # float32, -inf on unreadable images
    locs: torch.Tensor       # int64
    width: int               # W of the map (1 for fc)

    def top(self, unit: int, k: int) -> list[tuple[int, int, int, float]]:
        """Best-first [(image id, r, s, activation)] of a unit (ties: lower id)."""
        col = self.values[:, unit]
        order = torch.sort(col, descending=True, stable=True).indices[:k].tolist()
        return [(i, int(self.locs[i, unit]) // self.width, int(self.locs[i, unit]) % self.width,
                 float(col[i])) for i in order if col[i] > float("-inf")]

    def histogram(self, unit: int) -> tuple[Histogram, float, float]:
        """(histogram, mean, max) of the unit over the readable images."""
        v = self.values[:, unit]
        v = v[v > float("-inf")].double()
        lo, hi = float(v.min()), float(v.max())
        scaled = ((v - lo) / (hi - lo) * BINS).floor().clamp(0, BINS - 1) if hi > lo \
            else torch.zeros_like(v)
        counts = torch.bincount(scaled.long(), minlength=BINS).tolist()
        return Histogram(round(lo, 6), round(hi, 6), counts), round(float(v.mean()), 6), round(hi, 6)


def layer_stats(model, dataset: Dataset, layer_names: list[str],
                progress: Callable[[int, int], None] | None = None) -> dict[str, LayerStats]:
    """Forward the whole dataset once; per named layer the (N, U) maxima and argmaxes.
    `progress(images done, images)` after each batch."""
    layers = [model.layer(n) for n in layer_names]
    n = len(dataset)
    out = {l.name: LayerStats(torch.full((n, l.size), float("-inf")),
                              torch.zeros((n, l.size), dtype=torch.int64),
                              l.shape[-1] if l.kind == "conv" else 1) for l in layers}
    captured: dict[str, torch.Tensor] = {}
    handles = [hook_output(model.module, l.path,
                           lambda m, a, o, name=l.name: captured.__setitem__(name, o.detach()))
               for l in layers]
    try:
        with torch.no_grad():
            for ids, x, ok in batches(dataset, model.preprocess, range(n), BATCH, 0,
                                      tuple(model.input_shape)):
                model.module(x.to(model.device))
                good = ids[ok]
                for l in layers:
                    h = captured[l.name][ok].float().cpu()
                    if h.dim() == 4:
                        v, loc = h.flatten(2).max(dim=2)
                    else:
                        v, loc = h, torch.zeros(h.shape, dtype=torch.int64)
                    out[l.name].values[good] = v
                    out[l.name].locs[good] = loc
                if progress is not None:
                    progress(int(ids.max()) + 1 if len(ids) else 0, n)
    finally:
        for h in handles:
            h.remove()
    return out
