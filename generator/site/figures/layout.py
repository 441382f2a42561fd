"""Where a hierarchy's tiles and lines go: rows by layer, lines from parent to children.

Pure geometry in an abstract coordinate space (a tile is `TILE` units wide); the HTML
turns it into percentages of a box with a fixed aspect ratio, so tiles and SVG lines
stay aligned at any width.
"""
from __future__ import annotations

from dataclasses import dataclass, field

TILE = 100.0      # tile width
GAP = 14.0        # horizontal space between tiles
LABEL = 20.0      # band above each tile holding its unit label
ROW_GAP = 44.0    # vertical space between rows, where the lines run


@dataclass
class Placed:
    node: dict
    x: float          # left edge of the label band
    y: float          # top edge of the label band
    row: int
    parent: "Placed | None" = None


@dataclass
class Edge:
    parent: Placed
    child: Placed
    x1: float
    y1: float
    x2: float
    y2: float
    weight: float
    strength: float   # weight relative to the strongest sibling edge, in (0, 1]


@dataclass
class TreeLayout:
    width: float
    height: float
    tile_w: float
    tile_h: float
    rows: list[list[Placed]] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    @property
    def nodes(self) -> list[Placed]:
        return [p for row in self.rows for p in row]


def _rows(root: dict) -> list[list[tuple[dict, dict | None]]]:
    """Breadth-first rows of (node, parent)."""
    rows, frontier = [], [(root, None)]
    while frontier:
        rows.append(frontier)
        frontier = [(c, n) for n, _ in frontier for c in n.get("children") or []]
    return rows


def tree_layout(root: dict, aspect: float = 1.0) -> TreeLayout:
    """Place a tree: one centred row per depth, lines from each parent to its children.

    `aspect` is tile height / width (the model input's shape).
    """
    tile_w, tile_h = TILE, TILE * aspect
    rows = _rows(root)
    cols = max(len(r) for r in rows)
    width = cols * tile_w + (cols - 1) * GAP
    row_h = LABEL + tile_h
    height = len(rows) * row_h + (len(rows) - 1) * ROW_GAP
    out = TreeLayout(width=width, height=height, tile_w=tile_w, tile_h=tile_h)
    placed_of: dict[int, Placed] = {}
    for r, row in enumerate(rows):
        span = len(row) * tile_w + (len(row) - 1) * GAP
        x0 = (width - span) / 2
        y = r * (row_h + ROW_GAP)
        placed_row = []
        for i, (node, parent) in enumerate(row):
            p = Placed(node=node, x=x0 + i * (tile_w + GAP), y=y, row=r,
                       parent=placed_of.get(id(parent)) if parent is not None else None)
            placed_of[id(node)] = p
            placed_row.append(p)
        out.rows.append(placed_row)
    for p in out.nodes:
        kids = [placed_of[id(c)] for c in p.node.get("children") or []]
        if not kids:
            continue
        top = max(abs(float(k.node.get("weight") or 0.0)) for k in kids) or 1.0
        for k in kids:
            w = float(k.node.get("weight") or 0.0)
            out.edges.append(Edge(
                parent=p, child=k,
                x1=p.x + tile_w / 2, y1=p.y + row_h,
                x2=k.x + tile_w / 2, y2=k.y,
                weight=w, strength=max(abs(w) / top, 0.05)))
    return out
