"""Patch grids: a unit's top-activating dataset examples, cropped to its receptive field.

For each mined example (image id, location (r, s)) we crop the input box that can
influence the unit at (r, s) -- the same box size for every example of a layer, padded
where it hangs over the image border (never shifted), so the unit's centre sits at the
same place in every patch -- and the matching gradient patch: the unit's gradient with
respect to the input pixels, seeded at (r, s) with the unit's value there and propagated
with a ReLU rule (guided backprop by default). The K examples are forwarded as one batch
and backpropagated in ONE batched backward: each example's seed only reaches its own
image, because the model runs in eval mode (no batch statistics).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from generator.vis.errors import EngineError
from generator.vis.data.receptive import Box, Field, layer_fields
from generator.vis.core.rules import ReluRules, check_rule
from generator.vis.core.taps import hook_output

GRAY = 128   # padding shown as neutral gray in image patches


@dataclass
class PatchGrid:
    """One unit's examples, best first, with equal-sized image and gradient patches."""

    layer: str
    unit: int
    examples: list[tuple[int, int, int, float]]   # (image id, r, s, mined activation)
    boxes: list[Box]                              # input box of each example
    images: torch.Tensor                          # (K, C, h, w) model input, 0 on padding
    gradients: torch.Tensor                       # (K, C, h, w) input gradient, 0 on padding
    inside: torch.Tensor                          # (K, h, w) bool: False on padding
    activations: torch.Tensor                     # (K,) the unit's value, recomputed
    sources: list[str | None]                     # dataset names of the images
    labels: list[str | None]


