"""From a directive to a figure request: defaults, paths, normalized parameters, cache key.

Everything here is torch-free: the key of a figure is a hash of the engine's version,
the bytes of the files that define its model, the bytes of its images and its
normalized parameters, so a build can tell which figures it already has without
loading a model. Presentation-only settings (caption, size) stay out of the key.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from generator.files import json_digest
from generator.vis import api

FIGURE_KINDS = tuple(api.KINDS)


class PlanError(Exception):
    """A figure directive that cannot be planned; `str()` is the message without position."""


@dataclass
class Plan:
    """One planned figure: what to compute, its cache key and how to show it."""

    request: api.FigureRequest
    key: str
    caption: str | None = None
    size: str | None = None
    inputs: list[Path] = field(default_factory=list)   # files whose bytes are in the key


def _first(*values):
    for v in values:
        if v not in (None, ""):
            return v
    return None


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            out.extend(_as_list(v))
        return out
    return [value]


def resolve_file(name: str, what: str, bases: list[Path], site_dir: Path) -> Path:
    """Find `name` in the first base that has it; it must stay inside the site directory."""
    raw = Path(str(name)).expanduser()
    candidates = [raw] if raw.is_absolute() else [b / raw for b in bases]
    for cand in candidates:
        path = cand.resolve()
        if not path.is_relative_to(site_dir):
            raise PlanError(f"{what} {name!r} is outside the site directory {site_dir}; "
                            f"put it under {site_dir}")
        if path.is_file():
            return path
    where = ", ".join(str(b) for b in bases)
    raise PlanError(f"{what} {name!r} not found (looked in {where})")


def figure_key(model_id: dict, image_digests: list[str], kind: str, params: dict) -> str:
    """The cache key: a hash of everything that decides the figure's content."""
    return json_digest({"engine": api.engine_version(), "model": model_id,
                        "images": image_digests, "kind": kind, "params": params})[:32]


def plan_figure(directive, params: dict, page_meta: dict, site, digest) -> Plan:
    """Turn one directive into a `Plan`. `digest(path)` hashes a file's bytes."""
    kind = api.KINDS.get(directive.name)
    if kind is None:
        raise PlanError(f"{directive.name} is not a figure; valid: {', '.join(FIGURE_KINDS)}")
    site_dir = Path(site.site_dir).resolve()
    # The post's real folder: a `dir:` key in front matter must not move image lookups.
    post_dir = Path(page_meta.get("post_dir") or site_dir).resolve()
    bases = [post_dir, site_dir / "images", site_dir]
    site_figures = dict(getattr(site, "figures", None) or {})

    model = str(_first(params.get("model"), page_meta.get("model"),
                       getattr(site, "model", None), "default"))
    weights = _first(params.get("weights"), page_meta.get("weights") if
                     not params.get("model") else None)
    if model.lower().endswith(api.WEIGHT_SUFFIXES):
        # `model=FILE`: weights for the architecture named in site.toml (default: default)
        model, weights = str(site_figures.get("architecture") or "default"), model
    settings = _model_settings(site_figures, model)
    weights = _first(weights, settings.get("weights"))
    try:
        spec = api.model_spec(model, weights, base_dirs=[post_dir, site_dir])
    except api.RequestError as e:
        raise PlanError(str(e)) from None
    if not spec.builtin:
        for f in spec.files:
            if not Path(f).resolve().is_relative_to(site_dir):
                raise PlanError(f"model file {f} is outside the site directory {site_dir}")

    if kind.images == "none":
        names = []
    elif kind.images == "images":
        names = _as_list(params.get("images"))
    else:
        names = [_first(params.get("image"), page_meta.get("image"), getattr(site, "image", None))]
        if names[0] is None:
            raise PlanError(f"{kind.name} needs an image: set image= here, `image:` in the front "
                            "matter or `image` in site.toml")
    images = [resolve_file(n, "image", bases, site_dir) for n in names]

    try:
        cparams = kind.request_params(params)
    except api.EngineError as e:
        raise PlanError(str(e)) from None
    if settings.get("layers"):
        cparams["layers"] = dict(settings["layers"])
    inputs = list(spec.files) + images
    dataset_id = None
    if kind.uses_dataset(cparams):
        data = _dataset(params, spec.name, [post_dir, site_dir])
        cparams["dataset"] = data.spec
        inputs += list(data.files)
        # the dataset's content, not where it lives, goes into the key
        dataset_id = {"kind": data.spec.split(":", 1)[0] if ":" in data.spec else "folder",
                      "files": [digest(Path(f)) for f in data.files], "stamp": data.stamp}
        if data.spec in ("fashion-sample",) or data.spec.startswith("fashion-mnist:"):
            dataset_id["kind"] = data.spec
    model_id = {"spec": spec.identity, "files": [digest(Path(f)) for f in spec.files],
                "dataset": dataset_id}
    key = figure_key(model_id, [digest(p) for p in images], kind.name,
                     {k: v for k, v in cparams.items() if k != "dataset"})
    request = api.FigureRequest(kind=kind.name, model=spec.name, weights=spec.weights,
                                images=[str(p) for p in images], params=cparams,
                                ref=str(directive.pos))
    return Plan(request=request, key=key, caption=params.get("caption"),
                size=_size(params.get("size")), inputs=inputs)


def _dataset(params: dict, model: str, bases) -> "api.DatasetSpec":
    """The dataset patch grids mine: `dataset=` (after the post's and site.toml's
    defaults), else the default model's shipped sample."""
    spec = _first(params.get("dataset"), "fashion-sample" if model == "default" else None)
    if spec is None:
        raise PlanError("patch grids need a dataset: set dataset= here or `dataset` in "
                        "site.toml's [figures] (a folder of images, imagefolder:PATH, "
                        "fashion-sample)")
    try:
        return api.dataset_spec(str(spec), base_dirs=bases)
    except api.RequestError as e:
        raise PlanError(e.message) from None


def _model_settings(site_figures: dict, model: str) -> dict:
    """site.toml `[figures.models."NAME"]`: weights and a layer map for one model."""
    models = site_figures.get("models") or {}
    entry = models.get(model) if isinstance(models, dict) else None
    return entry if isinstance(entry, dict) else {}


SIZE_PRESETS = {"small": "320px", "medium": "560px", "large": "800px", "full": "100%"}


def _size(value) -> str | None:
    """`size=` as a CSS max-width: a preset, a bare number (pixels), `480px` or `60%`."""
    if value in (None, ""):
        return None
    text = str(value).strip().lower()
    if text in SIZE_PRESETS:
        return SIZE_PRESETS[text]
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return f"{text}px"
    if re.fullmatch(r"\d+(\.\d+)?(px|%|em|rem)", text):
        return text
    raise PlanError(f"size={text!r} is not a width; use {' | '.join(SIZE_PRESETS)}, a number "
                    "of pixels (size=400) or a percentage (size=50%)")
