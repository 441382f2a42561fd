"""Per-build engine state: models, input tensors, forward passes and mining indexes that
the figures of one `compute` share. Kinds hold no state; they ask the session."""
from __future__ import annotations

import math
from pathlib import Path

from generator.files import tile_name
from generator.vis.kinds.results import Example, PatchGrid


def percentile_of(params: dict) -> float:
    """The display percentile a request asks for (`norm=percentile:P`, checked by the
    planner into `display`)."""
    return float((params.get("display") or {}).get("percentile", 99.5))


class Tiles:
    """The PNG tiles one figure publishes, named by the hash of their bytes."""

    def __init__(self):
        self.files: dict[str, bytes] = {}

    def add(self, png: bytes) -> str:
        name = tile_name(png)
        self.files[name] = png
        return name


class Session:
    """Caches shared by the requests of one `compute` (a forward state is reused by every
    backward pass on the same model, image and rule)."""

    STATES = 4                      # forward states kept (each holds every layer's maps)

    def __init__(self, device=None, index_dir=None, verbose: bool = False, on_steps=None):
        from generator.vis.kinds.pictures import Pictures

        self.device = device
        self.pictures = Pictures(on_steps)   # optimized pictures, batched per model
        self.index_dir = Path(index_dir) if index_dir is not None else Path(".cache/index")
        self.verbose = verbose
        self.models: dict = {}      # (name, weights, layers) -> Model
        self.inputs: dict = {}      # (model key, image path) -> (C, H, W) tensor
        self.states: dict = {}      # (model key, image path, rule) -> Backprop (small LRU)
        self.datasets: dict = {}    # spec -> Dataset
        self.index_k: dict = {}     # (model key, spec) -> largest K asked for
        self.indexes: dict = {}     # (model key, spec) -> TopK

    @staticmethod
    def model_key(req) -> tuple:
        layers = req.params.get("layers")
        return (req.model, req.weights,
                tuple(sorted(layers.items())) if isinstance(layers, dict) else layers)

    def model(self, req):
        """The request's model, loaded once, and its images decoded once."""
        key = self.model_key(req)
        model = self.models.get(key)
        if model is None:
            from generator.vis.core.models import load_model
            model = self.models[key] = load_model(req.model, req.weights,
                                                  layers=req.params.get("layers"),
                                                  device=self.device)
        for path in req.images:
            if (key, path) not in self.inputs:
                from generator.vis.core.inputs import load_input
                self.inputs[(key, path)] = load_input(path, model)
        return model

    def input(self, req, path: str):
        return self.inputs[(self.model_key(req), path)]

    def state(self, req, path: str, rule: str):
        """The forward pass of `req`'s model on `path`, ready for backward passes."""
        from generator.vis.core.backprop import Backprop

        key = (self.model_key(req), path, rule)
        if key not in self.states:
            if len(self.states) >= self.STATES:
                self.states.pop(next(iter(self.states)))
            self.states[key] = Backprop(self.models[key[0]], self.input(req, path), rule)
        return self.states[key]

    # -- dataset patches -----------------------------------------------------------------
    def check_dataset(self, req, model, spec: str, k: int) -> None:
        """Open the dataset (lists its images; EngineError if unusable) and note the K, so
        the mining pass keeps enough examples for every figure of the build."""
        from generator.vis.data.datasets import check_fits, open_dataset

        if spec not in self.datasets:
            self.datasets[spec] = open_dataset(spec, memo_dir=self.index_dir / "files")
        check_fits(self.datasets[spec], model)
        key = (self.model_key(req), spec)
        self.index_k[key] = max(k, self.index_k.get(key, 0))

    def patch_grid(self, req, model, unit: str, k: int, tiles: Tiles) -> PatchGrid:
        """One unit's top-K dataset patches beside their gradients, as two grid tiles."""
        from generator.vis.data.mining import load_or_mine
        from generator.vis.data.patches import gradient_pixels, image_pixels, unit_patches
        from generator.vis.render import tiles as png

        spec, rule = req.params["dataset"], req.params["rule"]
        key = (self.model_key(req), spec)
        if key not in self.indexes:
            self.indexes[key] = load_or_mine(model, self.datasets[spec], k=self.index_k[key],
                                             layers=None, cache_dir=self.index_dir,
                                             progress=self.verbose)
        layer, index = model.parse_unit(unit)
        grid = unit_patches(model, self.datasets[spec], self.indexes[key], layer.name, index,
                            k=k, rule=rule)
        percentile = percentile_of(req.params)
        images, grads = image_pixels(grid), gradient_pixels(grid, percentile)
        cols = max(1, math.ceil(math.sqrt(max(len(images), 1))))
        rows = max(1, math.ceil(len(images) / cols))
        h, w = (images[0].shape[:2] if images else (1, 1))
        return PatchGrid(
            k=len(images), cols=cols, rows=rows, patch_h=h, patch_w=w,
            dataset=Path(spec).name if "/" in spec else spec,
            image_grid=tiles.add(png.png(png.compose(images, cols, rows))),
            gradient_grid=tiles.add(png.png(png.compose(grads, cols, rows))),
            examples=[Example(source=src, label=lab, activation=float(a))
                      for src, lab, a in zip(grid.sources, grid.labels, grid.activations.tolist())])
