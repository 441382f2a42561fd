"""`crop=`: a unit's tile cut to where its gradient lives, scaled up to the tile's size,
with a small copy of the input marking the cut.

A conv unit's gradient is non-zero only inside its receptive field, so on a real-size
input (224 px) an early unit's tile is a few coloured pixels on a gray square. The cut is
the square around the non-zero gradient (plus a margin, padded with gray where it leaves
the image), so it also fits a path-local picture in a tree, whose support spans several
locations of the unit's map.
"""
from __future__ import annotations

from dataclasses import dataclass

CROPS = ("auto", "on", "off")
AUTO_MIN_INPUT = 128      # auto crops only inputs at least this large (small ones read whole)
AUTO_MAX_SHARE = 0.5      # ... and only supports at most this share of the input's side
MARGIN = 0.1              # of the support's side, on each side
MIN_SIDE = 8              # px of input: a cut never gets smaller


@dataclass(frozen=True)
class Cut:
    """A square of input pixels [top, top + side) x [left, left + side); may leave the image."""

    top: int
    left: int
    side: int


def support_cut(grad, mode: str) -> Cut | None:
    """The cut for one gradient (C, H, W) under `crop=mode`, or None (the whole tile)."""
    if mode == "off":
        return None
    _, h, w = grad.shape
    nz = grad.abs().sum(dim=0).nonzero()
    if len(nz) == 0:
        return None
    (r0, c0), (r1, c1) = nz.min(dim=0).values.tolist(), nz.max(dim=0).values.tolist()
    side = max(r1 - r0 + 1, c1 - c0 + 1)
    side = max(MIN_SIDE, round(side * (1 + 2 * MARGIN)))
    if mode == "auto" and (min(h, w) < AUTO_MIN_INPUT or side > AUTO_MAX_SHARE * min(h, w)):
        return None
    if side >= min(h, w):
        return None
    return Cut(top=(r0 + r1 + 1 - side) // 2, left=(c0 + c1 + 1 - side) // 2, side=side)


def cut_gradient(grad, cut: Cut):
    """The gradient inside `cut` (zero, i.e. gray, outside the image), scaled up (nearest)
    to the tile's size so every tile of a figure keeps one size."""
    import torch
    import torch.nn.functional as F

    c, h, w = grad.shape
    out = torch.zeros((c, cut.side, cut.side), dtype=grad.dtype, device=grad.device)
    t0, l0 = max(cut.top, 0), max(cut.left, 0)
    t1, l1 = min(cut.top + cut.side, h), min(cut.left + cut.side, w)
    out[:, t0 - cut.top:t1 - cut.top, l0 - cut.left:l1 - cut.left] = grad[:, t0:t1, l0:l1]
    return F.interpolate(out[None], size=(h, w), mode="nearest")[0]


def marker_png(x, cut: Cut, scale: int = 4) -> bytes:
    """The input (C, H, W as the model sees it), 1/`scale` size, the cut outlined."""
    from PIL import Image, ImageDraw

    from generator.vis.render.tiles import input_png, png

    import io

    image = Image.open(io.BytesIO(input_png(x))).convert("RGB")
    small = image.resize((max(1, image.width // scale), max(1, image.height // scale)),
                         Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(small)
    box = [cut.left / scale, cut.top / scale, (cut.left + cut.side) / scale - 1,
           (cut.top + cut.side) / scale - 1]
    draw.rectangle(box, outline=(255, 64, 32), width=max(1, small.width // 40))
    return png(small)


def crop_all(grads, mode: str, x, tiles) -> tuple[list, list[str | None]]:
    """Gradients (N, C, H, W) cut under `crop=mode`, and each one's marker tile (or None)."""
    out, markers = [], []
    for g in grads:
        cut = support_cut(g, mode)
        out.append(g if cut is None else cut_gradient(g, cut))
        markers.append(None if cut is None else tiles.add(marker_png(x, cut)))
    return out, markers
