"""Typical children and top labels: the method's image-specific edges, averaged.

For a unit u of layer L and each of its top-k dataset examples, the hierarchy's edge
weight to every channel c of the layer below, w_c = |mean_spatial(h_B[c] * G_B[c])|
(G_B: u's guided gradient seeded at its argmax, see `core.hierarchy`), is averaged over
the k examples; the heaviest channels (weight > 0) are u's typical children. For the last
hidden layer, the labels u pushes up most are those with the largest mean
h_u * d logit / d h_u (guided, as the hierarchy's) over the same examples.

Batched: every (unit, example) pair of a chunk is one row of a single forward up to L and
one backward from L to B (`_pair_weights`); labels take one forward of the chunk's images
and one backward per label. A model whose recorded layer outputs are changed in place
later in its forward falls back to one `Backprop` per image (`_per_image`).
"""
from __future__ import annotations

import torch

from generator.vis.core.rules import ReluRules, apply_rule
from generator.vis.core.taps import hook_output
from generator.vis.kinds.atlas_types import CHILDREN, LABELS, Weighted

PAIRS = 256      # (unit, example) rows per batched pass


class _Reached(Exception):
    """Stops a forward once the deepest layer needed is recorded."""


class _InPlace(Exception):
    """A recorded output was modified in place later: use the per-image path."""


def _ranked(mean: torch.Tensor, names, keep: int, positive: bool = False) -> list[Weighted]:
    order = torch.sort(mean, descending=True, stable=True).indices.tolist()
    out = [Weighted(names[i], round(float(mean[i]), 6)) for i in order[:keep]]
    return [w for w in out if w.weight > 0] if positive else out


def _record(model, x: torch.Tensor, layers, stop: bool):
    """Forward `x` under guided ReLUs; the outputs of `layers` (and the logits unless
    `stop`, which ends the forward at the last of them)."""
    got: dict[str, tuple[torch.Tensor, int]] = {}
    last = layers[-1].name

    def hook(mod, args, out, name):
        got[name] = (out, out._version)
        if stop and name == last:
            raise _Reached

    handles = [hook_output(model.module, l.path, lambda m, a, o, n=l.name: hook(m, a, o, n))
               for l in layers]
    out = None
    try:
        with torch.enable_grad(), ReluRules("guided"):
            out = model.module(x.detach().requires_grad_(True))   # parameters may not
    except _Reached:
        pass
    finally:
        for h in handles:
            h.remove()
    if any(t._version != v for t, v in got.values()):
        raise _InPlace
    return {n: t for n, (t, _) in got.items()}, out


def _pair_weights(model, xs: torch.Tensor, layer, below, units: list[int]) -> torch.Tensor:
    """(P, C_B) edge weights of pair p: unit units[p] of `layer` on image xs[p]."""
    hs, _ = _record(model, xs, [below, layer], stop=True)
    hb, hl = hs[below.name], hs[layer.name]
    rows = torch.arange(len(units), device=hl.device)
    idx = torch.as_tensor(units, device=hl.device)
    seed = torch.zeros_like(hl)
    if hl.dim() == 4:
        flat = hl.detach().flatten(2)[rows, idx]                 # (P, H*W)
        loc = flat.argmax(dim=1)
        seed.view(len(units), hl.shape[1], -1)[rows, idx, loc] = flat[rows, loc]
    else:
        seed[rows, idx] = hl.detach()[rows, idx]
    (g,) = torch.autograd.grad(hl, hb, seed)
    h = hb.detach()
    prod = h * apply_rule("guided", g, h > 0)
    return (prod.flatten(2).mean(dim=2) if prod.dim() == 4 else prod).abs().cpu()


def _label_contrib(model, xs: torch.Tensor, layer) -> torch.Tensor:
    """(N, labels, U): h_u * guided d logit / d h_u on each image."""
    hs, logits = _record(model, xs, [layer], stop=False)
    h = hs[layer.name]
    rows = []
    for label in range(logits.shape[1]):
        (g,) = torch.autograd.grad(logits[:, label].sum(), h, retain_graph=True)
        rows.append(h.detach() * apply_rule("guided", g, h.detach() > 0))
    return torch.stack(rows, dim=1).cpu()


