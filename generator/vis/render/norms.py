"""Display normalizations by name (torch-free): what `norm=NAME[:PARAM]` may say.

The planner checks a figure's `norm=` here without importing torch, and the result is
part of the figure's cache key, so it always names the method and its parameter.
"""
from __future__ import annotations

from generator.vis.errors import EngineError

NORMS = {"percentile": "scale each picture by the P-th percentile of |gradient| (default 99.5)"}


def display_params(norm: dict | str | None) -> dict:
    """`{"name", "percentile"}` for `norm` (`"NAME[:PARAM]"` or `{"name", "param"}`)."""
    if isinstance(norm, str):
        name, _, param = norm.partition(":")
        norm = {"name": name, "param": param}
    norm = dict(norm or {})
    name = norm.get("name") or "percentile"
    if name not in NORMS:
        raise EngineError(f"norm {name!r} is not known; valid: "
                          + "; ".join(f"{k}[:P] ({v})" for k, v in NORMS.items()))
    param = norm.get("param")
    try:
        p = 99.5 if param in (None, "") else float(param)
    except ValueError:
        p = -1.0
    if not 0 < p <= 100:
        raise EngineError(f"norm=percentile:{param}: the percentile must be a number "
                          "in (0, 100], e.g. percentile:99.5")
    return {"name": name, "percentile": p}
