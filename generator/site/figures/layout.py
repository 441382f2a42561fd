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
BAND_GAP = 6.0    # space between a tile and the patch grids under it
PAIR_GAP = 4.0    # optimize=1: space between a unit's image and its optimized picture


@dataclass
class Placed:
    node: dict
    x: float          # left edge of the node's column
    y: float          # top edge of the label band
    row: int
    parent: "Placed | None" = None
    tile_x: float = 0.0   # left edge of the tile (centred in the column)


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
    col_w: float = TILE    # a node's column: the tile, or the patch band when wider
    row_h: float = 0.0     # label + tile (+ gap + patch band)
    band_h: float = 0.0
    rows: list[list[Placed]] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    @property
    def nodes(self) -> list[Placed]:
        return [p for row in self.rows for p in row]


def _rows(root) -> list[list[tuple]]:
    """Breadth-first rows of (node, parent)."""
    rows, frontier = [], [(root, None)]
    while frontier:
        rows.append(frontier)
        frontier = [(c, n) for n, _ in frontier for c in n.children]
    return rows


def tree_layout(root, aspect: float = 1.0, band_w: float = 0.0,
                band_h: float = 0.0, pair: bool = False) -> TreeLayout:
    """Place a tree (nodes with `.children` and `.weight`, e.g. the engine's `TreeNode`):
    one centred row per depth, lines from each parent to its children.

    `aspect` is tile height / width (the model input's shape); `band_w` x `band_h` is
    the size of the patch grids shown under every tile (0: none); `pair` puts a second
    tile (the optimized picture) beside each one, the line meeting the pair's middle. Lines leave a parent
    at the bottom of its block and enter a child at the top of its label.
    """
    tile_w, tile_h = (2 * TILE + PAIR_GAP if pair else TILE), TILE * aspect
    rows = _rows(root)
    cols = max(len(r) for r in rows)
    col_w = max(tile_w, band_w)
    row_h = LABEL + tile_h + (BAND_GAP + band_h if band_h else 0.0)
    width = cols * col_w + (cols - 1) * GAP
    height = len(rows) * row_h + (len(rows) - 1) * ROW_GAP
    out = TreeLayout(width=width, height=height, tile_w=tile_w, tile_h=tile_h, col_w=col_w,
                     row_h=row_h, band_h=band_h)
    placed_of: dict[int, Placed] = {}
    for r, row in enumerate(rows):
        span = len(row) * col_w + (len(row) - 1) * GAP
        x0 = (width - span) / 2
        y = r * (row_h + ROW_GAP)
        placed_row = []
        for i, (node, parent) in enumerate(row):
            x = x0 + i * (col_w + GAP)
            p = Placed(node=node, x=x, y=y, row=r, tile_x=x + (col_w - tile_w) / 2,
                       parent=placed_of.get(id(parent)) if parent is not None else None)
            placed_of[id(node)] = p
            placed_row.append(p)
        out.rows.append(placed_row)
    for p in out.nodes:
        kids = [placed_of[id(c)] for c in p.node.children]
        if not kids:
            continue
        top = max(abs(float(k.node.weight or 0.0)) for k in kids) or 1.0
        for k in kids:
            w = float(k.node.weight or 0.0)
            out.edges.append(Edge(
                parent=p, child=k,
                x1=p.tile_x + tile_w / 2, y1=p.y + row_h,
                x2=k.tile_x + tile_w / 2, y2=k.y,
                weight=w, strength=max(abs(w) / top, 0.05)))
    return out
