"""`<< patches UNIT k=16 >>`: a unit's top-activating dataset patches beside their
gradients."""
from __future__ import annotations

from dataclasses import dataclass

from generator.vis.kinds.results import Figure, PatchGrid
from generator.vis.kinds.spec import DATASET, Key, Kind, keys
from generator.vis.kinds.units import figure_base


@dataclass(kw_only=True)
class PatchesFigure(Figure):
    unit: str
    layer: str
    index: int
    rule: str
    grid: PatchGrid


class Patches(Kind):
    name = "patches"
    doc = "a unit's top-activating dataset patches beside their gradients"
    legend = ("Left: the dataset patches, best first; right: their gradients (gray: no "
              "effect, lighter/darker: raises/lowers the unit).")
    example = "<< patches conv2_69 k=16 >>"
    arg, positional, nmin, nmax = "unit", "unit", 1, 1
    keys = keys("image", k=Key("int", 16, 1, 100, doc="examples shown"), dataset=DATASET)
    images = "none"
    template = "patches"
    result = PatchesFigure

    def uses_dataset(self, params: dict) -> bool:
        return True

    def check(self, session, req, model) -> None:
        from generator.vis.core.rules import check_rule

        check_rule(req.params["rule"])
        model.parse_unit(req.params["unit"])
        session.check_dataset(req, model, req.params["dataset"], req.params["k"])

    def run(self, session, req, model, tiles) -> PatchesFigure:
        p = req.params
        layer, index = model.parse_unit(p["unit"])
        return PatchesFigure(**figure_base(model, req), unit=model.unit_name(layer, index),
                             layer=layer.name, index=index, rule=p["rule"],
                             grid=session.patch_grid(req, model, p["unit"], p["k"], tiles))

    def caption(self, fig: PatchesFigure) -> str:
        g = fig.grid
        return (f"`{fig.unit}`: its top {g.k} patches in {g.dataset} (left) and their "
                f"gradients ({fig.rule} backprop, right); model {fig.model}.")
