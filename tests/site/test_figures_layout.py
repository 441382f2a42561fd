"""Hierarchy layout: rows by depth, lines from parent bottom to child top, no overlaps."""
from types import SimpleNamespace

from generator.site.figures.layout import LABEL, tree_layout


def _tree():
    leaf = lambda u, w, kids=(): SimpleNamespace(unit=u, weight=w, children=list(kids))  # noqa: E731
    level2 = [leaf("conv4_1", 0.5), leaf("conv4_2", 0.25)]
    level1 = [leaf("conv5_9", 2.0, level2), leaf("conv5_3", 1.0), leaf("conv5_4", 0.5)]
    return SimpleNamespace(unit="fc6_1", weight=None, children=level1)


def test_rows_and_edges():
    lay = tree_layout(_tree(), aspect=1.0)
    assert [[p.node.unit for p in r] for r in lay.rows] == [
        ["fc6_1"], ["conv5_9", "conv5_3", "conv5_4"], ["conv4_1", "conv4_2"]]
    assert len(lay.edges) == 5
    by_child = {e.child.node.unit: e for e in lay.edges}
    e = by_child["conv4_2"]
    assert e.parent.node.unit == "conv5_9"
    # line leaves the parent's tile at its bottom centre and enters the child's label top
    assert e.x1 == e.parent.x + lay.tile_w / 2 and e.y1 == e.parent.y + LABEL + lay.tile_h
    assert e.x2 == e.child.x + lay.tile_w / 2 and e.y2 == e.child.y
    assert by_child["conv5_9"].strength == 1.0 and by_child["conv5_4"].strength == 0.25


def test_tiles_inside_canvas_and_disjoint():
    lay = tree_layout(_tree(), aspect=0.5)
    boxes = [(p.x, p.y, p.x + lay.tile_w, p.y + LABEL + lay.tile_h) for p in lay.nodes]
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 and x1 <= lay.width and 0 <= y0 and y1 <= lay.height
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
