"""Figures in posts: the site's side of directives → engine → figure HTML.

The site pipeline hands every figure directive to `FigureStage.plan`, calls `run` once,
then asks `render` for each directive's HTML. Only `run` may import torch, and only when
some figure is missing from the cache, so a build where no figure changed stays text-only.
"""
from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

from generator.site import cachecheck
from generator.site.errors import BuildError
from generator.files import json_digest, sources_digest, write_atomic
from generator.site.figures.cache import FigureCache
from generator.site.figures.digests import Digests
from generator.site.figures.planner import FIGURE_KINDS, Plan, PlanError, plan_figure
from generator.site.theme import template_dirs

__all__ = ["FigureStage", "FIGURE_KINDS"]


def _directive_error(directive, message: str) -> BuildError:
    """The site's positioned error (`path:line:col: message`) for a directive."""
    return BuildError(message, directive.pos)


class FigureStage:
    """Plans, computes (through `generator.vis.api`), caches and renders a site's figures."""

    def __init__(self, site, cache_dir: Path, quiet: bool = False):
        self.site = site
        self.cache_dir = Path(cache_dir)
        self.quiet = quiet
        self.cache = FigureCache(self.cache_dir / "figures")
        self.digests = Digests(self.cache_dir / "figures" / "digests.json")
        self.counters = {"computed": 0, "reused": 0, "planned": 0}
        self.seconds = 0.0
        self.warnings: list[str] = []
        self._plans: dict = {}        # directive position -> Plan
        self._directives: dict = {}   # directive position -> directive (for errors)
        self._data: dict = {}         # figure key -> data
        self._html: dict = {}         # html key -> figure HTML
        self._markup: str | None = None
        self._explore: dict[str, Path] = {}   # site path -> explorer data file (see render)

    # -- plan ---------------------------------------------------------------------------
    def plan(self, directive, params: dict, page_meta: dict) -> None:
        """Record one directive's figure request and its cache key (no computation)."""
        try:
            plan = plan_figure(directive, params, page_meta, self.site, self.digests)
        except PlanError as e:
            raise _directive_error(directive, str(e)) from None
        except OSError as e:
            raise _directive_error(directive, f"cannot read {e.filename}: {e.strerror}") from None
        self._plans[directive.pos] = plan
        self._directives[directive.pos] = directive
        self.counters["planned"] = len(self._plans)

    # -- run ----------------------------------------------------------------------------
    def run(self) -> None:
        """Compute every planned figure that is not cached; reuse the rest."""
        start = time.perf_counter()
        self.digests.save()
        todo: dict[str, Plan] = {}
        for plan in self._plans.values():
            if plan.key in self._data or plan.key in todo:
                continue
            data = self.cache.get(plan.key)
            if data is None:
                todo[plan.key] = plan
            else:
                self._data[plan.key] = data
        self.counters["reused"] = len(self._data)
        if todo:
            self._compute(list(todo.values()))
        self.seconds = time.perf_counter() - start
        if not self.quiet and self._plans:
            print(f"figures: {self.counters['computed']} computed, {self.counters['reused']} "
                  f"reused in {self.seconds:.1f}s", file=sys.stderr)

    def _compute(self, plans: list[Plan]) -> None:
        from generator.vis import api  # torch comes in only through api.compute

        by_ref = {}
        for pos, plan in self._plans.items():
            by_ref.setdefault(plan.request.ref, self._directives[pos])
        with _Progress(len(plans), self.quiet) as bar:
            def store(i: int, result: api.FigureResult) -> None:
                self.cache.put(plans[i].key, result.data, result.tiles)
                self._data[plans[i].key] = result.data
                self.counters["computed"] += 1
                bar.advance()
            def warn(ref, message: str) -> None:
                if not self.quiet and message not in self.warnings:
                    print(f"warning: {by_ref[ref].pos}: {message}", file=sys.stderr)
                self.warnings.append(message)
            try:
                api.compute([p.request for p in plans], on_result=store, on_warning=warn,
                            index_dir=self.cache_dir / "index", verbose=not self.quiet,
                            on_steps=bar.steps)
            except api.RequestError as e:
                raise _directive_error(by_ref[e.ref], e.message) from None

    # -- render -------------------------------------------------------------------------
    def render(self, directive) -> str:
        """The directive's figure as HTML (`run` must have been called).

        The HTML is cached too, keyed by the figure, its caption and size, the base URL
        and the figure templates, so an unchanged page needs neither Jinja2 nor layout.
        """
        plan = self._plans[directive.pos]
        base_url = getattr(self.site, "base_url", "/")
        if self._markup is None:
            self._dirs = tuple(template_dirs(self.site))
            self._markup = _markup_digest(self._dirs)
        explore_url = self._explore_file(plan, base_url)
        key = _hash(plan.key, directive.name, plan.caption, plan.size, base_url, self._markup)
        html = self._html.get(key)
        if html is None:
            path = self.cache.root / "html" / f"{key}.html"
            html = cachecheck.read_text(path, "figure HTML")
            if html is None:
                html = self._render_html(directive, plan, base_url, explore_url)
                cachecheck.write_text(path, html)
            self._html[key] = html
        return html

    def _render_html(self, directive, plan: Plan, base_url: str, explore_url) -> str:
        """Figure data through its template; a template's runtime error is one line at
        the template's file:line."""
        from generator.site.figures.markup import render_figure
        from generator.site.theme import runtime_error

        try:
            return render_figure(directive.name, self._data[plan.key], base_url=base_url,
                                 caption=plan.caption, size=plan.size, explore=explore_url,
                                 templates=self._dirs)
        except BuildError:
            raise
        except Exception as e:
            raise runtime_error(e, f"figures/{directive.name}.html", self._dirs) from None

    def _explore_file(self, plan: Plan, base_url: str) -> str | None:
        """An explorable hierarchy's data file (written to the cache once, published by
        `files`), and its URL; None for any other figure."""
        data = self._data[plan.key]
        if not data.get("explore"):
            return None
        from generator.site.figures.explore import explore_file
        from generator.site.figures.markup import tile_url

        name, blob = explore_file(data, lambda n: tile_url(base_url, n))
        path = self.cache.root / "explore" / name
        try:
            intact = path.read_bytes() == blob       # named by its hash: the bytes must match
        except OSError:
            intact = None
        if intact is False:
            cachecheck.note("explorer data", path)
        if not intact:
            write_atomic(path, blob)
        self._explore[f"figures/{name}"] = path
        return tile_url(base_url, name)

    def files(self) -> dict[str, Path]:
        """Site-relative path -> file to copy into the site: the tiles of every figure and
        the data files of explorable hierarchies."""
        out = dict(self._explore)
        for plan in self._plans.values():
            data = self._data.get(plan.key)
            if data is None:
                continue
            for name in data.get("tiles", ()):
                out[f"figures/{name}"] = self.cache.tile_path(name)
        return out

    def watch_paths(self) -> list[Path]:
        """Model weights, model code and image files that `serve` must watch."""
        seen = {}
        for plan in self._plans.values():
            for p in plan.inputs:
                seen[str(p)] = Path(p)
        return list(seen.values())


def _hash(*parts) -> str:
    return json_digest(parts)[:32]


def _markup_digest(dirs) -> str:
    """Hash of what turns figure data into HTML: this package and the figure templates on
    the search path `dirs` (a site's own `templates/figures/` overrides included).

    Read afresh by every stage, so `serve` picks up an edited figure template."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256(sources_digest(here).encode())
    for rank, d in enumerate(dirs):     # rank, not path: a site that moves keeps its cache
        for f in sorted((Path(d) / "figures").glob("*.html")):
            h.update(f"{rank}/{f.name}\0".encode() + f.read_bytes())
    return h.hexdigest()


class _Progress:
    """A rich progress bar over figures (done/total, ETA), or nothing when quiet."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet, self._bar, self._steps = total, quiet, None, None

    def __enter__(self):
        if not self.quiet:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            from rich.console import Console
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("figures", total=self.total)
        return self

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def steps(self, done: int, total: int) -> None:
        """Optimization steps (feature visualization, DeepDream), as a second bar."""
        if self._bar is None:
            return
        if self._steps is None:
            self._steps = self._bar.add_task("optimizing", total=total)
        self._bar.update(self._steps, completed=done, total=total)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False
