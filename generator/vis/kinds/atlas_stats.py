"""Two streaming passes over the dataset for the atlas: what every unit does on it.

Per image and unit the activation is the max over space for a conv channel (with its
first argmax location) and the value itself for an fc unit. The first pass keeps, per
unit, the best k examples (ties: lower image id), the sum, min and max; the second bins
every activation between that min and max. Memory is units x (k + bins) per layer,
whatever the dataset's size: the atlas of a million-image dataset fits as the sample's does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from generator.vis.core.taps import hook_output
from generator.vis.data.datasets import Dataset, batches
from generator.vis.kinds.atlas_types import BINS, Histogram

BATCH = 64
TOP_K = 64          # examples kept per unit; the atlas asks for at most this many
NO_ID = 2 ** 62     # the id of an empty top-k slot (sorts after every real image)


@dataclass
class LayerStats:
    """One layer's units over the dataset, as (U, ...) tensors."""

    top_values: torch.Tensor    # (U, K) float32, best first; -inf in empty slots
    top_ids: torch.Tensor       # (U, K) int64 image ids
    top_locs: torch.Tensor      # (U, K) int64 locations r * W + s
    width: int                  # W of the map (1 for fc)
    total: torch.Tensor         # (U,) float64 sum over readable images
    lo: torch.Tensor            # (U,) float64 min
    hi: torch.Tensor            # (U,) float64 max
    count: int = 0              # readable images
    counts: torch.Tensor = field(default=None)   # (U, BINS) int64, from the second pass

    @classmethod
    def empty(cls, units: int, width: int, k: int = TOP_K) -> "LayerStats":
        return cls(torch.full((units, k), float("-inf")), torch.full((units, k), NO_ID),
                   torch.zeros((units, k), dtype=torch.int64), width,
                   torch.zeros(units, dtype=torch.float64),
                   torch.full((units,), float("inf"), dtype=torch.float64),
                   torch.full((units,), float("-inf"), dtype=torch.float64),
                   counts=torch.zeros((units, BINS), dtype=torch.int64))

    def add(self, ids: torch.Tensor, values: torch.Tensor, locs: torch.Tensor) -> None:
        """First pass: one batch of readable images, ids ascending, values (B, U)."""
        if not len(values):
            return
        self._keep_best([(values.T, ids.expand(values.shape[1], -1), locs.T)])
        d = values.double()
        self.total += d.sum(0)
        self.lo = torch.minimum(self.lo, d.min(0).values)
        self.hi = torch.maximum(self.hi, d.max(0).values)
        self.count += values.shape[0]

    def bin(self, values: torch.Tensor) -> None:
        """Second pass: one batch of readable images' values (B, U) into the histograms."""
        if not len(values):
            return
        v = values.double()
        span = self.hi - self.lo
        scaled = ((v - self.lo) / torch.where(span > 0, span, 1) * BINS).floor().clamp(0, BINS - 1)
        scaled = torch.where(span > 0, scaled, 0).long()
        self.counts.scatter_add_(1, scaled.T, torch.ones_like(scaled.T))

    def merge(self, others: list["LayerStats"]) -> None:
        """Fold in the first pass of other ranks' shards, given in rank order (higher ids)."""
        self._keep_best([(o.top_values, o.top_ids, o.top_locs) for o in others])
        for o in others:
            self.total = self.total + o.total
            self.lo, self.hi = torch.minimum(self.lo, o.lo), torch.maximum(self.hi, o.hi)
            self.count += o.count

    def _keep_best(self, later: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> None:
        """The best k of the kept entries and `later` (values, ids, locs) ones, all (U, *),
        whose ids are higher. Stable: kept entries stay ahead of equal later ones, as one
        global sort by (value, id) would have it."""
        k = self.top_values.shape[1]
        v = torch.cat([self.top_values, *(p[0] for p in later)], dim=1)
        order = torch.sort(v, dim=1, descending=True, stable=True).indices[:, :k]
        self.top_values = v.gather(1, order)
        self.top_ids = torch.cat([self.top_ids, *(p[1] for p in later)], dim=1).gather(1, order)
        self.top_locs = torch.cat([self.top_locs, *(p[2] for p in later)], dim=1).gather(1, order)

    def top(self, unit: int, k: int) -> list[tuple[int, int, int, float]]:
        """Best-first [(image id, r, s, activation)] of a unit (ties: lower id)."""
        if k > self.top_values.shape[1]:
            raise ValueError(f"asked for {k} examples, {self.top_values.shape[1]} were kept")
        out = []
        for v, i, loc in zip(self.top_values[unit, :k].tolist(), self.top_ids[unit, :k].tolist(),
                             self.top_locs[unit, :k].tolist()):
            if v > float("-inf"):
                out.append((i, loc // self.width, loc % self.width, float(v)))
        return out

    def histogram(self, unit: int) -> tuple[Histogram, float, float]:
        """(histogram, mean, max) of the unit over the readable images."""
        if not self.count:
            return Histogram(0.0, 0.0, [0] * BINS), 0.0, 0.0
        lo, hi = float(self.lo[unit]), float(self.hi[unit])
        mean = float(self.total[unit]) / self.count
        return Histogram(round(lo, 6), round(hi, 6), self.counts[unit].tolist()), round(mean, 6), \
            round(hi, 6)


def _activations(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, U) values and locations of a layer's output (max over space for conv maps)."""
    if h.dim() == 4:
        return h.flatten(2).max(dim=2)
    return h, torch.zeros(h.shape, dtype=torch.int64)


def _shard(n: int, rank: int, world: int) -> range:
    """This rank's image ids: mining's run of whole batches (rank order is id order)."""
    from generator.vis.data.mining import batch_shard

    lo, hi = batch_shard(n, BATCH, rank, world)
    return range(min(n, lo * BATCH), min(n, hi * BATCH))


def _merge_ranks(out: dict[str, LayerStats], world: int) -> None:
    """After the first pass: every rank holds the merged top-k, sums and ranges."""
    import torch.distributed as dist

    parts = [None] * world
    dist.all_gather_object(parts, {name: s for name, s in out.items()})
    for name in out:
        merged = parts[0][name]      # a copy on every rank; its counts are still zero
        merged.merge([parts[r][name] for r in range(1, world)])
        out[name] = merged


def _sum_counts(out: dict[str, LayerStats], device) -> None:
    """After the second pass: every rank's histogram counts summed (exact: integers)."""
    import torch.distributed as dist

    cpu = dist.get_backend() == "gloo"
    for s in out.values():
        t = s.counts if cpu else s.counts.to(device)
        dist.all_reduce(t)
        s.counts = t.cpu()


def layer_stats(model, dataset: Dataset, layer_names: list[str],
                progress: Callable[[str, int, int], None] | None = None,
                k: int = TOP_K) -> dict[str, LayerStats]:
    """Forward the dataset twice ('mining', then 'histograms'); per named layer its stats.
    Under torch.distributed each rank reads its shard and every rank gets the merged
    result, equal to one process's. `progress(phase, images done, images)` per batch."""
    from generator.vis.data.mining import dist_info

    rank, world = dist_info()
    layers = [model.layer(n) for n in layer_names]
    n = len(dataset)
    ids_of = _shard(n, rank, world)
    out = {l.name: LayerStats.empty(l.size, l.shape[-1] if l.kind == "conv" else 1, k)
           for l in layers}
    captured: dict[str, torch.Tensor] = {}
    handles = [hook_output(model.module, l.path,
                           lambda m, a, o, name=l.name: captured.__setitem__(name, o.detach()))
               for l in layers]
    try:
        with torch.no_grad():
            for phase in ("mining", "histograms"):
                if phase == "histograms" and world > 1:
                    _merge_ranks(out, world)
                for ids, x, ok in batches(dataset, model.preprocess, ids_of, BATCH, 0,
                                          tuple(model.input_shape)):
                    model.module(x.to(model.device))
                    for l in layers:
                        v, loc = _activations(captured[l.name][ok].float().cpu())
                        if phase == "mining":
                            out[l.name].add(ids[ok], v, loc)
                        else:
                            out[l.name].bin(v)
                    if progress is not None:
                        progress(phase, int(ids.max()) + 1 - ids_of.start if len(ids) else 0,
                                 len(ids_of))
    finally:
        for h in handles:
            h.remove()
    if world > 1:
        _sum_counts(out, model.device)
    return out
