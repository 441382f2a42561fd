"""Atlas pages: one per model, layer and unit, each rendered only when its key changed."""
from __future__ import annotations

from dataclasses import dataclass

from generator.files import json_digest

from .store import Atlas
from .svg import histogram_svg

ROW = 12        # thumbnails per layer on the model page
PARENTS = 8


@dataclass
class Link:
    """A named unit or post with a weight and where its page is (None: no page)."""

    name: str
    weight: float | None
    href: str | None


def parents_of(atlas: Atlas) -> dict[str, list[Link]]:
    """Typical parents: units of the chosen layer above whose typical children include u."""
    out: dict[str, list[Link]] = {}
    for unit in atlas.units.values():
        for child in unit.children:
            out.setdefault(child.name, []).append(Link(unit.unit, child.weight, atlas.unit_path(unit.unit)))
    return {u: sorted(ps, key=lambda p: -p.weight)[:PARENTS] for u, ps in out.items()}


def urls(atlas: Atlas) -> list[str]:
    """Every atlas page's site path, for the sitemap."""
    return [atlas.base] + [f"{atlas.base}{l.name}/" for l in atlas.layers] + \
        [atlas.unit_path(f"{l.name}_{i}") for l in atlas.layers for i in range(l.units)]


def files(atlas: Atlas) -> dict[str, object]:
    """Site path -> cached tile file of every tile the pages show."""
    return {f"atlas/tiles/{t}": atlas.tile_dir / t for u in atlas.units.values() for t in u.tiles}


def _units(atlas: Atlas, layer) -> list:
    return [atlas.units[f"{layer.name}_{i}"] for i in range(layer.units)]


def write(pages, atlas: Atlas, site_key: str, mentions: dict[str, list[tuple[str, str]]],
          progress=None) -> None:
    """Model, layer and unit pages of `atlas` through the pipeline's page writer;
    `progress("pages", done, total)` as unit pages are written or found unchanged."""
    tile = lambda name: f"atlas/tiles/{name}"
    rows = [(l, sorted(_units(atlas, l), key=lambda u: (-u.max, u.index))[:ROW]) for l in atlas.layers]
    pages.write(f"{atlas.base}index.html", json_digest(["atlas-model", site_key, atlas.digest()]),
                "atlas/model.html", atlas=atlas, rows=rows, tile=tile)
    for layer in atlas.layers:
        units = _units(atlas, layer)
        key = json_digest(["atlas-layer", site_key, atlas.digest(), layer.name])
        pages.write(f"{atlas.base}{layer.name}/index.html", key, "atlas/layer.html",
                    atlas=atlas, layer=layer, units=units, tile=tile)
    parents = parents_of(atlas)
    chosen = {l.name for l in atlas.layers}
    total, done = sum(l.units for l in atlas.layers), 0
    for layer in atlas.layers:
        for unit in _units(atlas, layer):
            _write_unit(pages, atlas, site_key, layer, unit, parents.get(unit.unit, []),
                        mentions.get(unit.unit, []), chosen, tile)
            done += 1
            if progress is not None and (done % 64 == 0 or done == total):
                progress("pages", done, total)


def _write_unit(pages, atlas, site_key, layer, unit, parents, mentions, chosen, tile) -> None:
    children = [Link(c.name, c.weight, atlas.unit_path(c.name) if c.name.rpartition("_")[0] in chosen
                     else None) for c in unit.children]
    key = json_digest(["atlas-unit", site_key, atlas.keys[unit.unit], [p.name for p in parents],
                       [c.href for c in children], mentions, atlas.config.name])
    rel = f"{atlas.unit_path(unit.unit)}index.html"
    if pages.tree.reuse(rel, key):
        return
    from markupsafe import Markup

    svg = histogram_svg(unit.histogram.counts, unit.histogram.lo, unit.histogram.hi,
                        f"histogram of {unit.unit}'s activation over the dataset")
    pages.write(rel, key, "atlas/unit.html", atlas=atlas, layer=layer, unit=unit,
                children=children, parents=parents, mentions=mentions, tile=tile,
                histogram=Markup(svg))
