"""`<< maxacts UNIT images=a.png,b.png >>`: one unit across several images."""
from __future__ import annotations

from dataclasses import dataclass

from generator.vis.kinds.results import Figure
from generator.vis.kinds.session import percentile_of
from generator.vis.kinds.spec import Key, Kind, keys
from generator.vis.kinds.units import check_units, figure_base


@dataclass(kw_only=True)
class MaxactItem:
    image_name: str
    activation: float
    input_tile: str
    tile: str


@dataclass(kw_only=True)
class MaxactsFigure(Figure):
    rule: str
    unit: str
    items: list[MaxactItem]


class Maxacts(Kind):
    name = "maxacts"
    doc = "one unit across several images"
    legend = 'Gray: no effect on the unit; lighter (darker): brightening that pixel raises (lowers) it, per channel in colour; each tile scaled on its own.'
    example = "<< maxacts conv1_7 images=a.png,b.png >>"
    arg, positional, nmin, nmax = "unit", "unit", 1, 1
    keys = keys("image", images=Key("files", required=True, lo=1, hi=32, role="input",
                                    doc="comma list of image files"))
    images = "images"
    template = "maxacts"
    result = MaxactsFigure

    def check(self, session, req, model) -> None:
        check_units(session, req, model, [req.params["unit"]])

    def run(self, session, req, model, tiles) -> MaxactsFigure:
        import torch
        from pathlib import Path

        from generator.vis.render.tiles import gradient_pngs, input_png

        p = req.params
        layer, index = model.parse_unit(p["unit"])
        grads, items = [], []
        for path in req.images:
            bp = session.state(req, path, p["rule"])
            grads.append(bp.unit_images([(layer, index)])[0])
            items.append((Path(path).name, bp.activation(layer, index),
                          tiles.add(input_png(session.input(req, path)))))
        pngs = gradient_pngs(torch.stack(grads), percentile_of(p))
        return MaxactsFigure(
            **figure_base(model, req), rule=p["rule"], unit=model.unit_name(layer, index),
            items=[MaxactItem(image_name=n, activation=a, input_tile=t, tile=tiles.add(png))
                   for (n, a, t), png in zip(items, pngs)])

    def caption(self, fig: MaxactsFigure) -> str:
        return f"`{fig.unit}` across {len(fig.items)} images (model {fig.model})."