def _inputs(model, dataset, ids: list[int]) -> torch.Tensor:
    return torch.stack([model.preprocess(dataset.image(i)) for i in ids]).to(model.device)


def _batched(model, dataset, layer, units, tops, last_hidden):
    """(child weight sums, label sums) per unit, by the batched passes."""
    below = model.below(layer)
    child_sum, label_sum = {}, {}
    if below is not None:
        pairs = [(u, i) for u in units for i, *_ in tops[u]]
        for start in range(0, len(pairs), PAIRS):
            part = pairs[start:start + PAIRS]
            w = _pair_weights(model, _inputs(model, dataset, [i for _, i in part]), layer, below,
                              [u for u, _ in part])
            for (u, _), row in zip(part, w):
                child_sum[u] = child_sum.get(u, 0) + row
    if last_hidden:
        ids = sorted({i for u in units for i, *_ in tops[u]})
        at = {i: n for n, i in enumerate(ids)}
        contrib = torch.cat([_label_contrib(model, _inputs(model, dataset, ids[s:s + PAIRS]), layer)
                             for s in range(0, len(ids), PAIRS)]) if ids else None
        for u in units:
            label_sum[u] = sum((contrib[at[i], :, u] for i, *_ in tops[u]),
                               torch.zeros(model.layers[-1].size))
    return child_sum, label_sum


def _per_image(model, dataset, layer, units, tops, last_hidden):
    """The same sums with one `Backprop` per image (any model the rules support)."""
    from generator.vis.core.backprop import Backprop
    from generator.vis.core.hierarchy import edge_weights

    below, logits = model.below(layer), model.layers[-1]
    by_image: dict[int, list[int]] = {}
    for u in units:
        for image_id, *_ in tops[u]:
            by_image.setdefault(image_id, []).append(u)
    child_sum, label_sum = {}, {}
    for image_id in sorted(by_image):
        us = by_image[image_id]
        bp = Backprop(model, model.preprocess(dataset.image(image_id)), "guided")
        if below is not None:
            (grads,) = bp.backward(bp.seeds(layer, us), layer, [below])
            for u, row in zip(us, edge_weights(bp.acts[below.name], grads).cpu()):
                child_sum[u] = child_sum.get(u, 0) + row
        if last_hidden:
            (g,) = bp.backward(torch.eye(logits.size, device=model.device), logits, [layer])
            contrib = (bp.acts[layer.name].unsqueeze(0) * g).cpu()
            for u in us:
                label_sum[u] = label_sum.get(u, 0) + contrib[:, u]
    return child_sum, label_sum


def typical_edges(model, dataset, layer, units: list[int], tops: dict[int, list],
                  last_hidden: bool, batched: bool = True
                  ) -> tuple[dict[int, list[Weighted]], dict[int, list[Weighted]]]:
    """({unit: typical children}, {unit: top labels}) for `units` of `layer`."""
    try:
        if not batched:
            raise _InPlace
        child_sum, label_sum = _batched(model, dataset, layer, units, tops, last_hidden)
    except _InPlace:
        child_sum, label_sum = _per_image(model, dataset, layer, units, tops, last_hidden)
    below = model.below(layer)
    children, labels = {}, {}
    for u in units:
        n = max(1, len(tops[u]))
        if below is not None:
            mean = child_sum.get(u, torch.zeros(below.size)) / n
            children[u] = _ranked(mean, [model.unit_name(below, c) for c in range(below.size)],
                                  CHILDREN, True)
        if last_hidden:
            mean = label_sum.get(u, torch.zeros(model.layers[-1].size)) / n
            labels[u] = _ranked(mean, model.labels, LABELS, positive=True)
    return children, labels
