"""`<< optimize UNIT [UNIT ...] >>`: for each unit, the picture that drives it up most,
found by gradient ascent in image space (feature visualization by optimization)."""
from __future__ import annotations

from dataclasses import dataclass

from generator.vis.kinds.pictures import Picture, Settings, picture
from generator.vis.kinds.results import Figure
from generator.vis.kinds.spec import FEATUREVIS, Key, Kind, keys
from generator.vis.kinds.units import figure_base


@dataclass(kw_only=True)
class OptimizedUnit:
    unit: str
    layer: str
    index: int
    pictures: list[Picture]


@dataclass(kw_only=True)
class OptimizeFigure(Figure):
    objective: str
    steps: int
    seed: int
    param: str
    units: list[OptimizedUnit]


class Optimize(Kind):
    name = "optimize"
    doc = "what units want to see: pictures optimized to drive each unit up"
    legend = 'Each picture is an input the model could receive, optimized from noise; its hover text gives the activation it reaches.'
    example = "<< optimize conv5_3 fc6_12 steps=128 >>"
    arg, positional, nmin, nmax = "units", "unit", 1, 16
    keys = keys("image", "rule", "norm", **FEATUREVIS,
                diversity=Key("int", 1, 1, 8, doc="pictures per unit, pushed apart from each other"))
    images = "none"
    template = "optimize"
    result = OptimizeFigure

    def check(self, session, req, model) -> None:
        settings = Settings.of(req.params, req.params["diversity"])
        settings.check(model)
        units = _canonical(model, req.params["units"])
        session.pictures.want(session.model_key(req), settings, units)

    def run(self, session, req, model, tiles) -> OptimizeFigure:
        p = req.params
        settings = Settings.of(p, p["diversity"])
        key = session.model_key(req)
        out, side = [], None
        for ref in p["units"]:
            layer, index = model.parse_unit(ref)
            name = model.unit_name(layer, index)
            fvs = session.pictures.get(key, model, settings, name)
            side = tuple(fvs[0].image.shape[-2:])
            out.append(OptimizedUnit(unit=name, layer=layer.name, index=index,
                                     pictures=[picture(fv, tiles) for fv in fvs]))
        base = figure_base(model, req)
        base.update(tile_h=int(side[0]), tile_w=int(side[1]))
        return OptimizeFigure(**base, objective=p["objective"], steps=p["steps"],
                              seed=p["seed"], param=p["param"], units=out)

    def caption(self, fig: OptimizeFigure) -> str:
        names = ", ".join(f"`{u.unit}`" for u in fig.units)
        return (f"Pictures optimized to drive up {names} ({fig.objective} objective, "
                f"{fig.steps} steps, {fig.param} parametrization, seed {fig.seed}; model "
                f"{fig.model}).")


def _canonical(model, refs) -> list[str]:
    out = []
    for ref in refs:
        layer, index = model.parse_unit(ref)
        out.append(model.unit_name(layer, index))
    return out
