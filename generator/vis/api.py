"""The one narrow API between the site and the engine: figure requests in, results out.

Importing this module does not import torch: the site uses `model_spec` and
`engine_version` to key its cache on every build, and only calls `compute` (which
imports the engine) when some figure is missing. Results are plain JSON-able data plus
PNG tiles named by the hash of their bytes.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

# Bump when the meaning of a figure's data changes without any engine source changing.
API_VERSION = "1"
ENGINE_DIR = Path(__file__).resolve().parent
DEFAULT_WEIGHTS = ENGINE_DIR / "default" / "assets" / "fashion_alexnet.safetensors"
BUILTIN_MODELS = ("default", "alexnet", "vgg16", "resnet18")
KINDS = ("unit", "units", "hierarchy", "predictions", "featuremaps", "maxacts", "patches")
# Tiles an explorable hierarchy may precompute when `explore_budget=` is not given.
# Measured: a tile of the default model (1x64x64) is ~2 kB as PNG, so 300 tiles plus the
# ~80 kB JSON stay near 0.6 MB; an ImageNet-sized tile (3x224x224) is ~115 kB, so for
# such inputs the default shrinks to keep a figure's explorer near 4 MB.
EXPLORE_BUDGET = 300
EXPLORE_BYTES = 4_000_000


def default_explore_budget(input_shape) -> int:
    """The tile budget for a model's input shape (C, H, W), see EXPLORE_BUDGET."""
    c, h, w = input_shape
    return max(32, min(EXPLORE_BUDGET, EXPLORE_BYTES // max(c * h * w, 1)))


class RequestError(Exception):
    """A request that cannot be computed; `ref` says which (the caller's own reference)."""

    def __init__(self, ref, message: str):
        super().__init__(message)
        self.ref, self.message = ref, message


@dataclass(frozen=True)
class ModelSpec:
    """A model as the cache sees it: its name, weights and the files whose bytes define it."""

    name: str                      # registry name or `/abs/path/file.py:factory`
    weights: str | None            # absolute path, `imagenet`, or None
    files: tuple[Path, ...]        # weights file, model code: hashed into figure keys
    identity: str                  # what else identifies it (name, weights kind, version)
    builtin: bool                  # ships with the engine (its files live in the package)


@dataclass
class FigureRequest:
    """One figure to compute. `params` are already normalized (see the planner)."""

    kind: str
    model: str
    weights: str | None
    images: list[str]
    params: dict
    ref: object = None             # echoed in RequestError so the caller can place it


@dataclass
class FigureResult:
    """A computed figure: JSON-able `data` referring to `tiles` (name -> PNG bytes)."""

    data: dict
    tiles: dict[str, bytes] = field(default_factory=dict)


def tile_name(png: bytes) -> str:
    """A tile's name: the hash of its bytes, so equal tiles share one file."""
    return hashlib.sha256(png).hexdigest()[:24] + ".png"


# Engine code that cannot change a figure: retraining the default model changes its
# weights file (hashed into every key), not the meaning of the code that reads it.
NOT_FIGURE_CODE = ("default/train.py",)


@lru_cache(maxsize=1)
def engine_version() -> str:
    """API version plus a hash of every engine source below `generator/vis/` (recursively),
    so moving code into a subfolder cannot silently stop figure invalidation."""
    from generator.files import sources_digest

    return f"{API_VERSION}-{sources_digest(ENGINE_DIR, True, NOT_FIGURE_CODE)[:16]}"


def _find(name: str, base_dirs, what: str) -> Path:
    raw = Path(name).expanduser()
    for cand in ([raw] if raw.is_absolute() else [Path(b) / raw for b in base_dirs] or [raw]):
        if cand.is_file():
            return cand.resolve()
    raise RequestError(None, f"{what} {name!r} not found")


def model_spec(name: str, weights: str | None = None, base_dirs=()) -> ModelSpec:
    """Resolve a model name and weights to a `ModelSpec`, without importing torch.

    `name` is a registry name (`default`, `alexnet`, ...) or `file.py:factory`;
    `weights` is a file (state_dict or .safetensors), `imagenet`, or None.
    """
    name = str(name)
    files: list[Path] = []
    builtin = True
    if ":" in name and name.split(":", 1)[0].endswith(".py"):
        path, factory = name.split(":", 1)
        code = _find(path, base_dirs, "model file")
        files.append(code)
        name, builtin = f"{code}:{factory}", False
    elif name not in BUILTIN_MODELS:
        raise RequestError(None, f"unknown model {name!r}; use one of {', '.join(BUILTIN_MODELS)} "
                                 "or path/to/file.py:factory")
    if weights in (None, "") and name == "default":
        files.append(DEFAULT_WEIGHTS)
        weights = None
    elif weights == "imagenet":
        # The cached download, when there is one, is part of the identity (torch-free
        # lookup of torch.hub's checkpoint folder).
        cached = _hub_checkpoint(name)
        if cached is not None:
            files.append(cached)
    elif weights not in (None, ""):
        w = _find(str(weights), base_dirs, "weights file")
        files.append(w)
        weights, builtin = str(w), False
    # Where the files live is not part of the identity (their bytes are): a site that
    # moves keeps its cache.
    arch = f"file.py:{name.rsplit(':', 1)[1]}" if ".py:" in name else name
    kind = "imagenet" if weights == "imagenet" else "file" if weights else "builtin"
    identity = f"{arch}|weights={kind}"
    return ModelSpec(name=name, weights=weights, files=tuple(files), identity=identity,
                     builtin=builtin)


IMAGENET_FILES = {"alexnet": "alexnet-owt-7be5be79.pth", "vgg16": "vgg16-397923af.pth",
                  "resnet18": "resnet18-f37072fd.pth"}


def _hub_checkpoint(name: str) -> Path | None:
    """torchvision's cached ImageNet weights for `name`, found as torch.hub would find
    them ($TORCH_HOME, else $XDG_CACHE_HOME/torch, else ~/.cache/torch), or None."""
    if name not in IMAGENET_FILES:
        return None
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch")
    path = Path(home) / "hub" / "checkpoints" / IMAGENET_FILES[name]
    return path if path.is_file() else None


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset to mine for patch grids, as the cache sees it (torch-free)."""

    spec: str                      # what `generator.vis.data.datasets.open_dataset` takes
    files: tuple[Path, ...]        # files whose bytes define it (shipped arrays)
    stamp: str                     # names, sizes and times of a folder's images


SAMPLE_PATH = ENGINE_DIR / "default" / "assets" / "fashion_sample.npz"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def dataset_spec(spec: str, base_dirs=()) -> DatasetSpec:
    """Resolve a dataset spec (`fashion-sample`, `fashion-mnist:test|train`,
    `imagefolder:PATH`, `PATH`) for keying, without reading the images."""
    spec = str(spec).strip()
    if spec == "fashion-sample":
        return DatasetSpec(spec, (SAMPLE_PATH,), "")
    if spec.startswith("fashion-mnist:"):
        files = tuple(sorted(FASHION_DIR.glob("*.gz")))
        return DatasetSpec(spec, (), _stamp(FASHION_DIR, files))
    prefix, path = ("imagefolder:", spec[12:]) if spec.startswith("imagefolder:") else \
        ("", spec[7:] if spec.startswith("folder:") else spec)
    raw = Path(path).expanduser()
    for cand in ([raw] if raw.is_absolute() else [Path(b) / raw for b in base_dirs] or [raw]):
        if cand.is_dir():
            root = cand.resolve()
            files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            return DatasetSpec(f"{prefix}{root}", (), _stamp(root, files))
    raise RequestError(None, f"dataset {spec!r} not found; use fashion-sample, "
                             "fashion-mnist:test, imagefolder:PATH or a folder of images")


def _stamp(root: Path, files) -> str:
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def compute(requests: list[FigureRequest], device=None,
            progress: Callable[[int], None] | None = None,
            on_result: Callable[[int, FigureResult], None] | None = None,
            on_warning: Callable[[object, str], None] | None = None,
            index_dir: Path | None = None, verbose: bool = False) -> list[FigureResult]:
    """Compute figures; each (model, image, rule) is forwarded once.

    Every request is checked first (models load, images decode, units and layers exist),
    so a bad request raises `RequestError(ref, message)` before anything is computed; an
    engine error while computing is reported the same way. `progress(n)` is called as
    figures complete; `on_result(i, result)` receives each result as soon as it exists,
    so the caller can cache it even if a later one fails; `on_warning(ref, message)`
    receives the engine's warnings (e.g. a model with random weights). Patch grids mine
    their dataset once per (model, dataset) into `index_dir` (reused when cached).
    """
    import warnings

    from generator.vis.errors import EngineError, EngineWarning

    session = _Session(device, index_dir, verbose)
    results: list[FigureResult | None] = [None] * len(requests)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EngineWarning)
        checked = []
        for r in requests:
            seen = len(caught)
            checked.append(session.check(r))
            for w in caught[seen:]:
                if on_warning is not None and issubclass(w.category, EngineWarning):
                    on_warning(r.ref, str(w.message))
        for i in sorted(range(len(requests)), key=lambda i: checked[i]["group"]):
            try:
                results[i] = session.run(checked[i])
            except EngineError as e:
                raise RequestError(requests[i].ref, str(e)) from None
            if on_result is not None:
                on_result(i, results[i])
            if progress is not None:
                progress(1)
    return results


# ------------------------------------------------------------------ computing (torch)

class _Session:
    """Models, input tensors and forward states shared by the requests of one `compute`."""

    def __init__(self, device=None, index_dir=None, verbose: bool = False):
        self.device = device
        self.index_dir = Path(index_dir) if index_dir is not None else Path(".cache/index")
        self.verbose = verbose
        self.datasets: dict = {}    # spec -> Dataset
        self.index_k: dict = {}     # (model key, spec) -> largest K asked for
        self.indexes: dict = {}     # (model key, spec) -> TopK
        self.models: dict = {}      # (name, weights, layers) -> Model
        self.inputs: dict = {}      # (model key, image path) -> (C, H, W) tensor
        self.states: dict = {}      # (model key, image path, rule) -> Backprop (small LRU)

    # -- checking: everything that can fail because of the author's input --------------
    def check(self, req: FigureRequest) -> dict:
        from generator.vis.errors import EngineError

        try:
            return self._check(req)
        except EngineError as e:
            raise RequestError(req.ref, str(e)) from None

    def _check(self, req: FigureRequest) -> dict:
        from generator.vis.core.rules import check_rule

        if req.kind not in KINDS:
            raise RequestError(req.ref, f"unknown figure kind {req.kind!r}; valid: {', '.join(KINDS)}")
        mkey = (req.model, req.weights, _frozen(req.params.get("layers")))
        model = self.models.get(mkey)
        if model is None:
            from generator.vis.core.models import load_model
            model = self.models[mkey] = load_model(
                req.model, req.weights, layers=req.params.get("layers"), device=self.device)
        for path in req.images:
            if (mkey, path) not in self.inputs:
                self.inputs[(mkey, path)] = _load_input(model, path)
        p = req.params
        if "rule" in p:
            check_rule(p["rule"])
        if req.kind in ("unit", "units"):
            for u in p["units"]:
                model.parse_unit(u)
        elif req.kind == "hierarchy":
            if p.get("explore") and (int(p["explore"]) < 0
                                     or int(p.get("explore_budget") or 1) < 1):
                raise RequestError(req.ref, "explore must be 0 or more levels and "
                                   "explore_budget at least 1 tile")
            parent_layer, parent = model.parse_unit(p["root"])[0], p["root"]
            for ref in p.get("path") or ():
                layer, _ = model.parse_unit(ref)
                if model.position(layer) >= model.position(parent_layer):
                    below = model.layer_names[:model.position(parent_layer)]
                    raise RequestError(req.ref, f"path unit {ref}: layer {layer.name} is not "
                                       f"below {parent_layer.name} (its parent {parent}); use a "
                                       f"layer among {', '.join(below) or 'none'}")
                parent_layer, parent = layer, ref
        elif req.kind == "featuremaps":
            layer = model.layer(p["layer"])
            if layer.kind != "conv":
                convs = [l.name for l in model.layers if l.kind == "conv"]
                raise RequestError(req.ref, f"featuremaps needs a convolutional layer; "
                                   f"{layer.name} is fully connected (use one of "
                                   f"{', '.join(convs) or 'none'})")
        elif req.kind in ("maxacts", "patches"):
            model.parse_unit(p["unit"])
        if p.get("dataset") and (req.kind == "patches" or p.get("patches")):
            self._check_dataset(mkey, model, p["dataset"], int(p.get("k") if req.kind == "patches"
                                                               else p["patches"]))
        if "display" in p:
            try:
                display_params(p["display"])
            except RequestError as e:
                raise RequestError(req.ref, e.message) from None
        return {"req": req, "model": model, "mkey": mkey,
                "group": (repr(mkey), req.images[0] if req.images else "", p.get("rule", ""))}

    def _check_dataset(self, mkey, model, spec: str, k: int) -> None:
        """Open the dataset (lists its images; EngineError if unusable) and note the K."""
        from generator.vis.data.datasets import check_fits, open_dataset

        if spec not in self.datasets:
            self.datasets[spec] = open_dataset(spec, memo_dir=self.index_dir / "files")
        check_fits(self.datasets[spec], model)
        self.index_k[(mkey, spec)] = max(k, self.index_k.get((mkey, spec), 0))

    def _patch_grid(self, mkey, model, spec: str, unit: str, k: int, rule: str, display: dict,
                    add) -> dict:
        """One unit's patch grid: image patches and gradient patches as two grid tiles."""
        from generator.vis.data.mining import load_or_mine
        from generator.vis.data.patches import gradient_pixels, image_pixels, unit_patches

        if (mkey, spec) not in self.indexes:
            self.indexes[(mkey, spec)] = load_or_mine(
                model, self.datasets[spec], k=self.index_k[(mkey, spec)], layers=None,
                cache_dir=self.index_dir, progress=self.verbose)
        layer, index = model.parse_unit(unit)
        grid = unit_patches(model, self.datasets[spec], self.indexes[(mkey, spec)],
                            layer.name, index, k=k, rule=rule)
        percentile = display_params(display)["percentile"]
        images, grads = image_pixels(grid), gradient_pixels(grid, percentile)
        cols = max(1, math.ceil(math.sqrt(max(len(images), 1))))
        rows = max(1, math.ceil(len(images) / cols))
        h, w = (images[0].shape[:2] if images else (1, 1))
        return {"k": len(images), "cols": cols, "rows": rows, "patch_h": h, "patch_w": w,
                "dataset": Path(spec).name if "/" in spec else spec,
                "image_grid": add(_png(_compose(images, cols, rows))),
                "gradient_grid": add(_png(_compose(grads, cols, rows))),
                "examples": [{"source": src, "label": lab, "activation": float(a)}
                             for src, lab, a in zip(grid.sources, grid.labels,
                                                    grid.activations.tolist())]}

    # -- running ------------------------------------------------------------------------
    def _state(self, mkey, model, path: str, rule: str):
        from generator.vis.core.backprop import Backprop

        key = (mkey, path, rule)
        if key not in self.states:
            if len(self.states) >= 4:
                self.states.pop(next(iter(self.states)))
            self.states[key] = Backprop(model, self.inputs[(mkey, path)], rule)
        return self.states[key]

    def run(self, checked: dict) -> FigureResult:
        req, model, mkey = checked["req"], checked["model"], checked["mkey"]
        p = req.params
        tiles: dict[str, bytes] = {}
        display = p.get("display") or {}

        def add(png: bytes) -> str:
            name = tile_name(png)
            tiles[name] = png
            return name

        c, h, w = model.input_shape
        data: dict = {"model": _model_label(req.model), "tile_w": w, "tile_h": h,
                      "image_name": Path(req.images[0]).name if req.images else ""}
        if req.kind in ("unit", "units"):
            bp = self._state(mkey, model, req.images[0], p["rule"])
            units = [model.parse_unit(u) for u in p["units"]]
            grads = bp.unit_images(units)
            pngs = _gradient_pngs(grads, display)
            data["rule"] = p["rule"]
            data["units"] = [
                {"unit": model.unit_name(layer, i), "layer": layer.name, "index": i,
                 "activation": bp.activation(layer, i), "tile": add(png)}
                for (layer, i), png in zip(units, pngs)]
        elif req.kind == "hierarchy":
            from generator.vis.core.hierarchy import hierarchy

            bp = self._state(mkey, model, req.images[0], p["rule"])
            explored = None
            if p.get("explore"):
                from generator.vis.core.explore import explore

                budget = p.get("explore_budget") or default_explore_budget(model.input_shape)
                explored = explore(bp, p["root"], depth=p["depth"], children=p["children"],
                                   path=p.get("path") or (), levels=p["explore"], budget=budget)
                tree = explored.static_tree()
                nodes = list(explored.root.walk())
            else:
                tree = hierarchy(bp, p["root"], depth=p["depth"], children=p["children"],
                                 path=p.get("path") or ())
                nodes = list(tree.walk())
            import torch
            pngs = _gradient_pngs(torch.stack([n.image for n in nodes]), display)
            names = {n.path_name: add(png) for n, png in zip(nodes, pngs)}
            data["rule"] = p["rule"]
            data["tree"] = _tree_dict(tree, names)
            if explored is not None:
                data["explore"] = {
                    "levels": p["explore"], "budget": budget,
                    "children": p["children"], "depth": explored.depth, "size": len(nodes),
                    "tree": _tree_dict(explored.root, names, explored.stops)}
        elif req.kind == "predictions":
            from generator.vis.core.probes import top_predictions

            bp = self._state(mkey, model, req.images[0], "guided")
            data["predictions"] = top_predictions(bp.logits, model.labels, p["k"])
            data["input_tile"] = add(_input_png(self.inputs[(mkey, req.images[0])]))
        elif req.kind == "featuremaps":
            from generator.vis.core.probes import feature_maps

            bp = self._state(mkey, model, req.images[0], "guided")
            layer = model.layer(p["layer"])
            acts = feature_maps(bp, layer.name)[: p.get("max", 64)]
            data["layer"] = layer.name
            data["map_h"], data["map_w"] = int(acts.shape[-2]), int(acts.shape[-1])
            data["maps"] = [{"unit": model.unit_name(layer, i), "index": i,
                             "max": float(a.max()), "tile": add(png)}
                            for i, (a, png) in enumerate(zip(acts, _featuremap_pngs(acts)))]
        elif req.kind == "maxacts":
            layer, index = model.parse_unit(p["unit"])
            grads, items = [], []
            for path in req.images:
                bp = self._state(mkey, model, path, p["rule"])
                grads.append(bp.unit_images([(layer, index)])[0])
                items.append({"image_name": Path(path).name,
                              "activation": bp.activation(layer, index),
                              "input_tile": add(_input_png(self.inputs[(mkey, path)]))})
            import torch
            for item, png in zip(items, _gradient_pngs(torch.stack(grads), display)):
                item["tile"] = add(png)
            data.update(rule=p["rule"], unit=model.unit_name(layer, index), items=items)
        elif req.kind == "patches":
            layer, index = model.parse_unit(p["unit"])
            data.update(unit=model.unit_name(layer, index), layer=layer.name, index=index,
                        rule=p["rule"], grid=self._patch_grid(
                            mkey, model, p["dataset"], p["unit"], p["k"], p["rule"], display, add))
        if p.get("patches") and req.kind in ("unit", "units", "hierarchy"):
            nodes = data["units"] if req.kind != "hierarchy" else _walk(data["tree"])
            for n in nodes:
                n["patches"] = self._patch_grid(mkey, model, p["dataset"], n["unit"],
                                                p["patches"], p["rule"], display, add)
        data["tiles"] = sorted(tiles)
        return FigureResult(data=data, tiles=tiles)


def _frozen(value):
    return tuple(sorted(value.items())) if isinstance(value, dict) else value


def _model_label(name: str) -> str:
    """A model's name as a caption shows it (a user model by its file name)."""
    return Path(name.rsplit(":", 1)[0]).name if ".py:" in name else name


def _walk(node: dict):
    yield node
    for c in node["children"]:
        yield from _walk(c)


def _compose(patches, cols: int, rows: int, gap: int = 2):
    """Equal-sized patches (h, w[, 3]) as one grid image, best first, row by row, on light
    separators (dark ones vanish against dark backgrounds such as Fashion-MNIST's)."""
    import numpy as np
    from PIL import Image

    if not patches:
        return Image.new("L", (1, 1), 128)
    h, w = patches[0].shape[:2]
    shape = (rows * (h + gap) - gap, cols * (w + gap) - gap) + patches[0].shape[2:]
    grid = np.full(shape, 224, np.uint8)
    for i, p in enumerate(patches):
        r, c = divmod(i, cols)
        grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = p
    return Image.fromarray(grid)


def _tree_dict(node, names: dict, stops: dict | None = None) -> dict:
    """A Node tree as figure data; tiles by path name. With `stops` (an explored tree),
    each node also says why it has no children, if it has none (`stop`)."""
    d = {"unit": node.unit, "layer": node.layer, "index": node.index,
         "activation": node.activation, "weight": node.weight, "path": node.path_name,
         "tile": names[node.path_name],
         "children": [_tree_dict(c, names, stops) for c in node.children]}
    if stops is not None:
        d["stop"] = stops.get(node.path_name)
    return d


# ------------------------------------------------------------------ display

NORMS = {"percentile": "scale each picture by the P-th percentile of |gradient| (default 99.5)"}


def display_params(norm: dict | None) -> dict:
    """A figure's display normalization, explicit and checked (torch-free).

    `norm` is `{"name": ..., "param": ...}` from `norm=NAME[:PARAM]`; the result always
    names the method and its parameter, so it can be part of a cache key.
    """
    norm = dict(norm or {})
    name = norm.get("name") or "percentile"
    if name not in NORMS:
        raise RequestError(None, f"norm {name!r} is not known; valid: "
                                 + "; ".join(f"{k}[:P] ({v})" for k, v in NORMS.items()))
    param = norm.get("param")
    try:
        p = 99.5 if param in (None, "") else float(param)
    except ValueError:
        p = -1.0
    if not 0 < p <= 100:
        raise RequestError(None, f"norm=percentile:{param}: the percentile must be a number "
                                 "in (0, 100], e.g. percentile:99.5")
    return {"name": name, "percentile": p}


def _png(image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _gradient_pngs(grads, display: dict) -> list[bytes]:
    """Input gradients (N, C, H, W) -> PNG tiles on neutral gray (engine's display)."""
    from generator.vis.render import display as disp

    p = display_params(display)["percentile"]
    return [_png(disp.tile(g, p)) for g in grads]


def _input_png(x) -> bytes:
    """The model's input (C, H, W) as it sees it, contrast-stretched to a picture."""
    import numpy as np
    from PIL import Image

    a = x.detach().cpu().double().numpy()
    lo, hi = a.min(), a.max()
    v = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    px = np.rint(255 * v).astype(np.uint8).transpose(1, 2, 0)
    return _png(Image.fromarray(px[:, :, 0] if px.shape[2] == 1 else px))


def _featuremap_pngs(maps) -> list[bytes]:
    """Channels of h_L (C, H, W) -> grayscale PNGs on one shared scale (the layer's max),
    so brightness compares across channels, as in the engine's feature grid."""
    import numpy as np
    from PIL import Image

    m = maps.detach().cpu().double().numpy()
    top = m.max()
    v = np.clip(m / top, 0, 1) if top > 0 else np.zeros_like(m)
    return [_png(Image.fromarray(np.rint(255 * c).astype(np.uint8))) for c in v]


def _load_input(model, path: str):
    from generator.vis.core.inputs import load_input

    return load_input(path, model)
