"""Figure HTML: a computed figure's data → `<figure>` markup through `templates/figures/`.

Tiles are referred to by their content-hashed names; `tile_url` turns a name into a URL
under the site's base URL. Layout numbers (positions as percentages of a box with a
fixed aspect ratio) are computed here so the templates stay declarative.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from generator.site.figures.layout import BAND_GAP, LABEL, TILE, tree_layout
from generator.vis import api

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
TILE_DIR = "figures"


@lru_cache(maxsize=None)
def _env(templates: tuple[Path, ...]) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(d) for d in templates]),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["pct"] = lambda v: f"{v:.4f}".rstrip("0").rstrip(".") + "%"
    return env


def _num(value, digits: int = 3) -> str:
    """A short human number: 0.0123 → 0.0123, 1234.5 → 1.23e+03."""
    v = float(value)
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e4:
        return f"{v:.{digits}g}"
    return f"{v:.{digits - 1}e}"


def caption_html(text: str | None) -> Markup | None:
    """Escape a caption; `code` spans in backticks become <code>."""
    if not text:
        return None
    safe = str(escape(text))
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", safe))


def tile_url(base_url: str, name: str) -> str:
    """URL of a file the figures stage publishes under `figures/` (tiles, explorer data)."""
    return f"{base_url.rstrip('/')}/{TILE_DIR}/{name}"


def _band(nodes) -> tuple[float, float]:
    """Width and height (layout units) of the patch grids under each tile, if any."""
    grids = [n.patches for n in nodes if n.patches]
    if not grids:
        return 0.0, 0.0
    g = grids[0]
    grid_w = g.cols * (g.patch_w + 1) - 1
    grid_h = g.rows * (g.patch_h + 1) - 1
    return 2 * TILE + BAND_GAP, TILE * grid_h / grid_w


def _tree_context(fig, url) -> dict:
    """Positions of a hierarchy's tiles and edges (percentages of the figure's box)."""
    band_w, band_h = _band(list(fig.tree.walk()))
    pair = fig.tree.picture is not None
    lay = tree_layout(fig.tree, aspect=fig.tile_h / max(fig.tile_w, 1),
                      band_w=band_w, band_h=band_h, pair=pair)
    W, H = lay.width, lay.height
    nodes = []
    for p in lay.nodes:
        n = p.node
        nodes.append({
            "unit": n.unit, "layer": n.layer, "index": n.index,
            "activation": n.activation, "inactive": n.inactive, "weight": n.weight,
            "parent": p.parent.node.unit if p.parent else None, "path": n.path,
            "src": url(n.tile), "followed": bool(n.children), "patches": n.patches,
            "picture": n.picture, "field": n.field,
            "left": 100 * p.x / W, "top": 100 * p.y / H,
            "width": 100 * lay.col_w / W, "height": 100 * lay.row_h / H,
        })
    edges = [{"x1": e.x1, "y1": e.y1, "x2": e.x2, "y2": e.y2, "weight": e.weight,
              "strength": e.strength, "parent": e.parent.node.unit,
              "child": e.child.node.unit} for e in lay.edges]
    label_cqw = 100 * LABEL * 0.62 / W
    return {"nodes": nodes, "edges": edges, "W": W, "H": H, "label_cqw": label_cqw,
            "cols": max(len(r) for r in lay.rows), "head_pct": 100 * lay.tile_w / lay.col_w,
            "band_gap_pct": 100 * BAND_GAP / lay.col_w,
            "band_col_gap_pct": 100 * BAND_GAP / band_w if band_w else 0}


# Site-side layouts a kind's template may need (`Kind.layout`).
LAYOUTS = {"tree": _tree_context}


def _legend(text: str) -> Markup:
    """What the figure's colours mean, under its caption (`[theme] legends = false` hides it)."""
    return Markup(f' <span class="ft-legend">{escape(text)}</span>') if text else Markup("")


def default_caption(kind: str, data: dict) -> str:
    """The kind's caption for a figure whose author gave none."""
    return api.KINDS[kind].caption(api.figure_from_json(kind, data))


def render_figure(kind: str, data: dict, *, base_url: str, caption: str | None = None,
                  size: str | None = None, explore: str | None = None,
                  templates: tuple[Path, ...] | Path = (TEMPLATES,)) -> str:
    """The HTML of one figure; `explore` is the URL of a hierarchy's explorer data.
    `templates` is the search path, first match wins (a site's own `templates/` first)."""
    templates = (templates,) if isinstance(templates, Path) else tuple(Path(d) for d in templates)
    url = lambda name: tile_url(base_url, name)  # noqa: E731
    spec = api.KINDS[kind]
    fig = api.figure_from_json(kind, data)
    small = 0 < int(fig.tile_w or getattr(fig, "map_w", 0) or 999) < 128
    ctx = {"kind": kind, "data": fig, "url": url, "size": size, "explore": explore,
           "extra": "ft-pixelated" if small else "",
           "caption": (caption_html(caption if caption else spec.caption(fig)) or Markup(""))
           + _legend(spec.legend_of(fig))}
    if spec.layout:
        ctx.update(LAYOUTS[spec.layout](fig, url))
    return _env(templates).get_template(f"figures/{spec.template}.html").render(ctx).strip()
