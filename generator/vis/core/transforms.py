"""Transformation robustness for feature visualization: random pad, jitter, scale and
rotation, applied per batch element as one affine resampling (`F.affine_grid` +
`F.grid_sample`).

Each element draws its own transform from its own `torch.Generator`, so a picture does
not depend on which other pictures share its batch. Everything happens in [0,1] image
space and uncovered canvas is mid-gray, so a transformed image stays a valid image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from generator.vis.errors import EngineError

TRANSFORMS = ("standard", "none")


@dataclass(frozen=True)
class Transforms:
    """One random similarity per element and step.

    pad: the canvas is `pad` gray pixels larger on each side than the image (the model must
      accept that input size); jitter: integer shift of up to `jitter` pixels each way;
      scale: uniform zoom range; degrees: uniform rotation range (+-).
    """

    pad: int = 0
    jitter: int = 0
    scale: tuple[float, float] = (1.0, 1.0)
    degrees: float = 0.0

    @property
    def identity(self) -> bool:
        return (self.pad == 0 and self.jitter == 0 and self.scale == (1.0, 1.0)
                and self.degrees == 0)

    def without_pad(self) -> "Transforms":
        return Transforms(0, self.jitter, self.scale, self.degrees)

    def sample(self, generator: torch.Generator) -> torch.Tensor:
        """(dx, dy, zoom, radians) for one element, from its own generator."""
        u = torch.rand(4, generator=generator, dtype=torch.float64)
        span = 2 * self.jitter + 1
        dx = math.floor(float(u[0]) * span) - self.jitter
        dy = math.floor(float(u[1]) * span) - self.jitter
        lo, hi = self.scale
        zoom = lo + float(u[2]) * (hi - lo)
        angle = math.radians((2 * float(u[3]) - 1) * self.degrees)
        return torch.tensor([dx, dy, zoom, angle], dtype=torch.float64)

    def apply(self, images: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        """images (N, C, H, W) in [0,1], draws (N, 4) -> (N, C, H+2pad, W+2pad)."""
        n, _, h, w = images.shape
        ho, wo = h + 2 * self.pad, w + 2 * self.pad
        dx, dy, zoom, angle = draws.T
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        # output pixel p (centred) samples the image at (1/zoom) R(-angle) p - d, in pixels;
        # affine_grid wants it in normalized units of the output (in) and input (out).
        theta = torch.zeros((n, 2, 3), dtype=torch.float64)
        theta[:, 0, 0] = cos * wo / w
        theta[:, 0, 1] = sin * ho / w
        theta[:, 1, 0] = -sin * wo / h
        theta[:, 1, 1] = cos * ho / h
        theta[:, 0, 2] = -dx * 2 / w
        theta[:, 1, 2] = -dy * 2 / h
        theta = theta.to(images.device, images.dtype)
        grid = F.affine_grid(theta, [n, images.shape[1], ho, wo], align_corners=False)
        out = F.grid_sample(images - 0.5, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)
        return out + 0.5


NONE = Transforms()


def standard(size: int) -> Transforms:
    """The default robustness, relative to the picture's side (128 px: pad 8, jitter 8)."""
    step = max(1, round(size / 16))
    big = size >= 128  # small pictures (64 px) move less and keep their canvas
    return Transforms(pad=step if big else 0, jitter=step if big else max(1, step // 2),
                      scale=(0.95, 1.05), degrees=5.0)


def make_transforms(value, size: int = 128) -> Transforms:
    """'standard' (scaled to `size`), 'none' or a Transforms; EngineError otherwise."""
    if isinstance(value, Transforms):
        if value.pad < 0 or value.jitter < 0 or not (0 < value.scale[0] <= value.scale[1]):
            raise EngineError(f"invalid transforms {value}: pad and jitter must be >= 0, "
                              f"0 < scale[0] <= scale[1]")
        return value
    if value in (None, "none"):
        return NONE
    if value == "standard":
        return standard(size)
    raise EngineError(f"unknown transforms {value!r}: use one of {', '.join(TRANSFORMS)} "
                      f"or a Transforms(pad, jitter, scale, degrees)")


def sample_all(transforms: Transforms, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """(N, 4) draws, element i from generators[i]."""
    return torch.stack([transforms.sample(g) for g in generators])
