"""Feature visualization by optimization in image space.

`optimize(model, units, ...)` finds, for every unit, inputs that drive it up: each picture
is a parametrized image (`imageparam`), randomly transformed every step (`transforms`),
mapped through the model's own preprocessing range, and pushed by Adam on the unit's
objective (`objectives`). All units of a call share one forward and one backward per
step; each batch element has its own image, objective and random stream (derived from
seed + unit + copy), so a unit's pictures are the same whether it is optimized alone or
with others. Activations are measured on the final input without transforms.

Dead units: the objective is h_L plus LEAK times the ReLU's input (for a layer that is a
ReLU), so a unit that is off everywhere still gets a gradient, while a live one climbs its
real activation: maximizing the pre-activation alone can raise a map's mean by making
negative values less negative, never turning the unit on. The reported activation is
h_L itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from generator.vis.errors import EngineError
from generator.vis.core.imageparam import ImageRange, image_range, make_param
from generator.vis.core.models import Layer, Model
from generator.vis.core.objectives import (Progress, capturing, check_lr, check_objective,
                                           check_steps, require_gradient, unit_seed,
                                           unit_values)
from generator.vis.core.transforms import Transforms, make_transforms, sample_all

HISTORY = 16  # points of objective history kept per picture
LEAK = 0.01   # weight of the pre-activation in the objective (a gradient for dead units)


@dataclass
class FeatureVis:
    """One optimized picture of one unit."""

    unit: str  # canonical LAYER_INDEX
    copy: int  # 0..diversity-1
    objective: str
    activation: float  # the objective on `input`, no transforms
    input: torch.Tensor = field(repr=False)  # (C, H, W) float32, as the model's forward takes it (CPU)
    image: torch.Tensor = field(repr=False)  # (C, H, W) in [0, 1] (CPU)
    steps: int = 0
    seed: int = 0
    history: list[float] = field(default_factory=list)  # objective (with transforms) over steps


@dataclass
class _Batch:
    """The pictures of one optimize() call: per element its layer, channel and stream."""

    units: list[str]
    copies: list[int]
    layers: list[Layer]
    channels: list[int]
    generators: list[torch.Generator]
    groups: dict[str, list[int]]  # layer name -> element indices


def _batch(model: Model, units: Sequence[str], diversity: int, seed: int) -> _Batch:
    if isinstance(units, str):
        units = [units]
    if not units:
        raise EngineError("no units to visualize: give at least one, e.g. "
                          f"{model.unit_name(model.layers[-1], 0)}")
    if not isinstance(diversity, int) or isinstance(diversity, bool) or not 1 <= diversity <= 64:
        raise EngineError(f"diversity must be an integer in 1..64, got {diversity!r}")
    b = _Batch([], [], [], [], [], {})
    for ref in units:
        layer, index = model.parse_unit(ref)
        name = model.unit_name(layer, index)
        for k in range(diversity):
            b.groups.setdefault(layer.name, []).append(len(b.units))
            b.units.append(name)
            b.copies.append(k)
            b.layers.append(layer)
            b.channels.append(index)
            b.generators.append(torch.Generator().manual_seed(unit_seed(seed, name, k)))
    return b


def _objectives(hs, pres, b: _Batch, objective: str, diversity: int, weight: float, device,
                leak: float = LEAK):
    """(per-element objective (N,) on `pres`, diversity penalty on `hs`, over unit groups)."""
    values = torch.zeros(len(b.units), device=device)
    penalty = torch.zeros((), device=device)
    for name, idx in b.groups.items():
        h = hs[name][idx]
        layer = b.layers[idx[0]]
        chans = torch.tensor([b.channels[i] for i in idx], device=device)
        v = unit_values(h, layer, chans, objective)
        if leak and pres[name] is not hs[name]:
            v = v + leak * unit_values(pres[name][idx], layer, chans, objective)
        values = values.index_put((torch.tensor(idx, device=device),), v)
        if diversity > 1:
            # in the objective's own units, so the push apart neither swamps a weak unit
            # nor vanishes beside a strong one
            scale = v.detach().abs().mean().clamp_min(1e-3)
            penalty = penalty + weight * scale * _similarity(h, diversity)
    return values, penalty


def _similarity(h: torch.Tensor, diversity: int) -> torch.Tensor:
    """Mean pairwise cosine similarity of the copies' gram matrices (fc: activations),
    summed over the unit groups in `h` (consecutive runs of `diversity` elements)."""
    if h.dim() == 4:
        flat = h.flatten(2)
        feats = (flat @ flat.transpose(1, 2)).flatten(1) / flat.shape[2]
    else:
        feats = h
    feats = torch.nn.functional.normalize(feats, dim=1).reshape(-1, diversity, feats.shape[1])
    sims = feats @ feats.transpose(1, 2)  # (U, D, D)
    off = sims.sum(dim=(1, 2)) - sims.diagonal(dim1=1, dim2=2).sum(dim=1)
    return (off / (diversity * (diversity - 1))).sum()


def optimize(model: Model, units: Sequence[str], steps: int = 256, lr: float = 0.05,
             seed: int = 0, param: str = "fft", transforms="standard",
             diversity: int = 1, size: int | None = None, objective: str = "neuron",
             diversity_weight: float = 1.0, decorrelate: bool = True,
             progress: Progress | None = None) -> list[FeatureVis]:
    """Optimize pictures of `units` together (one forward + backward per step for all).

    Returns one FeatureVis per (unit, copy), in the order of `units`, copies consecutive.
    `size` is the picture's side (default: the model's input H, W); `diversity` copies per
    unit are pushed apart by `diversity_weight` x their mean pairwise gram similarity x the
    mean |objective| of the unit's layer group (so the weight is scale-free).
    """
    steps, lr, objective = check_steps(steps), check_lr(lr), check_objective(objective)
    b = _batch(model, units, diversity, seed)
    c, h, w = model.input_shape
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 2048:
            raise EngineError(f"size must be an integer in 8..2048, got {size!r}")
        h = w = size
    p = make_param(param, c, h, w, decorrelate=decorrelate)
    tf = make_transforms(transforms, min(h, w))
    rng = image_range(model)
    device = model.device
    params = torch.stack([p.init(g) for g in b.generators]).to(device).requires_grad_(True)
    opt = torch.optim.Adam([params], lr=lr)
    layers = list({layer.name: layer for layer in b.layers}.values())
    history: list[list[float]] = []
    keep = _history_steps(steps)
    with capturing(model, layers) as forward, torch.enable_grad():
        tf = _fit_pad(forward, tf, rng, p, params, transforms)
        for step in range(steps):
            opt.zero_grad(set_to_none=True)
            images = p.image(params)
            if not tf.identity:
                images = tf.apply(images, sample_all(tf, b.generators))
            values, penalty = _objectives(*forward(rng.to_input(images)), b, objective,
                                          diversity, diversity_weight, device)
            if step == 0:
                require_gradient(values, model, "the objective of " + ", ".join(sorted(set(b.units))))
            (penalty - values.sum()).backward()
            if params.grad is None:
                raise EngineError(f"{model.name}: no gradient reaches the input")
            opt.step()
            if step in keep:
                history.append(values.detach().cpu().tolist())
            if progress is not None:
                progress(step + 1, steps)
        with torch.no_grad():
            images = p.image(params).detach()
            x = rng.to_input(images)
            hs, _ = forward(x)
            final, _ = _objectives(hs, hs, b, objective, 1, 0.0, device, leak=0.0)
    final = final.cpu().tolist()
    x, images = x.cpu(), images.cpu()
    return [FeatureVis(unit=b.units[i], copy=b.copies[i], objective=objective,
                       activation=float(final[i]), input=x[i].contiguous(),
                       image=images[i].contiguous(), steps=steps, seed=seed,
                       history=[row[i] for row in history])
            for i in range(len(b.units))]


def _history_steps(steps: int) -> set[int]:
    return {round(i * (steps - 1) / (HISTORY - 1)) for i in range(HISTORY)} if steps > 1 else {0}


def _fit_pad(forward, tf: Transforms, rng: ImageRange, p, params, requested) -> Transforms:
    """The standard transforms drop their pad for models that only take their own input size."""
    if tf.pad == 0 or isinstance(requested, Transforms):
        return tf
    with torch.no_grad():
        probe = torch.full((1, p.channels, p.height + 2 * tf.pad, p.width + 2 * tf.pad), 0.5,
                           device=params.device)
        try:
            forward(rng.to_input(probe))
        except EngineError:
            return tf.without_pad()
    return tf
