"""The activation histogram as a small static SVG (no script, readable in a feed reader)."""
from __future__ import annotations

from html import escape

W, H, PAD = 240, 72, 14


def histogram_svg(counts: list[int], lo: float, hi: float, label: str) -> str:
    """Bars over [lo, hi], the tallest bar full height; axis ends labelled."""
    top = max(counts) or 1
    bw = W / max(1, len(counts))
    bars = "".join(
        f'<rect x="{i * bw:.1f}" y="{H - c / top * H:.1f}" width="{max(bw - 1, 1):.1f}" '
        f'height="{c / top * H:.1f}"><title>{c}</title></rect>'
        for i, c in enumerate(counts) if c)
    return (f'<svg class="ft-hist" viewBox="0 0 {W} {H + PAD}" width="{W}" height="{H + PAD}" '
            f'role="img" aria-label="{escape(label)}">{bars}'
            f'<text x="0" y="{H + PAD - 2}">{lo:.3g}</text>'
            f'<text x="{W}" y="{H + PAD - 2}" text-anchor="end">{hi:.3g}</text></svg>')
