"""The explorer's data file: an explorable hierarchy as the page's JavaScript reads it.

A hierarchy with `explore=N` carries, in its cached figure data, the tree expanded N
levels past the static figure (`data["explore"]`, tiles by name). The page fetches it as
one JSON file, `figures/explore-<hash>.json`: a flat list of nodes keyed by path, tile
URLs already under the site's base URL (figure HTML is spliced in after the site's link
rewriting, and so is what it fetches), and the layout constants the static figure was
drawn with, so the script lays out new rows exactly as `layout.py` does.
"""
from __future__ import annotations

import hashlib
import json

from generator.site.figures.layout import GAP, LABEL, ROW_GAP, TILE

FORMAT = 1


def explore_document(data: dict, url) -> dict:
    """The JSON document for a hierarchy figure's `data`; `url(name)` makes a tile URL."""
    ex = data["explore"]
    nodes = []
    frontier = [ex["tree"]]
    while frontier:                     # breadth first: the root, then each level
        nodes.extend({
            "path": n["path"], "unit": n["unit"], "layer": n["layer"], "index": n["index"],
            "weight": n["weight"], "activation": n["activation"], "tile": url(n["tile"]),
            "children": [c["path"] for c in n["children"]], "stop": n.get("stop"),
        } for n in frontier)
        frontier = [c for n in frontier for c in n["children"]]
    return {"format": FORMAT, "root": ex["tree"]["unit"], "rule": data.get("rule"),
            "model": data.get("model"), "tile_w": data.get("tile_w"), "tile_h": data.get("tile_h"),
            "levels": ex["levels"], "depth": ex["depth"], "budget": ex["budget"],
            "children": ex["children"],
            "layout": {"tile": TILE, "gap": GAP, "label": LABEL, "row_gap": ROW_GAP},
            "nodes": nodes}


def explore_file(data: dict, url) -> tuple[str, bytes]:
    """(file name, bytes) of the document: named by the hash of its content."""
    blob = json.dumps(explore_document(data, url), separators=(",", ":"),
                      sort_keys=True).encode()
    return f"explore-{hashlib.sha256(blob).hexdigest()[:24]}.json", blob
