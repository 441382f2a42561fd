"""Figure tiles as PNG bytes: gradients, inputs, feature maps and patch grids.

Every tile the engine publishes goes through here, so one place decides how pixels are
encoded (PNG, no optimization pass: byte-stable across runs) and how tiles are named.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from generator.vis.render import display as disp


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def gradient_pngs(grads, percentile: float) -> list[bytes]:
    """Input gradients (N, C, H, W) -> PNG tiles on neutral gray (see `display`)."""
    return [png(disp.tile(g, percentile)) for g in grads]


def input_png(x) -> bytes:
    """The model's input (C, H, W) as it sees it, contrast-stretched to a picture."""
    a = x.detach().cpu().double().numpy()
    lo, hi = a.min(), a.max()
    v = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    px = np.rint(255 * v).astype(np.uint8).transpose(1, 2, 0)
    return png(Image.fromarray(px[:, :, 0] if px.shape[2] == 1 else px))


def featuremap_pngs(maps) -> list[bytes]:
    """Channels of h_L (C, H, W) -> grayscale PNGs on one shared scale (the layer's max),
    so brightness compares across channels."""
    m = maps.detach().cpu().double().numpy()
    top = m.max()
    v = np.clip(m / top, 0, 1) if top > 0 else np.zeros_like(m)
    return [png(Image.fromarray(np.rint(255 * c).astype(np.uint8))) for c in v]


def compose(patches, cols: int, rows: int, gap: int = 2) -> Image.Image:
    """Equal-sized patches (h, w[, 3]) as one grid image, best first, row by row, on light
    separators (dark ones vanish against dark backgrounds such as Fashion-MNIST's)."""
    if not patches:
        return Image.new("L", (1, 1), 128)
    h, w = patches[0].shape[:2]
    shape = (rows * (h + gap) - gap, cols * (w + gap) - gap) + patches[0].shape[2:]
    grid = np.full(shape, 224, np.uint8)
    for i, p in enumerate(patches):
        r, c = divmod(i, cols)
        grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = p
    return Image.fromarray(grid)


def picture_png(image) -> bytes:
    """A picture in [0, 1] (C, H, W) as it is, no stretching: an optimized or dreamed image."""
    a = image.detach().cpu().double().clamp(0, 1).numpy()
    px = np.rint(255 * a).astype(np.uint8).transpose(1, 2, 0)
    return png(Image.fromarray(px[:, :, 0] if px.shape[2] == 1 else px))


def change_png(change) -> bytes:
    """Where an image changed (H, W, >= 0) as a gray map: black unchanged, white the most."""
    a = change.detach().cpu().double().numpy()
    top = a.max()
    v = a / top if top > 0 else np.zeros_like(a)
    return png(Image.fromarray(np.rint(255 * v).astype(np.uint8)))
