"""`<< featuremaps LAYER max=N >>`: a convolutional layer's activation maps."""
from __future__ import annotations

from dataclasses import dataclass

from generator.vis.errors import EngineError
from generator.vis.kinds.results import Figure
from generator.vis.kinds.spec import Key, Kind, keys
from generator.vis.kinds.units import figure_base, on_image


@dataclass(kw_only=True)
class FeatureMap:
    unit: str
    index: int
    max: float
    tile: str


@dataclass(kw_only=True)
class FeatureMapsFigure(Figure):
    layer: str
    map_h: int
    map_w: int
    maps: list[FeatureMap]


class FeatureMaps(Kind):
    name = "featuremaps"
    doc = "a layer's activation maps"
    legend = 'Black: the unit is off there; white: the strongest activation in the layer (one scale for all maps).'
    example = "<< featuremaps conv1 max=32 >>"
    arg, positional, nmin, nmax = "layer", "layer", 1, 1
    keys = keys("rule", "norm", max=Key("int", 64, 1, 4096, doc="most maps shown"))
    template = "featuremaps"
    result = FeatureMapsFigure

    def check(self, session, req, model) -> None:
        layer = model.layer(req.params["layer"])
        if layer.kind != "conv":
            convs = [l.name for l in model.layers if l.kind == "conv"]
            raise EngineError(f"featuremaps needs a convolutional layer; {layer.name} is "
                              f"fully connected (use one of {', '.join(convs) or 'none'})")

    def run(self, session, req, model, tiles) -> FeatureMapsFigure:
        from generator.vis.core.probes import feature_maps
        from generator.vis.render.tiles import featuremap_pngs

        bp = session.state(req, req.images[0], "guided")
        layer = model.layer(req.params["layer"])
        acts = feature_maps(bp, layer.name)[: req.params["max"]]
        return FeatureMapsFigure(
            **figure_base(model, req), layer=layer.name,
            map_h=int(acts.shape[-2]), map_w=int(acts.shape[-1]),
            maps=[FeatureMap(unit=model.unit_name(layer, i), index=i, max=float(a.max()),
                             tile=tiles.add(png))
                  for i, (a, png) in enumerate(zip(acts, featuremap_pngs(acts)))])

    def caption(self, fig: FeatureMapsFigure) -> str:
        return f"Feature maps of `{fig.layer}` (model {fig.model}{on_image(fig)})."
