"""`<< dream UNIT|LAYER >>`: DeepDream from the post's image, beside the original and a
map of where it changed."""
from __future__ import annotations

from dataclasses import dataclass

from generator.vis.kinds.results import Figure
from generator.vis.kinds.spec import FEATUREVIS, Key, Kind, keys
from generator.vis.kinds.units import figure_base, on_image


@dataclass(kw_only=True)
class DreamFigure(Figure):
    target: str
    octaves: int
    octave_steps: int
    original: str         # the input as the model sees it
    dreamed: str
    change: str           # where the picture changed, black (not) to white (most)
    before: float         # the objective on the original
    after: float          # and on the dreamed picture


class DreamKind(Kind):
    name = "dream"
    doc = "DeepDream: the post's image changed to drive a unit or a whole layer up"
    legend = 'Change map: black where the image is unchanged, white where it changed most.'
    example = "<< dream conv4 octaves=3 >>"
    arg, positional, nmin, nmax = "target", "target", 1, 1
    keys = keys("rule", "norm", seed=FEATUREVIS["seed"],
                octaves=Key("int", 3, 1, 6, doc="scales, smallest first (each 1.4x the last)"),
                octave_steps=Key("int", 10, 1, 500, doc="gradient-ascent steps per octave"),
                strength=Key("float", 0.01, 0.0001, 1.0,
                             doc="step size (the gradient normalized by its mean magnitude)"))
    template = "dream"
    result = DreamFigure

    def check(self, session, req, model) -> None:
        from generator.vis.core.dream import dream_target

        dream_target(model, req.params["target"])

    def run(self, session, req, model, tiles) -> DreamFigure:
        from generator.vis.core.dream import dream
        from generator.vis.core.imageparam import image_range
        from generator.vis.render.tiles import change_png, picture_png

        p = req.params
        x = session.input(req, req.images[0])
        steps_total = p["octaves"] * p["octave_steps"]

        def progress(done, total):
            if session.pictures.on_steps is not None:
                session.pictures.on_steps(done, total)

        d = dream(model, x, p["target"], octaves=p["octaves"], steps=p["octave_steps"],
                  lr=p["strength"], seed=p["seed"], progress=progress if steps_total else None)
        original = image_range(model).to_image(x.unsqueeze(0).to(model.device))[0]
        return DreamFigure(**figure_base(model, req), target=d.target, octaves=p["octaves"],
                           octave_steps=p["octave_steps"],
                           original=tiles.add(picture_png(original)),
                           dreamed=tiles.add(picture_png(d.image)),
                           change=tiles.add(change_png(d.change)),
                           before=d.before, after=d.after)

    def caption(self, fig: DreamFigure) -> str:
        return (f"DeepDream on `{fig.target}`{on_image(fig)}: the image, the dream "
                f"({fig.octaves} octaves of {fig.octave_steps} steps; objective "
                f"{fig.before:.3g} → {fig.after:.3g}) and where it changed (model {fig.model}).")
