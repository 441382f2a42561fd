"""The unit atlas's engine part (issue 16): per unit, its optimized picture, top-k dataset
patches with their gradients, activation histogram, typical children and top labels.

Work is cut into fixed chunks of `CHUNK` units of one layer (chunk j of a layer is always
its units j*CHUNK ..), and each chunk is computed on its own (one batched optimization,
one grouped edge pass), so a unit's numbers never depend on which other units were asked
for or on how many ranks share the work: under torch.distributed chunks are shared out
by size (`share`) and rank 0 gathers them, byte-identical to one process.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

from generator.files import tile_name
from generator.vis.kinds.atlas_types import (CHUNK, AtlasRequest, AtlasResult, LayerInfo,
                                             Layout, PatchSet, UnitAtlas)

# (phase, done, total, seconds spent in the phase): "mining" counts dataset images,
# "pictures", "patches" and "edges" count units.
Progress = Callable[[str, int, int, float], None]
PHASES = ("mining", "pictures", "patches", "edges")


def layout(model_name: str, weights: str | None, device=None) -> Layout:
    """The model's named layers (units, map, receptive field) and labels."""
    from generator.vis.core.models import load_model
    from generator.vis.data.receptive import layer_fields

    model = load_model(model_name, weights, device=device)
    fields = layer_fields(model)
    infos = []
    for i, l in enumerate(model.layers):
        f = fields[l.name]
        conv = l.kind == "conv"
        infos.append(LayerInfo(
            name=l.name, kind=l.kind, units=l.size,
            map="x".join(map(str, l.shape[-2:])) if conv else "-",
            field="whole input" if f.is_global else f"{f.size[0]}x{f.size[1]}",
            stride=f"{f.jump[0]}x{f.jump[1]}" if not f.is_global else "-",
            logits=i == len(model.layers) - 1 and not l.relu))
    last = model.layers[-1]
    hidden = model.below(last).name if not last.relu and model.below(last) is not None else None
    return Layout(model=model.name, input_shape=list(model.input_shape), layers=infos,
                  labels=list(model.labels), last_hidden=hidden)


