"""The one narrow API between the site and the engine: figure requests in, results out.

Importing this module does not import torch: the site uses `model_spec` and
`engine_version` to key its cache on every build, and only calls `compute` (which
imports the engine) when some figure is missing. Results are plain JSON-able data plus
PNG tiles named by the hash of their bytes.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

from generator.files import tile_name
from generator.vis.errors import EngineError
from generator.vis.kinds import KINDS, Key, Kind
from generator.vis.kinds.atlas_types import AtlasRequest, AtlasResult, Layout, UnitAtlas
from generator.vis.kinds.hierarchy import default_explore_budget
from generator.vis.kinds.results import Figure
from generator.vis.names import BUILTIN_MODELS, IMAGE_SUFFIXES, RULES, WEIGHT_SUFFIXES

__all__ = ["KINDS", "Key", "Kind", "Figure", "RULES", "WEIGHT_SUFFIXES", "BUILTIN_MODELS",
           "RequestError", "EngineError", "ModelSpec", "DatasetSpec", "FigureRequest", "FigureResult",
           "model_spec", "dataset_spec", "engine_version", "compute", "display_params",
           "figure_from_json", "tile_name", "default_explore_budget",
           "AtlasRequest", "AtlasResult", "Layout", "UnitAtlas", "atlas_layout", "atlas_compute"]

# Bump when the meaning of a figure's data changes without any engine source changing.
API_VERSION = "1"
ENGINE_DIR = Path(__file__).resolve().parent
DEFAULT_WEIGHTS = ENGINE_DIR / "default" / "assets" / "fashion_alexnet.safetensors"


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
    """A computed figure: the kind's typed result, its JSON form `data` (what the cache
    keeps) and its `tiles` (name -> PNG bytes)."""

    figure: Figure
    tiles: dict[str, bytes] = field(default_factory=dict)

    @property
    def data(self) -> dict:
        return self.figure.to_json()


def figure_from_json(kind: str, data: dict) -> Figure:
    """A cached figure's JSON as its kind's typed result (ValueError if it does not fit)."""
    try:
        return KINDS[kind].result.from_json(data)
    except (TypeError, KeyError) as e:
        raise ValueError(f"{kind} figure data does not fit: {e}") from None


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
            index_dir: Path | None = None, verbose: bool = False,
            on_steps: Callable[[int, int], None] | None = None) -> list[FigureResult]:
    """Compute figures; each (model, image, rule) is forwarded once.

    Every request is checked first (models load, images decode, units and layers exist),
    so a bad request raises `RequestError(ref, message)` before anything is computed; an
    engine error while computing is reported the same way. `progress(n)` is called as
    figures complete; `on_result(i, result)` receives each result as soon as it exists,
    so the caller can cache it even if a later one fails; `on_warning(ref, message)`
    receives the engine's warnings (e.g. a model with random weights). Patch grids mine
    their dataset once per (model, dataset) into `index_dir` (reused when cached).
    `on_steps(done, total)` follows optimization steps (feature visualization, DeepDream):
    the pictures every figure wants on a model are optimized in one batch.
    """
    import warnings

    from generator.vis.errors import EngineError, EngineWarning
    from generator.vis.kinds.session import Session, Tiles

    session = Session(device, index_dir, verbose, on_steps)
    results: list[FigureResult | None] = [None] * len(requests)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EngineWarning)
        models, pending = [], []
        for r in requests:
            seen = len(caught)
            models.append(_check(session, r))
            pending += [(r.ref, str(w.message)) for w in caught[seen:]
                        if issubclass(w.category, EngineWarning)]
        # said once every request checks out: a bad request stays one line on its own
        for ref, message in pending if on_warning is not None else ():
            on_warning(ref, message)
        # grouped by (model, image, rule): a forward state serves every figure in a group
        order = sorted(range(len(requests)), key=lambda i: (
            repr(session.model_key(requests[i])), (requests[i].images or [""])[0],
            requests[i].params.get("rule", "")))
        for i in order:
            req, tiles, seen = requests[i], Tiles(), len(caught)
            try:
                figure = KINDS[req.kind].run(session, req, models[i], tiles)
            except EngineError as e:
                raise RequestError(req.ref, str(e)) from None
            except (Exception, SystemExit) as e:
                _blame(req, e)
                raise
            for w in caught[seen:]:   # e.g. a damaged mining index, mined again
                if on_warning is not None and issubclass(w.category, EngineWarning):
                    on_warning(req.ref, str(w.message))
            figure.tiles = sorted(tiles.files)
            results[i] = FigureResult(figure, tiles.files)
            if on_result is not None:
                on_result(i, results[i])
            if progress is not None:
                progress(1)
    return results


def _check(session, req: FigureRequest):
    """Load `req`'s model and images and let its kind check it: the request's model."""
    from generator.vis.errors import EngineError

    kind = KINDS.get(req.kind)
    if kind is None:
        raise RequestError(req.ref, f"unknown figure kind {req.kind!r}; valid: {', '.join(KINDS)}")
    try:
        model = session.model(req)
        kind.check(session, req, model)
        if "display" in req.params:
            display_params({"name": req.params["display"].get("name"),
                            "param": req.params["display"].get("percentile")})
    except EngineError as e:
        raise RequestError(req.ref, str(e)) from None
    except RequestError as e:
        raise RequestError(req.ref, e.message) from None
    except (Exception, SystemExit) as e:
        _blame(req, e)
        raise
    return model


def _blame(req: FigureRequest, exc: BaseException) -> None:
    """Raise RequestError when `exc` came out of the request's own model file (its
    forward, say): user code, so one line at its file:line; else return (an engine bug)."""
    from generator.vis.core.usercode import blame

    err = blame(exc, req.model)
    if err is not None:
        raise RequestError(req.ref, str(err)) from None


# ------------------------------------------------------------------ display

def display_params(norm: dict | str | None) -> dict:
    """A figure's display normalization, explicit and checked (torch-free); see
    `vis.render.norms`. Raises RequestError for an unknown name or a bad parameter."""
    from generator.vis.errors import EngineError
    from generator.vis.render.norms import display_params as check

    try:
        return check(norm)
    except EngineError as e:
        raise RequestError(None, str(e)) from None


# ------------------------------------------------------------------ atlas (issue 16)

def atlas_layout(model: str, weights: str | None = None, device=None) -> Layout:
    """A model's layers, units and labels, for naming atlas units (imports torch)."""
    from generator.vis.kinds.atlas import layout

    try:
        return layout(model, weights, device)
    except EngineError as e:
        raise RequestError(None, str(e)) from None


def atlas_compute(request: AtlasRequest, units: list[str], index_dir: Path, device=None,
                  progress: Callable[[str, int, int], None] | None = None) -> AtlasResult:
    """Per-unit atlas results for `units` (and the rest of their fixed chunks); under
    torch.distributed the chunks are shared by the ranks and rank 0 gets them all."""
    from generator.vis.kinds.atlas import compute

    try:
        return compute(request, units, index_dir, device, progress)
    except EngineError as e:
        raise RequestError(None, str(e)) from None
