"""The page's math context with the formula length limit (`limits.MAX_FORMULA`); its own
module because it needs `tex` (and so Markdown), which a no-op build never imports."""
from __future__ import annotations

from .limits import check_formula
from .tex import MathContext


class BoundedMath(MathContext):
    """MathContext refusing an over-long formula, in one line at its position."""

    def render(self, tex: str, display: bool) -> str:
        check_formula(tex, self.pos_of)
        return super().render(tex, display)