def crop(x: torch.Tensor, boxes: list[Box], fill: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop box n out of x[n] for every n, all boxes the same size, padding with `fill`.

    x is (N, C, H, W); returns (patches (N, C, h, w), inside (N, h, w) bool). One gather
    for the whole batch.
    """
    if len(boxes) != len(x):
        raise ValueError(f"{len(boxes)} boxes for {len(x)} images")
    if not boxes:
        return x[:, :, :0, :0], torch.zeros((0, 0, 0), dtype=torch.bool, device=x.device)
    h, w = boxes[0].height, boxes[0].width
    if any((b.height, b.width) != (h, w) for b in boxes):
        raise ValueError("boxes must all have the same size")
    n, c, height, width = x.shape
    tops = torch.tensor([b.top for b in boxes], device=x.device)
    lefts = torch.tensor([b.left for b in boxes], device=x.device)
    pad_t, pad_l = max(0, -int(tops.min())), max(0, -int(lefts.min()))
    pad_b = max(0, int(tops.max()) + h - height)
    pad_r = max(0, int(lefts.max()) + w - width)
    padded = torch.nn.functional.pad(x, (pad_l, pad_r, pad_t, pad_b), value=fill)
    rows = (tops + pad_t).view(n, 1) + torch.arange(h, device=x.device)    # (N, h)
    cols = (lefts + pad_l).view(n, 1) + torch.arange(w, device=x.device)   # (N, w)
    idx = torch.arange(n, device=x.device).view(n, 1, 1)
    patches = padded.permute(0, 2, 3, 1)[idx, rows.view(n, h, 1), cols.view(n, 1, w)]
    inside = ((rows >= pad_t) & (rows < pad_t + height)).view(n, h, 1) & \
             ((cols >= pad_l) & (cols < pad_l + width)).view(n, 1, w)
    return patches.permute(0, 3, 1, 2).contiguous(), inside


def example_gradients(model, inputs: torch.Tensor, layer, unit: int, locations, rule: str = "guided"):
    """Input gradients of `unit` for a batch of examples, each seeded at its own location.

    `inputs` (K, C, H, W); `locations` K pairs (r, s) (ignored for fc layers). The seed
    of example n is h_L[n, unit, r, s] at (unit, r, s). Returns (gradients (K, C, H, W),
    activations (K,)), from one forward and one batched backward.
    """
    check_rule(rule)
    x = inputs.to(model.device, torch.float32).detach().requires_grad_(True)
    captured = {}

    def hook(mod, args, out):
        captured["h"] = out
        raise _Reached

    handle = hook_output(model.module, layer.path, hook)
    try:
        with torch.enable_grad(), ReluRules(rule):
            model.module(x)
    except _Reached:
        pass
    finally:
        handle.remove()
    h = captured["h"]
    k = len(x)
    n = torch.arange(k, device=h.device)
    if h.dim() == 4:
        r = torch.tensor([int(rs[0]) for rs in locations], device=h.device)
        s = torch.tensor([int(rs[1]) for rs in locations], device=h.device)
        values = h[n, unit, r, s]
        seed = torch.zeros_like(h)
        seed[n, unit, r, s] = values.detach()
    else:
        values = h[n, unit]
        seed = torch.zeros_like(h)
        seed[n, unit] = values.detach()
    if k == 0:
        return torch.zeros_like(x), values.detach()
    try:
        (grads,) = torch.autograd.grad(h, x, seed)
    except RuntimeError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, EngineError):
            raise cause from None
        raise
    return grads.detach(), values.detach()


class _Reached(Exception):
    """Stops the forward pass at the unit's layer: nothing above it is needed."""


def unit_patches(model, dataset, topk, layer: str, unit: int, k: int | None = None,
                 rule: str = "guided", field: Field | None = None) -> PatchGrid:
    """The patch grid of one mined unit (`topk` from `load_or_mine` over `dataset`)."""
    target = model.layer(layer)
    examples = topk.lookup(target.name, unit, k)
    if topk.meta.get("dataset_digest") not in (None, dataset.digest):
        raise EngineError(f"the index of {layer} was mined on other images than dataset "
                          f"{dataset.spec}; mine it again")
    if field is None:
        field = layer_fields(model, [target.name])[target.name]
    inputs = torch.stack([model.preprocess(dataset.image(i)) for i, _, _, _ in examples]) \
        if examples else torch.zeros((0, *model.input_shape))
    grads, values = example_gradients(model, inputs, target, unit,
                                      [(r, s) for _, r, s, _ in examples], rule)
    boxes = [field.box(r, s) for _, r, s, _ in examples]
    images, inside = crop(inputs.to(grads.device), boxes)
    gradients, _ = crop(grads, boxes)
    return PatchGrid(target.name, unit, examples, boxes, images, gradients, inside, values,
                     [topk.source(i) or dataset.names[i] for i, _, _, _ in examples],
                     [topk.label(i) or dataset.labels[i] for i, _, _, _ in examples])


def image_pixels(grid: PatchGrid) -> list[np.ndarray]:
    """Image patches as uint8 (h, w) or (h, w, 3), one contrast stretch for the whole grid
    (so patches compare), padding in neutral gray."""
    if not len(grid.images):
        return []
    a = grid.images.detach().cpu().double()
    inside = grid.inside.cpu()
    values = a.permute(1, 0, 2, 3)[:, inside]
    lo, hi = float(values.min()), float(values.max())
    v = ((a - lo) / (hi - lo) if hi > lo else torch.zeros_like(a)).clamp(0, 1)
    px = torch.round(255 * v).to(torch.uint8)
    px = torch.where(inside.unsqueeze(1), px, torch.tensor(GRAY, dtype=torch.uint8))
    out = px.permute(0, 2, 3, 1).numpy()
    return [p[:, :, 0] if p.shape[2] == 1 else p for p in out]


def gradient_pixels(grid: PatchGrid, percentile: float | None = None) -> list[np.ndarray]:
    """Gradient patches as uint8 (h, w) or (h, w, 3) with the engine's display
    normalization (each patch on its own scale, zero = neutral gray)."""
    from generator.vis.render import display

    p = display.DEFAULT_PERCENTILE if percentile is None else percentile
    out = [display.to_pixels(g, p) for g in grid.gradients]
    return [a[:, :, 0] if a.shape[2] == 1 else a for a in out]