def jobs_for(model, units: list[str]) -> list[tuple[int, int]]:
    """The (layer position, chunk) pairs covering `units`, in forward order."""
    out = set()
    for ref in units:
        layer, index = model.parse_unit(ref)
        out.add((model.position(layer), index // CHUNK))
    return sorted(out)


def share(model, jobs: list[tuple[int, int]], rank: int, world: int) -> list[tuple[int, int]]:
    """Rank `rank`'s jobs: largest chunks first, each to the least loaded rank (ties: lower
    rank). Decided from unit counts alone, so every rank computes the same split."""
    load = [0] * world
    out: list[list[tuple[int, int]]] = [[] for _ in range(world)]
    sizes = {j: len(_chunk_units(model.layers[j[0]], j[1])) for j in jobs}
    for job in sorted(jobs, key=lambda j: -sizes[j]):
        r = load.index(min(load))
        out[r].append(job)
        load[r] += sizes[job]
    return sorted(out[rank])


def compute(req: AtlasRequest, units: list[str], index_dir: Path, device=None,
            progress: Progress | None = None) -> AtlasResult:
    """The atlas of `units` (and of the other units of their chunks), see module doc."""
    from generator.vis.core.models import load_model
    from generator.vis.data.datasets import check_fits, open_dataset
    from generator.vis.data.mining import dist_info

    model = load_model(req.model, req.weights, device=device)
    dataset = open_dataset(req.dataset, memo_dir=Path(index_dir) / "files")
    check_fits(dataset, model)
    rank, world = dist_info()
    every = jobs_for(model, units)
    result = AtlasResult([], {}, {})
    # Every rank reads its shard of the dataset for every layer's stats, then its own chunks.
    layers = sorted({model.layers[p].name for p, _ in every}, key=model.position)
    _run_jobs(model, dataset, req, share(model, every, rank, world), result, progress, layers)
    if world > 1:
        result = _gather(model, result)
    return result


def _run_jobs(model, dataset, req, jobs, result: AtlasResult, progress: Progress | None,
              names: list[str]) -> None:
    from generator.vis.data.receptive import layer_fields
    from generator.vis.kinds.atlas_stats import layer_stats

    report = progress or (lambda *a: None)
    t0 = time.perf_counter()
    clock = {"phase": "mining", "start": t0, "last": t0}   # a pass starts where the last ended

    def mined(phase: str, done: int, n: int) -> None:
        now = time.perf_counter()
        if phase != clock["phase"]:
            clock.update(phase=phase, start=clock["last"])
        clock["last"] = now
        report(phase, done, n, now - clock["start"])

    stats = layer_stats(model, dataset, names, mined, k=req.k) if names else {}
    fields = layer_fields(model, names) if names else {}
    result.seconds["stats"] = time.perf_counter() - t0
    total = sum(len(_chunk_units(model.layers[p], c)) for p, c in jobs)
    done = 0
    for p, c in jobs:
        layer, indices = model.layers[p], _chunk_units(model.layers[p], c)

        def finished(phase: str, n=len(indices)) -> None:
            report(phase, done + n, total, result.seconds.get(phase, 0.0))

        found, tiles = _chunk(model, dataset, req, layer, indices, stats[layer.name],
                              fields[layer.name], result.seconds, finished)
        result.units += found
        result.tiles.update(tiles)
        done += len(found)


def _chunk_units(layer, chunk: int) -> list[int]:
    return list(range(chunk * CHUNK, min(layer.size, (chunk + 1) * CHUNK)))


def _timed(seconds: dict, phase: str, t0: float) -> float:
    now = time.perf_counter()
    seconds[phase] = seconds.get(phase, 0.0) + now - t0
    return now


def _chunk(model, dataset, req: AtlasRequest, layer, indices: list[int], stats, field,
           seconds: dict, finished: Callable[[str], None]
           ) -> tuple[list[UnitAtlas], dict[str, bytes]]:
    """One chunk of one layer: pictures in one batch, patches per unit, edges by image."""
    from generator.vis.kinds.atlas_edges import typical_edges

    t = time.perf_counter()
    names = [model.unit_name(layer, i) for i in indices]
    tiles: dict[str, bytes] = {}
    pictures = _pictures(model, req, names, 1, tiles)
    more = req.diversity_of(layer.name)
    diverse = _pictures(model, req, names, more, tiles) if more > 1 else {}
    t = _timed(seconds, "pictures", t)
    finished("pictures")
    tops = {i: stats.top(i, req.k) for i in indices}
    patch_sets = {i: _patches(model, dataset, layer, i, tops[i], field, tiles) for i in indices}
    t = _timed(seconds, "patches", t)
    finished("patches")
    last = model.below(model.layers[-1])
    hidden = not model.layers[-1].relu and last is not None and last.name == layer.name
    children, labels = typical_edges(model, dataset, layer, indices, tops, hidden)
    _timed(seconds, "edges", t)
    finished("edges")
    out = []
    for i, name in zip(indices, names):
        (picture, activation), = pictures[name]
        hist, mean, top = stats.histogram(i)
        ps = patch_sets[i]
        more = [tile for tile, _ in diverse.get(name, [])]
        out.append(UnitAtlas(unit=name, layer=layer.name, index=i, picture=picture,
                             picture_activation=activation, patches=ps,
                             histogram=hist, mean=mean, max=top, children=children.get(i, []),
                             labels=labels.get(i, []), diverse=more,
                             tiles=sorted({picture, ps.image_grid, ps.gradient_grid, *more})))
    return out, tiles


def _pictures(model, req: AtlasRequest, names: list[str], diversity: int,
              tiles: dict) -> dict[str, list[tuple[str, float]]]:
    """unit -> [(tile name, activation)] of its `diversity` pictures, pushed apart when > 1;
    at most CHUNK pictures per optimize batch (fixed sub-batches: results never depend on
    which units were asked for)."""
    from generator.vis.core.featurevis import optimize
    from generator.vis.render.tiles import picture_png

    out: dict[str, list[tuple[str, float]]] = {}
    per = max(1, CHUNK // diversity)
    for start in range(0, len(names), per):
        found = optimize(model, names[start:start + per], steps=req.steps, lr=req.lr,
                         seed=req.seed, param=req.param, diversity=diversity,
                         transforms="standard" if req.transforms == "on" else "none",
                         objective=req.objective)
        for fv in found:
            png = picture_png(fv.image)
            tiles[tile_name(png)] = png
            out.setdefault(fv.unit, []).append((tile_name(png), round(fv.activation, 6)))
    return out


def _patches(model, dataset, layer, index: int, top, field, tiles: dict) -> PatchSet:
    """The unit's top-k patches beside their guided gradients, as two grid PNGs."""
    from generator.vis.data.patches import gradient_pixels, image_pixels, unit_patches
    from generator.vis.render import tiles as png

    k = max(1, len(top))
    grid = unit_patches(model, dataset, _Top(top, dataset.digest), layer.name, index, k=k,
                        rule="guided", field=field)
    images, grads = image_pixels(grid), gradient_pixels(grid)
    cols = max(1, math.ceil(math.sqrt(max(len(images), 1))))
    rows = max(1, math.ceil(len(images) / cols))
    names = []
    for pixels in (images, grads):
        data = png.png(png.compose(pixels, cols, rows))
        tiles[tile_name(data)] = data
        names.append(tile_name(data))
    return PatchSet(image_grid=names[0], gradient_grid=names[1], cols=cols, rows=rows,
                    sources=[s or "" for s in grid.sources], labels=list(grid.labels),
                    activations=[round(float(a), 6) for a in grid.activations.tolist()])


class _Top:
    """One unit's examples in the shape `unit_patches` reads a mined index."""

    def __init__(self, top: list, digest: str):
        self.top, self.meta = top, {"dataset_digest": digest}

    def lookup(self, layer: str, unit: int, k: int | None = None) -> list:
        return self.top[:k]

    def source(self, image_id: int) -> None:
        return None

    label = source


def _gather(model, mine: AtlasResult) -> AtlasResult:
    """Every rank's units and tiles on rank 0, in (layer, index) order; others get theirs."""
    import torch.distributed as dist

    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, ([u.to_json() for u in mine.units], mine.tiles, mine.seconds))
    if dist.get_rank() != 0:
        return mine
    units, tiles = [], {}
    for rows, t, _ in parts:
        units += [UnitAtlas.from_json(r) for r in rows]
        tiles.update(t)
    units.sort(key=lambda u: (model.position(u.layer), u.index))
    return AtlasResult(units, tiles, mine.seconds)
