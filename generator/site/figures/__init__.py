"""Figures in posts: the site's side of directives → engine → figure HTML.

The site pipeline hands every figure directive to `FigureStage.plan`, calls `run` once,
then asks `render` for each directive's HTML. Only `run` may import torch, and only when
some figure is missing from the cache, so a build where no figure changed stays text-only.
"""
from __future__ import annotations

from pathlib import Path


class FigureStage:
    """Plans, computes (through `generator.vis.api`), caches and renders a site's figures."""

    def __init__(self, site, cache_dir: Path, quiet: bool = False):
        self.site = site
        self.cache_dir = Path(cache_dir)
        self.quiet = quiet
        self.counters = {"computed": 0, "reused": 0}
        self._planned = {}

    def plan(self, directive, params: dict, page_meta: dict) -> None:
        """Record one directive's figure request (no computation)."""
        self._planned[directive.pos] = (directive, params, page_meta)

    def run(self) -> None:
        """Compute every planned figure that is not cached."""

    def render(self, directive) -> str:
        """The directive's figure as HTML."""
        return f'<figure class="ft-figure ft-{directive.name}"></figure>'

    def files(self) -> dict[str, Path]:
        """Site-relative path -> file to copy into the site (figure tiles)."""
        return {}

    def watch_paths(self) -> list[Path]:
        """Model weights and image files that `serve` must watch."""
        return []
