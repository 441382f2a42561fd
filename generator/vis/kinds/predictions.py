"""`<< predictions k=5 >>`: the model's top-k classes for the image."""
from __future__ import annotations

from dataclasses import dataclass

from generator.vis.kinds.results import Figure
from generator.vis.kinds.spec import Key, Kind, keys
from generator.vis.kinds.units import figure_base, on_image


@dataclass(kw_only=True)
class Prediction:
    index: int
    label: str
    prob: float


@dataclass(kw_only=True)
class PredictionsFigure(Figure):
    predictions: list[Prediction]
    input_tile: str


class Predictions(Kind):
    name = "predictions"
    doc = "the model's top-k classes for the image"
    example = "<< predictions k=5 >>"
    keys = keys("rule", "norm", k=Key("int", 5, 1, 100, doc="classes shown"))
    template = "predictions"
    result = PredictionsFigure

    def run(self, session, req, model, tiles) -> PredictionsFigure:
        from generator.vis.core.probes import top_predictions
        from generator.vis.render.tiles import input_png

        bp = session.state(req, req.images[0], "guided")
        return PredictionsFigure(
            **figure_base(model, req),
            predictions=[Prediction(**p) for p in top_predictions(bp.logits, model.labels,
                                                                  req.params["k"])],
            input_tile=tiles.add(input_png(session.input(req, req.images[0]))))

    def caption(self, fig: PredictionsFigure) -> str:
        return f"Top {len(fig.predictions)} predictions of model {fig.model}{on_image(fig)}."
