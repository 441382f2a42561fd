"""Edges and image-specific hierarchies (DESIGN.md "Edges", "Local visualization paths").

A hierarchy starts at a root unit and goes `depth` levels down. At each level the node
being followed propagates its gradient to the child layer, every channel c there gets the
edge weight w_c = |mean_spatial(h_B[c] * G_B[c])|, the `children` heaviest channels become
child nodes, and one of them is followed: the heaviest, or the one `path` names. A child's
gradient is the followed parent's gradient at the child layer with every other channel
zeroed and the rest scaled by sum|G| / sum|G[c]|; it gives both the child's picture and,
if the child is followed, its own children. All children of a level go down in one
batched backward, which also yields the next level's gradient.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch

from generator.vis.core.backprop import Backprop
from generator.vis.errors import EngineError
from generator.vis.core.models import Layer


def edge_weights(h: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """|mean_spatial(h ⊙ G)| per channel: h (C, ...) and G (N, C, ...) -> (N, C)."""
    prod = h.unsqueeze(0) * grads
    if prod.dim() > 2:
        prod = prod.flatten(2).mean(dim=2)
    return prod.abs()


def keep_channel(grads: torch.Tensor, channels: Sequence[int]) -> torch.Tensor:
    """Row n keeps only channel channels[n], scaled so its sum|.| equals the whole row's.

    A channel with no gradient at all stays zero.
    """
    n = len(channels)
    idx = torch.as_tensor(list(channels), device=grads.device)
    rows = torch.arange(n, device=grads.device)
    total = grads.abs().reshape(n, -1).sum(dim=1)
    kept = grads[rows, idx]
    part = kept.abs().reshape(n, -1).sum(dim=1)
    scale = torch.where(part > 0, total / torch.where(part > 0, part, 1), 0)
    out = torch.zeros_like(grads)
    out[rows, idx] = kept * scale.reshape(n, *([1] * (kept.dim() - 1)))
    return out


@dataclass
class Node:
    """One unit of a hierarchy, with its input gradient (C, H, W)."""

    unit: str
    layer: str
    index: int
    activation: float
    weight: float | None
    path: tuple[str, ...]
    image: torch.Tensor = field(repr=False)
    children: list["Node"] = field(default_factory=list)

    @property
    def path_name(self) -> str:
        return "-".join(self.path)

    def walk(self) -> Iterator["Node"]:
        """This node and all below it, depth first, children in order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def to_dict(self) -> dict:
        """The JSON NODE of `build.py explain --json`."""
        return {
            "unit": self.unit, "layer": self.layer, "index": self.index,
            "activation": self.activation, "weight": self.weight, "path": self.path_name,
            "children": [c.to_dict() for c in self.children],
        }


def choose_children(weights: torch.Tensor, children: int, want: int | None = None) -> list[int]:
    """A node's children: the top `children` channels by edge weight (ties by index), plus
    the path unit `want` when it is not among them, kept in weight order."""
    order = torch.sort(weights, descending=True, stable=True).indices.tolist()
    chosen = order[:children]
    if want is not None and want not in chosen:
        chosen = sorted(chosen + [want], key=order.index)
    return chosen


def tree_start(model, root: str, depth: int, children: int, path: Sequence[str]):
    """Check a tree's arguments: (root layer, root index, path steps, effective depth)."""
    if depth < 0:
        raise EngineError(f"depth must be 0 or more, got {depth}")
    if children < 1:
        raise EngineError(f"children must be 1 or more, got {children}")
    root_layer, root_index = model.parse_unit(root)
    steps = _path_steps(model, root_layer, root, path)
    return root_layer, root_index, steps, max(depth, len(steps))


def hierarchy(bp: Backprop, root: str, depth: int = 2, children: int = 5,
              path: Sequence[str] = ()) -> Node:
    """The tree under unit `root` for the image recorded in `bp`.

    `path` lists units to follow, one per level; each must lie in a layer below its
    parent's. Levels past the end of `path` follow the heaviest child and use the layer
    just below the parent. A path unit that is not among the top `children` is added to
    its level. The tree stops early when there is no lower named layer.
    """
    model = bp.model
    root_layer, root_index, steps, depth = tree_start(model, root, depth, children, path)

    def child_layer(level: int, parent: Layer) -> Layer | None:
        if level <= len(steps):
            return steps[level - 1][0]
        return model.below(parent) if level <= depth else None

    root_name = model.unit_name(root_layer, root_index)
    next_layer = child_layer(1, root_layer)
    seed = bp.seeds(root_layer, [root_index])
    images, grads = _down(bp, seed, root_layer, next_layer)
    top = Node(root_name, root_layer.name, root_index, bp.activation(root_layer, root_index),
               None, (root_name,), images[0])
    followed, grad = top, grads
    for level in range(1, depth + 1):
        layer = next_layer
        if layer is None:
            break
        g = grad[0]
        weights = edge_weights(bp.acts[layer.name], g.unsqueeze(0))[0]
        want = steps[level - 1][1] if level <= len(steps) else None
        chosen = choose_children(weights, children, want)
        follow = chosen.index(want) if want is not None else 0
        states = keep_channel(g.unsqueeze(0).expand(len(chosen), *g.shape), chosen)
        next_layer = child_layer(level + 1, layer)
        images, grads = _down(bp, states, layer, next_layer)
        nodes = []
        for n, c in enumerate(chosen):
            name = model.unit_name(layer, c)
            nodes.append(Node(name, layer.name, c, bp.activation(layer, c),
                              float(weights[c]), followed.path + (name,), images[n]))
        followed.children = nodes
        followed = nodes[follow]
        grad = grads[follow:follow + 1] if grads is not None else None
    return top


def _down(bp: Backprop, grads: torch.Tensor, at: Layer, next_layer: Layer | None):
    """One batched backward: input images, and the gradients at `next_layer` if any."""
    if next_layer is None:
        (images,) = bp.backward(grads, at, [None])
        return images, None
    images, lower = bp.backward(grads, at, [None, next_layer])
    return images, lower


def _path_steps(model, root_layer: Layer, root: str, path: Sequence[str]):
    steps, parent_layer, parent = [], root_layer, root
    for ref in path:
        layer, index = model.parse_unit(ref)
        if model.position(layer) >= model.position(parent_layer):
            below = model.layer_names[:model.position(parent_layer)]
            raise EngineError(
                f"path unit {ref}: layer {layer.name} is not below {parent_layer.name} (its "
                f"parent {parent}); use a layer among {', '.join(below) or 'none'}")
        steps.append((layer, index))
        parent_layer, parent = layer, ref
    return steps
