"""The atlas's results, cached per unit by content: weights and model code, dataset
content, unit, settings, engine version. A build whose units are all cached reads JSON
and imports no torch; a missing unit is computed through `vis.api.atlas_compute`.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from generator.files import json_digest, write_atomic
from generator.vis import api

from .. import cachecheck
from ..errors import BuildError
from ..figures.digests import Digests
from .config import AtlasConfig


@dataclass
class Atlas:
    """One model's atlas as the pages need it: layout, chosen layers, unit results."""

    config: AtlasConfig
    layout: api.Layout
    layers: list                                   # LayerInfo of the chosen layers
    units: dict[str, api.UnitAtlas] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)       # unit -> content key
    tile_dir: Path = Path()
    computed: int = 0
    seconds: float = 0.0
    phase_seconds: dict = field(default_factory=dict)   # engine time per phase, when computed

    @property
    def base(self) -> str:
        return f"atlas/{self.config.name}/"

    def unit_path(self, unit: str) -> str:
        layer, _, index = unit.rpartition("_")
        return f"{self.base}{layer}/{index}/"

    def digest(self) -> str:
        """Changes when any unit's result or the chosen layers change (page keys)."""
        return json_digest([self.config.name, [l.name for l in self.layers], sorted(self.keys.items())])


class AtlasStore:
    """Reads cached unit results and computes the missing ones."""

    def __init__(self, site, atlas: AtlasConfig, quiet: bool = False, device=None,
                 summary: bool = True):
        """`quiet`: no progress bars; `summary`: one line on stderr after loading."""
        self.site, self.atlas, self.quiet, self.device = site, atlas, quiet, device
        self.summary = summary and not quiet
        self.dir = Path(site.cache) / "atlas"
        self.digests = Digests(self.dir / "digests.json")
        self._resolved = None

    def _where(self) -> str:
        return str(self.site.config_path or "site.toml")

    def _specs(self):
        """The model and dataset as the cache sees them, resolved once per store: a folder
        dataset's stamp stats every image, which load, request and watch_paths all need."""
        if self._resolved is None:
            base = [self.site.site_dir]
            try:
                self._resolved = (api.model_spec(self.atlas.model, self.atlas.weights or None, base),
                                  api.dataset_spec(self.atlas.dataset, base))
            except api.RequestError as e:
                raise BuildError(f"{self._where()}: [atlas] {e.message}") from None
        return self._resolved

    def watch_paths(self) -> list[Path]:
        """The model's own files and the dataset's folder: `serve` rebuilds when they change,
        wherever they live (a model or dataset outside the site folder included)."""
        model, data = self._specs()
        paths = [] if model.builtin else [Path(f) for f in model.files]
        root = Path(data.spec.removeprefix("imagefolder:"))
        return paths + ([root] if root.is_absolute() and root.is_dir() else [])

    def request(self) -> api.AtlasRequest:
        model, data = self._specs()
        a = self.atlas
        return api.AtlasRequest(model.name, model.weights, data.spec, k=a.k, steps=a.steps,
                                seed=a.seed, objective=a.objective, lr=a.lr, param=a.param,
                                transforms=a.transforms, diversity=a.diversity,
                                diversity_layers=a.diversity_layers)

    def load(self, compute: bool = True) -> Atlas:
        """Every chosen unit's result, computing what the cache lacks (unless `compute`)."""
        t0 = time.perf_counter()
        model, data = self._specs()
        model_key = [api.engine_version(), model.identity, [self.digests(f) for f in model.files]]
        layout = self._layout(model, json_digest(model_key))
        layers = self._chosen(layout)
        req = self.request()
        base = json_digest([model_key, [self.digests(f) for f in data.files], data.stamp,
                            req.settings()])
        self.digests.save()
        atlas = Atlas(self.atlas, layout, layers, tile_dir=self.dir / "tiles")
        missing = []
        for layer in layers:
            for i in range(layer.units):
                unit = f"{layer.name}_{i}"
                more = req.diversity_of(layer.name)     # only units that get them change
                key = atlas.keys[unit] = json_digest([base, unit] + ([more] if more > 1 else []))
                found = self._read(key)
                if found is None:
                    missing.append(unit)
                else:
                    atlas.units[unit] = found
        if missing and compute:
            self._compute(atlas, missing)
        atlas.seconds = time.perf_counter() - t0
        if self.summary:
            print(f"atlas: {len(atlas.units)} units, {atlas.computed} computed in "
                  f"{atlas.seconds:.1f}s", file=sys.stderr)
        return atlas

    def _layout(self, model, key: str) -> api.Layout:
        path = self.dir / "layout" / f"{key}.json"
        try:
            return api.Layout.from_json(cachecheck.read_json(path, "atlas layout"))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        try:
            layout = api.atlas_layout(model.name, model.weights)
        except api.RequestError as e:
            raise BuildError(f"{self._where()}: [atlas] {e.message}") from None
        cachecheck.write_json(path, layout.to_json())
        return layout

    def _chosen(self, layout: api.Layout) -> list:
        by_name = {l.name: l for l in layout.layers}
        names = self.atlas.layers or tuple(by_name)
        for n in names:
            if n not in by_name:
                raise BuildError(f"{self._where()}: 'atlas.layers' names {n!r}, not a layer of "
                                 f"{self.atlas.model}; its layers are {', '.join(by_name)}")
        for n in self.atlas.diversity_layers:
            if n not in names:
                raise BuildError(f"{self._where()}: 'atlas.diversity_layers' names {n!r}, not a "
                                 f"layer of the atlas; its layers are {', '.join(names)}")
        return [l for l in layout.layers if l.name in names]

    def _read(self, key: str) -> api.UnitAtlas | None:
        path = self.dir / "units" / f"{key}.json"
        try:
            unit = api.UnitAtlas.from_json(cachecheck.read_json(path, "atlas unit"))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not all((self.dir / "tiles" / t).is_file() for t in unit.tiles):
            return None
        return unit

    def _compute(self, atlas: Atlas, missing: list[str]) -> None:
        """Compute `missing` (whole chunks); rank 0 (or the only process) writes them."""
        from .progress import PhaseBar

        with PhaseBar(self.quiet or int(os.environ.get("RANK", "0")) != 0) as bar:
            try:
                result = api.atlas_compute(self.request(), missing, self.dir.parent / "index",
                                           device=self.device, progress=bar.update)
            except api.RequestError as e:
                raise BuildError(f"{self._where()}: [atlas] {e.message}") from None
        if int(os.environ.get("RANK", "0")) != 0:
            return
        for name, png in result.tiles.items():
            path = self.dir / "tiles" / name
            if not path.is_file():
                write_atomic(path, png)
        for unit in result.units:
            key = atlas.keys.get(unit.unit)
            if key is None:
                continue
            cachecheck.write_json(self.dir / "units" / f"{key}.json", unit.to_json())
            atlas.units[unit.unit] = unit
            atlas.computed += 1
        atlas.phase_seconds = result.seconds
