"""Gradients to pictures.

Normalization (the figure's `percentile` parameter, default 99.5): each picture is scaled
on its own by the p-th percentile of |g| over its non-zero entries, clipped to [-1, 1] and
mapped to 128 + 127 * value, so zero is neutral gray. Scaling each picture by its own
robust maximum keeps deep nodes of a tree (whose gradients are weaker and sparser) from
fading out, and clipping only the top (100 - p)% of magnitudes keeps a few extreme pixels
from flattening the rest -- the saturation the seeds complain about comes from a single
shared scale. Taking the percentile over the non-zero entries makes the scale independent
of how much of the image a unit's receptive field covers.
"""
from __future__ import annotations

import math
import numpy as np
import torch

DEFAULT_PERCENTILE = 99.5


def normalize(grad: torch.Tensor | np.ndarray, percentile: float = DEFAULT_PERCENTILE) -> np.ndarray:
    """(C, H, W) gradient -> float array in [-1, 1] (see the module docstring)."""
    g = grad.detach().cpu().double().numpy() if isinstance(grad, torch.Tensor) else np.asarray(grad, float)
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    mag = np.abs(g[g != 0])
    if mag.size == 0:
        return np.zeros_like(g)
    scale = np.percentile(mag, percentile)
    if scale <= 0:
        scale = mag.max()
    return np.clip(g / scale, -1.0, 1.0)


def to_pixels(grad, percentile: float = DEFAULT_PERCENTILE) -> np.ndarray:
    """(C, H, W) gradient -> uint8 (H, W, C) on neutral gray (128 = zero)."""
    v = normalize(grad, percentile)
    return np.rint(128 + 127 * v).astype(np.uint8).transpose(1, 2, 0)


def tile(grad, percentile: float = DEFAULT_PERCENTILE, min_size: int = 0):
    """A PIL image of one gradient; upscaled (nearest) to at least `min_size` pixels."""
    from PIL import Image

    px = to_pixels(grad, percentile)
    image = Image.fromarray(px[:, :, 0] if px.shape[2] == 1 else px)
    return _upscale(image, min_size)


def _upscale(image, min_size):
    from PIL import Image

    if min_size and min(image.size) < min_size:
        f = math.ceil(min_size / min(image.size))
        image = image.resize((image.width * f, image.height * f), Image.Resampling.NEAREST)
    return image


def feature_grid(maps: torch.Tensor, columns: int | None = None, gap: int = 1,
                 min_cell: int = 24):
    """All channels of a conv layer's h_L (C, H, W) as a grid image (L mode).

    Every map shares one scale (the layer's maximum), so brightness compares across
    channels; black is zero.
    """
    from PIL import Image

    m = maps.detach().cpu().double().numpy()
    c, h, w = m.shape
    top = m.max()
    v = np.clip(m / top, 0, 1) if top > 0 else np.zeros_like(m)
    columns = columns or math.ceil(math.sqrt(c))
    rows = math.ceil(c / columns)
    f = max(1, math.ceil(min_cell / max(h, w)))
    ch, cw = h * f, w * f
    grid = np.full((rows * (ch + gap) + gap, columns * (cw + gap) + gap), 64, np.uint8)
    for i in range(c):
        r, q = divmod(i, columns)
        cell = np.kron(np.rint(255 * v[i]).astype(np.uint8), np.ones((f, f), np.uint8))
        grid[gap + r * (ch + gap):gap + r * (ch + gap) + ch,
             gap + q * (cw + gap):gap + q * (cw + gap) + cw] = cell
    return Image.fromarray(grid)


def hierarchy_figure(root, percentile: float = DEFAULT_PERCENTILE, tile_size: int = 128,
                     gap: int = 24, label_height: int = 30):
    """A tree (`hierarchy.Node`) as one image: a row per level, each tile labeled with its
    unit and edge weight, lines from the followed parent to its children."""
    from PIL import Image, ImageDraw, ImageFont

    rows: list[list] = [[root]]
    node = root
    while node.children:
        rows.append(node.children)
        node = next((c for c in node.children if c.children), None)
        if node is None:
            break
    width = max(len(r) for r in rows) * (tile_size + gap) + gap
    row_h = tile_size + label_height + gap * 2
    canvas = Image.new("RGB", (width, len(rows) * row_h + gap), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=12)
    boxes = {}
    for depth, row in enumerate(rows):
        x0 = (width - len(row) * (tile_size + gap) + gap) // 2
        y = gap + depth * row_h
        for i, n in enumerate(row):
            x = x0 + i * (tile_size + gap)
            image = tile(n.image, percentile).convert("RGB")
            image = image.resize((tile_size, tile_size), Image.Resampling.NEAREST
                                 if image.width < tile_size else Image.Resampling.LANCZOS)
            canvas.paste(image, (x, y))
            label = n.unit if n.weight is None else f"{n.unit}  w={n.weight:.3g}"
            draw.text((x, y + tile_size + 3), label, fill=(0, 0, 0), font=font)
            boxes[n.path] = (x, y)
    for depth in range(1, len(rows)):
        parent = rows[depth - 1]
        for p in parent:
            if not p.children:
                continue
            px, py = boxes[p.path]
            for c in p.children:
                cx, cy = boxes[c.path]
                draw.line([(px + tile_size // 2, py + tile_size + label_height - 8),
                           (cx + tile_size // 2, cy - 2)], fill=(90, 90, 90), width=2)
    return canvas


def save_png(image, path) -> None:
    image.save(path, format="PNG", optimize=False)

