"""Image parametrizations for feature visualization, and the map from [0,1] images to a
model's input.

An optimized picture lives in some parameter space (Fourier coefficients or raw pixels);
`image(params)` squashes it through a sigmoid into [0,1] display space, and `ImageRange`
turns [0,1] images into the model's input exactly as its own preprocessing would turn a
black-to-white image into one. So an optimized input never leaves the range a real image
can produce.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from generator.vis.errors import EngineError

PARAMS = ("fft", "pixel")

# Channels of natural RGB images are strongly correlated; modelling their covariance as
# equal variances with pairwise correlation RHO gives a fixed matrix whose square root
# turns independent "decorrelated" channels into plausibly coloured ones.
RHO = 0.9


def colour_matrix() -> torch.Tensor:
    """sqrt of the 3x3 covariance (1-RHO)I + RHO 11^T, scaled to unit max column norm."""
    cov = (1 - RHO) * torch.eye(3, dtype=torch.float64) + RHO * torch.ones(3, 3, dtype=torch.float64)
    values, vectors = torch.linalg.eigh(cov)
    root = vectors @ torch.diag(values.sqrt()) @ vectors.T
    return (root / root.norm(dim=0).max()).to(torch.float32)


def frequency_scale(h: int, w: int, decay: float = 1.0) -> torch.Tensor:
    """1/f^decay weights of an rfft2 spectrum (H, W//2+1), the DC term capped at max(H, W)."""
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :]
    f = torch.sqrt(fy * fy + fx * fx).clamp(min=1.0 / max(h, w))
    return (f ** -decay).to(torch.float32)


@dataclass
class FFTImage:
    """Pixels as the inverse real FFT of a 1/f-weighted spectrum (Fourier parametrization).

    Optimizing the spectrum makes steps on low frequencies as easy as on high ones, which
    keeps the pictures from turning into high-frequency noise. For 3 channels the spatial
    result is mixed by `colour_matrix()` (decorrelated colour) before the sigmoid.
    """

    channels: int
    height: int
    width: int
    decorrelate: bool = True
    sd: float = 0.01
    decay: float = 1.0
    name: str = "fft"

    def shape(self) -> tuple[int, ...]:
        return (self.channels, self.height, self.width // 2 + 1, 2)

    def init(self, generator: torch.Generator) -> torch.Tensor:
        """One image's parameters, drawn from `generator` (on CPU, so every device agrees)."""
        return torch.randn(self.shape(), generator=generator) * self.sd

    def raw(self, params: torch.Tensor) -> torch.Tensor:
        """(N, *shape()) -> pre-sigmoid pixels (N, C, H, W)."""
        scale = frequency_scale(self.height, self.width, self.decay).to(params.device)
        spectrum = torch.view_as_complex(params.contiguous()) * scale
        x = torch.fft.irfft2(spectrum, s=(self.height, self.width), norm="ortho")
        if self.channels == 3 and self.decorrelate:
            x = torch.einsum("ij,njhw->nihw", colour_matrix().to(x.device), x)
        return x

    def image(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.raw(params))


@dataclass
class PixelImage:
    """Pixels directly (through a sigmoid): the plain baseline."""

    channels: int
    height: int
    width: int
    sd: float = 0.01
    name: str = "pixel"

    def shape(self) -> tuple[int, ...]:
        return (self.channels, self.height, self.width)

    def init(self, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(self.shape(), generator=generator) * self.sd

    def raw(self, params: torch.Tensor) -> torch.Tensor:
        return params

    def image(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)


def make_param(name: str, channels: int, height: int, width: int, decorrelate: bool = True):
    """The parametrization called `name` (see PARAMS); EngineError otherwise."""
    if name == "fft":
        return FFTImage(channels, height, width, decorrelate=decorrelate)
    if name == "pixel":
        return PixelImage(channels, height, width)
    raise EngineError(f"unknown image parametrization {name!r}: use one of {', '.join(PARAMS)}")


@dataclass(frozen=True)
class ImageRange:
    """Per-channel affine map of the model's preprocessing: input = low + image * (high - low).

    `low` is what a black image becomes, `high` what a white one becomes, so every
    [0,1] image maps inside the box a real image can reach.
    """

    low: torch.Tensor  # (C,)
    high: torch.Tensor  # (C,)

    def to_input(self, image: torch.Tensor) -> torch.Tensor:
        """[0,1] images (..., C, H, W) -> model input."""
        low, high = (t.to(image.device).reshape(-1, 1, 1) for t in (self.low, self.high))
        return low + image * (high - low)

    def to_image(self, x: torch.Tensor) -> torch.Tensor:
        """Model input (..., C, H, W) -> [0,1] image (clamped)."""
        low, high = (t.to(x.device).reshape(-1, 1, 1) for t in (self.low, self.high))
        return ((x - low) / (high - low)).clamp(0, 1)

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(min, max) per channel of a valid input."""
        return torch.minimum(self.low, self.high), torch.maximum(self.low, self.high)


def image_range(model) -> ImageRange:
    """The model's preprocessing, probed with a black and a white image (cached on the model)."""
    cached = model.engine_cache.get("featurevis.range")
    if cached is not None:
        return cached
    from PIL import Image

    c, h, w = model.input_shape
    mode = "L" if c == 1 else "RGB"
    ends = []
    for value in (0, 255):
        x = model.preprocess(Image.new(mode, (w, h), (value,) * len(mode)))
        if x.dim() != 3 or x.shape[0] != c:
            raise EngineError(f"{model.name}: preprocess returns shape {tuple(x.shape)}, "
                              f"expected ({c}, H, W)")
        ends.append(x.reshape(c, -1).median(dim=1).values.to(torch.float32))
    low, high = ends
    if not bool(torch.all((high - low).abs() > 1e-6)) or not all(
            math.isfinite(v) for v in torch.cat(ends).tolist()):
        raise EngineError(f"{model.name}: preprocess maps black and white to the same input; "
                          f"feature visualization needs an image range")
    out = ImageRange(low, high)
    model.engine_cache["featurevis.range"] = out
    return out
