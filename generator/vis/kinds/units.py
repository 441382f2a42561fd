"""`<< unit U >>` and `<< units U1 U2 ... >>`: units' images on the post's image, side by
side, optionally each with its dataset patch grid."""
from __future__ import annotations

from dataclasses import dataclass

from generator.vis.kinds.crops import crop_all
from generator.vis.kinds.pictures import Picture, Settings, picture
from generator.vis.kinds.results import Figure, OneUnit, PatchGrid
from generator.vis.kinds.session import percentile_of
from generator.vis.kinds.spec import DATASET, FEATUREVIS, PATCHES, Key, Kind, keys

CROP = Key("choice", "auto", choices=("auto", "on", "off"), unset="auto",
           doc="cut each tile to where its gradient is, scaled up, the cut marked on a small "
               "input copy (auto: inputs of 128 px or more, supports at most half the side)")
OPTIMIZE = Key("int", 0, 0, 1, unset=0,
               doc="1: beside each unit's image, the picture optimized to drive it up "
                   "(the optimize keys apply)")


@dataclass(kw_only=True)
class UnitTile(OneUnit):
    unit: str
    layer: str
    index: int
    activation: float
    tile: str
    patches: PatchGrid | None = None
    picture: Picture | None = None
    field: str | None = None        # crop: the input with the cut marked


@dataclass(kw_only=True)
class UnitsFigure(Figure):
    rule: str
    units: list[UnitTile]
    optimized: str | None = None    # how the pictures were made, with `optimize=1`


def check_units(session, req, model, units) -> None:
    """Shared by every kind that draws units: they exist, and their patch grids can be
    mined (`patches=K` with a dataset)."""
    from generator.vis.core.rules import check_rule

    check_rule(req.params["rule"])
    for u in units:
        model.parse_unit(u)
    if req.params.get("patches"):
        session.check_dataset(req, model, req.params["dataset"], req.params["patches"])


def optimizing_params(kind: Kind, values: dict) -> dict:
    """A unit figure's request: the optimize keys only when `optimize=1`, so a figure
    without pictures keeps its cache key."""
    out = Kind.request_params(kind, values)
    if not out.get("optimize"):
        for name in FEATUREVIS:
            out.pop(name, None)
    return out


def want_pictures(session, req, model, units) -> None:
    """`optimize=1`: tell the session which pictures this figure will read, so the
    build optimizes them in one batch with every other figure's."""
    if req.params.get("optimize"):
        settings = Settings.of(req.params)
        settings.check(model)
        names = [model.unit_name(*model.parse_unit(u)) for u in units]
        session.pictures.want(session.model_key(req), settings, names)


def add_pictures(session, req, model, tiles, nodes) -> str | None:
    """`optimize=1`: each node (anything with `.unit`) gets its optimized picture; the
    settings as a phrase for the caption."""
    if not req.params.get("optimize"):
        return None
    settings, key = Settings.of(req.params), session.model_key(req)
    names = [n.unit for n in nodes]
    session.pictures.want(key, settings, names)
    for n in nodes:
        n.picture = picture(session.pictures.get(key, model, settings, n.unit)[0], tiles)
    return f"{settings.objective} objective, {settings.steps} steps, seed {settings.seed}"


def warn_inactive(nodes, wanted) -> None:
    """A requested unit that is off on this image draws an empty tile and zero-weight
    edges; say so once, at the directive (the tile says it too)."""
    import warnings

    from generator.vis.errors import EngineWarning

    dead = [n.unit for n in nodes if n.unit in wanted and n.inactive]
    if dead:
        warnings.warn(f"{', '.join(dict.fromkeys(dead))}: inactive on this image (activation "
                      "0): its picture is empty and its edges weigh 0", EngineWarning)


def add_patches(session, req, model, tiles, nodes) -> None:
    """`patches=K`: each node (anything with `.unit`) gets its dataset patch grid."""
    k = req.params.get("patches")
    for n in nodes if k else ():
        n.patches = session.patch_grid(req, model, n.unit, k, tiles)


class Units(Kind):
    name = "units"
    doc = "several units side by side"
    legend = 'Gray: no effect on the unit; lighter (darker): brightening that pixel raises (lowers) it, per channel in colour; each tile scaled on its own.'
    example = "<< units conv1_4 conv1_65 >>"
    arg, positional, nmin, nmax = "units", "unit", 1, 16
    keys = keys(crop=CROP, patches=PATCHES, dataset=DATASET, optimize=OPTIMIZE, **FEATUREVIS)
    template = "units"
    result = UnitsFigure

    def unit_refs(self, params: dict) -> list[str]:
        return list(params["units"])

    def request_params(self, values: dict) -> dict:
        return optimizing_params(self, values)

    def check(self, session, req, model) -> None:
        check_units(session, req, model, self.unit_refs(req.params))
        want_pictures(session, req, model, self.unit_refs(req.params))

    def run(self, session, req, model, tiles) -> UnitsFigure:
        from generator.vis.render.tiles import gradient_pngs

        p = req.params
        bp = session.state(req, req.images[0], p["rule"])
        units = [model.parse_unit(u) for u in self.unit_refs(p)]
        grads, markers = crop_all(bp.unit_images(units), p.get("crop", "auto"),
                                  session.input(req, req.images[0]), tiles)
        pngs = gradient_pngs(grads, percentile_of(p))
        fig = UnitsFigure(**figure_base(model, req), rule=p["rule"], units=[
            UnitTile(unit=model.unit_name(layer, i), layer=layer.name, index=i,
                     activation=bp.activation(layer, i), tile=tiles.add(png), field=marker)
            for (layer, i), png, marker in zip(units, pngs, markers)])
        add_patches(session, req, model, tiles, fig.units)
        fig.optimized = add_pictures(session, req, model, tiles, fig.units)
        warn_inactive(fig.units, {u.unit for u in fig.units})
        return fig

    def caption(self, fig: UnitsFigure) -> str:
        names = ", ".join(f"`{u.unit}`" for u in fig.units)
        return (f"{names} ({fig.rule} backprop, model {fig.model}{on_image(fig)})"
                f"{optimized_phrase(fig.optimized)}.")


def optimized_phrase(how: str | None) -> str:
    return f"; beside each, the picture optimized to drive it up ({how})" if how else ""


class Unit(Units):
    name = "unit"
    doc = "one unit's visualization on the image"
    example = "<< unit conv1_4 >>"
    arg, nmin, nmax = "unit", 1, 1

    def request_params(self, values: dict) -> dict:
        out = optimizing_params(self, values)
        out["units"] = [out.pop("unit")]    # the engine draws one unit as a list of one
        return out


def figure_base(model, req) -> dict:
    """The fields every `Figure` carries, for `req` on `model`."""
    from pathlib import Path

    c, h, w = model.input_shape
    name = req.model
    label = Path(name.rsplit(":", 1)[0]).name if ".py:" in name else name
    return {"model": label, "tile_w": w, "tile_h": h,
            "image_name": Path(req.images[0]).name if req.images else ""}


def on_image(fig: Figure) -> str:
    return f" on {fig.image_name}" if fig.image_name else ""
