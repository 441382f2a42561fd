"""A hierarchy explored for a reader: every node's own children, within a tile budget.

`hierarchy()` follows one node per level. A published page cannot ask for more later,
so `explore()` expands every node, level by level, down to `depth + levels`: each node
gets its own top `children` by edge weight, computed from its own local-path gradient,
exactly as `hierarchy(..., path=<that node's path>)` would. All nodes of a level that
share a layer go down in one batched backward, which yields their pictures and the
gradients at the next layer.

The tree contains the static figure: the nodes `hierarchy(bp, root, depth, children,
path)` follows are always expanded, with the same child layers and the same forced path
units. Beyond that, at most `budget` nodes (= tiles) are made: each level is expanded in
descending edge weight while the next node's children still fit. A node left without
children says why in `stops`: "budget", "depth" (past depth + levels) or "bottom" (no
lower named layer).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

import torch

from generator.vis.core.backprop import Backprop
from generator.vis.errors import EngineError, EngineWarning
from generator.vis.core.hierarchy import (Node, choose_children, edge_weights, keep_channel,
                                          tree_start)
from generator.vis.core.models import Layer

STOPS = ("budget", "depth", "bottom")


@dataclass
class Explored:
    """The explored tree (Node.children filled where expanded) and why leaves stop."""

    root: Node
    depth: int                                   # deepest level explored (depth + levels)
    stops: dict[str, str] = field(default_factory=dict)   # path name -> one of STOPS
    followed: set[str] = field(default_factory=set)       # path names the static figure expands

    def static_tree(self) -> Node:
        """The static figure's tree: the followed nodes with their children, no more."""
        def prune(node: Node) -> Node:
            kids = [prune(c) for c in node.children] if node.path_name in self.followed else []
            return Node(node.unit, node.layer, node.index, node.activation, node.weight,
                        node.path, node.image, kids)
        return prune(self.root)

    @property
    def size(self) -> int:
        return sum(1 for _ in self.root.walk())


@dataclass
class _Open:
    """A node waiting to be expanded: where its children go and what it must include."""

    node: Node
    at: Layer
    below: Layer | None
    grad: torch.Tensor | None = None     # its gradient at `below`
    forced: bool = False                 # part of the static figure's followed chain
    want: int | None = None              # a path unit that must be among its children
    state: torch.Tensor | None = None    # its seed gradient at `at` (shapes differ by layer)


def explore(bp: Backprop, root: str, depth: int = 2, children: int = 5,
            path: Sequence[str] = (), levels: int = 1, budget: int = 300) -> Explored:
    """The tree under `root`, every node expanded down to `depth + levels` (see module doc)."""
    model = bp.model
    if levels < 0:
        raise EngineError(f"explore levels must be 0 or more, got {levels}")
    if budget < 1:
        raise EngineError(f"explore budget must be at least 1 tile, got {budget}")
    root_layer, root_index, steps, depth = tree_start(model, root, depth, children, path)
    last = depth + levels
    name = model.unit_name(root_layer, root_index)
    top = Node(name, root_layer.name, root_index, bp.activation(root_layer, root_index),
               None, (name,), None)
    out = Explored(top, last)

    def plan(node: Node, layer: Layer, level: int, forced: bool) -> _Open:
        """Where `node` (at `level`) would put its children, and the unit it must keep."""
        if forced and level < len(steps):
            below, want = steps[level]
        else:
            below, want = model.below(layer), None
        return _Open(node, layer, below if level < last else None, forced=forced, want=want)

    frontier = [plan(top, root_layer, 0, depth > 0)]
    frontier[0].state = bp.seeds(root_layer, [root_index])[0]
    count = 1
    for level in range(last + 1):
        _pictures(bp, frontier)
        if level == last:
            for o in frontier:
                out.stops[o.node.path_name] = "bottom" if model.below(o.at) is None else "depth"
            break
        # the static figure's chain first, then the heaviest edges
        order = sorted(frontier, key=lambda o: (not o.forced, -(o.node.weight or 0.0)))
        nxt = []
        for o in order:
            if o.below is None:
                out.stops[o.node.path_name] = "bottom"
                continue
            chosen, weights = _choose(bp, o, children)
            if not o.forced and count + len(chosen) > budget:
                out.stops[o.node.path_name] = "budget"
                continue
            count += len(chosen)
            follow = chosen.index(o.want) if o.want is not None else 0
            g = o.grad[0]
            kept = keep_channel(g.unsqueeze(0).expand(len(chosen), *g.shape), chosen)
            for n, c in enumerate(chosen):
                unit = model.unit_name(o.below, c)
                child = Node(unit, o.below.name, c, bp.activation(o.below, c),
                             float(weights[c]), o.node.path + (unit,), None)
                o.node.children.append(child)
                nxt.append(plan(child, o.below, level + 1, o.forced and n == follow
                                and level + 1 < depth))
                nxt[-1].state = kept[n]
            if o.forced:
                out.followed.add(o.node.path_name)
            o.grad = None
        if not nxt:
            break
        frontier = nxt
    if "budget" in out.stops.values():
        needed = tiles_needed(model, root_layer, steps, depth, last, children)
        warnings.warn(f"explore={levels} needs {needed} tiles to precompute every node down to "
                      f"level {last}; explore_budget={budget} made {count}, so some clicks "
                      f"show 'not precomputed' (set explore_budget={needed} to cover it)",
                      EngineWarning, stacklevel=2)
    return out


def tiles_needed(model, root_layer: Layer, steps, depth: int, last: int, children: int) -> int:
    """Tiles of the tree with every node expanded down to level `last` (what a budget must
    cover): per level, (layer, forced, count) groups, as `explore` plans them."""
    total, level_nodes = 1, [(root_layer, depth > 0, 1)]
    for level in range(last):
        nxt = []
        for layer, forced, n in level_nodes:
            on_path = forced and level < len(steps)
            below = steps[level][0] if on_path else model.below(layer)
            if below is None:
                continue
            k = min(children + on_path, below.size)   # a path unit may join the top k
            total += n * k
            if forced and level + 1 < depth:
                nxt += [(below, True, 1), (below, False, k - 1)]
            else:
                nxt.append((below, False, n * k))
        level_nodes = [g for g in nxt if g[2] > 0]
    return total


def _pictures(bp: Backprop, frontier: list[_Open]) -> None:
    """Each node's input picture and its gradient at its `below` layer: one batched
    backward per (layer, below) group, which in practice is one or two per level. A path
    that skips layers puts one level's nodes in different layers, so seeds are stacked
    per group, never across the level."""
    groups: dict[tuple[str, str | None], list[int]] = {}
    for i, o in enumerate(frontier):
        groups.setdefault((o.at.name, o.below.name if o.below else None), []).append(i)
    for rows in groups.values():
        at, below = frontier[rows[0]].at, frontier[rows[0]].below
        to = [None] if below is None else [None, below]
        res = bp.backward(torch.stack([frontier[i].state for i in rows]), at, to)
        for j, i in enumerate(rows):
            frontier[i].node.image = res[0][j]
            frontier[i].state = None
            if below is not None:
                frontier[i].grad = res[1][j:j + 1]


def _choose(bp: Backprop, o: _Open, children: int) -> tuple[list[int], torch.Tensor]:
    """The node's children as `hierarchy` picks them: top-k by weight, ties by index,
    plus the path unit it must keep (in weight order)."""
    weights = edge_weights(bp.acts[o.below.name], o.grad)[0]
    return choose_children(weights, children, o.want), weights
