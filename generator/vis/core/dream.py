"""DeepDream from a real input: octaves of normalized gradient ascent on a unit's map or a
layer's L2 norm, in [0,1] image space, so the result stays a valid preprocessed input.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from generator.vis.errors import EngineError
from generator.vis.core.imageparam import image_range
from generator.vis.core.models import Layer, Model
from generator.vis.core.objectives import (Progress, capturing, check_lr, check_steps,
                                           require_gradient, unit_seed)


@dataclass
class Dream:
    """A real input after DeepDream."""

    target: str  # a unit (LAYER_INDEX) or a layer name
    input: torch.Tensor = field(repr=False)  # (C, H, W) float32, the dreamed model input (CPU)
    image: torch.Tensor = field(repr=False)  # (C, H, W) in [0, 1]
    change: torch.Tensor = field(repr=False)  # (H, W): sum over channels of |image - original|
    before: float = 0.0  # objective on the original input
    after: float = 0.0  # objective on the dreamed input
    steps: int = 0
    octaves: int = 1
    history: list[float] = field(default_factory=list)


def dream_target(model: Model, target: str):
    """(layer, channel or None, canonical name) for a unit or a layer name."""
    text = str(target).strip()
    if text in model.layer_names:
        return model.layer(text), None, text
    try:
        layer, index = model.parse_unit(text)
    except EngineError as exc:
        if "is not a unit" not in str(exc):
            raise
        raise EngineError(f"dream target {text!r} is neither a layer nor a unit of "
                          f"{model.name}: use a layer ({', '.join(model.layer_names)}) or a "
                          f"unit, e.g. {model.unit_name(model.layers[-1], 0)}") from None
    return layer, index, model.unit_name(layer, index)


def _dream_value(h: torch.Tensor, layer: Layer, channel: int | None) -> torch.Tensor:
    """Unit: the mean of its map (fc: its value); layer: mean of h^2 (its squared L2 norm / size)."""
    if channel is None:
        return h.pow(2).flatten(1).mean(dim=1)
    return h[:, channel].flatten(1).mean(dim=1)


def dream(model: Model, x: torch.Tensor, target: str, octaves: int = 3, steps: int = 10,
          lr: float = 0.01, seed: int = 0, octave_scale: float = 1.4, jitter: int = 4,
          progress: Progress | None = None) -> Dream:
    """DeepDream from the input `x` (C, H, W, preprocessed): octaves, smallest first, of
    `steps` normalized gradient-ascent steps (step = lr * g / mean|g|) in [0,1] image space.

    Each octave optimizes the picture at a lower resolution (the detail above it is kept),
    upsampled to the model's input size for the forward, with a random roll of up to
    `jitter` pixels per step drawn from `seed`.
    """
    steps, lr = check_steps(steps), check_lr(lr)
    if not isinstance(octaves, int) or isinstance(octaves, bool) or not 1 <= octaves <= 8:
        raise EngineError(f"octaves must be an integer in 1..8, got {octaves!r}")
    if not octave_scale >= 1.0:
        raise EngineError(f"octave_scale must be >= 1, got {octave_scale!r}")
    layer, channel, name = dream_target(model, target)
    x = torch.as_tensor(x, dtype=torch.float32)
    if tuple(x.shape) != tuple(model.input_shape):
        raise EngineError(f"input has shape {tuple(x.shape)}; {model.name} takes "
                          f"{tuple(model.input_shape)} (C, H, W)")
    rng = image_range(model)
    device = model.device
    gen = torch.Generator().manual_seed(unit_seed(seed, name, 0))
    original = rng.to_image(x.to(device)).unsqueeze(0)
    current = original.clone()
    _, _, h, w = current.shape
    up = lambda t: F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
    history = []
    done, total = 0, octaves * steps
    with capturing(model, [layer]) as forward, torch.enable_grad():
        with torch.no_grad():
            before = float(_dream_value(forward(rng.to_input(current))[0][layer.name], layer, channel))
        for o in reversed(range(octaves)):
            side = (max(8, round(h / octave_scale ** o)), max(8, round(w / octave_scale ** o)))
            low = F.interpolate(current, size=side, mode="bilinear",
                                                  align_corners=False, antialias=True)
            detail = current - up(low)
            for _ in range(steps):
                low = low.detach().requires_grad_(True)
                image = (up(low) + detail).clamp(0, 1)
                dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=gen))
                rolled = torch.roll(image, shifts=(dy, dx), dims=(2, 3))
                value = _dream_value(forward(rng.to_input(rolled))[0][layer.name], layer, channel)
                require_gradient(value, model, name)
                (g,) = torch.autograd.grad(value.sum(), low, allow_unused=True)
                if g is None:
                    raise EngineError(f"{model.name}: no gradient reaches the input from {name}")
                with torch.no_grad():
                    low = low + lr * g / g.abs().mean().clamp(min=1e-12)
                history.append(float(value.detach()))
                done += 1
                if progress is not None:
                    progress(done, total)
            with torch.no_grad():
                current = (up(low) + detail).clamp(0, 1)
        with torch.no_grad():
            out = rng.to_input(current)
            after = float(_dream_value(forward(out)[0][layer.name], layer, channel))
    image = current[0].cpu()
    return Dream(target=name, input=out[0].cpu().contiguous(), image=image,
                 change=(image - original[0].cpu()).abs().sum(dim=0), before=before,
                 after=after, steps=steps, octaves=octaves, history=history)
