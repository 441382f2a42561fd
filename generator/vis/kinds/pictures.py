"""Optimized pictures shared by a build's figures: every figure that wants a unit's
feature visualization says so first (`want`), and the first figure that reads one
(`get`) optimizes all pictures wanted on that model with those settings in one batch.

Each picture has its own random stream (seed, unit, copy), so a picture is the same
whether it was optimized alone, with its figure's units or with the whole build's.
"""
from __future__ import annotations

from dataclasses import dataclass

CHUNK = 64          # pictures per optimize() call: bounds memory on large models


@dataclass(frozen=True)
class Settings:
    """What decides an optimized picture besides the model and the unit."""

    objective: str
    steps: int
    lr: float
    seed: int
    param: str
    transforms: str
    resolution: int | None
    diversity: int = 1

    @classmethod
    def of(cls, params: dict, diversity: int = 1) -> "Settings":
        return cls(objective=params["objective"], steps=params["steps"], lr=float(params["lr"]),
                   seed=params["seed"], param=params["param"], transforms=params["transforms"],
                   resolution=params.get("resolution"), diversity=diversity)

    def check(self, model) -> None:
        """The engine's own argument checks, before anything is computed."""
        from generator.vis.core.objectives import check_lr, check_objective, check_steps

        from generator.vis.core.imageparam import make_param

        check_steps(self.steps), check_lr(self.lr), check_objective(self.objective)
        c, h, w = model.input_shape
        make_param(self.param, c, self.resolution or h, self.resolution or w)


@dataclass(kw_only=True)
class Picture:
    """One optimized picture as a figure shows it."""

    tile: str
    activation: float       # the objective on the final picture (no transforms)
    history: list[float]    # the objective over the steps (with transforms)


def settings_fields(settings: Settings) -> dict:
    """The optimization settings a figure records (they are in its cache key already)."""
    return {"objective": settings.objective, "steps": settings.steps, "seed": settings.seed,
            "param": settings.param}


class Pictures:
    """Wanted and computed pictures of one `compute`, keyed by (model, settings, unit)."""

    def __init__(self, on_steps=None):
        self.on_steps = on_steps          # (done, total) over all optimization steps
        self.wanted: dict[tuple, list[str]] = {}
        self.done: dict[tuple, list] = {}  # (model key, settings, unit) -> [FeatureVis]
        self.steps_total = 0
        self.steps_done = 0

    def want(self, model_key, settings: Settings, units) -> None:
        group = self.wanted.setdefault((model_key, settings), [])
        for u in units:
            if u not in group and (model_key, settings, u) not in self.done:
                group.append(u)
                self.steps_total += settings.steps * settings.diversity

    def get(self, model_key, model, settings: Settings, unit: str) -> list:
        """The FeatureVis copies of `unit` (canonical name), optimizing its group if needed."""
        key = (model_key, settings, unit)
        if key not in self.done:
            self.want(model_key, settings, [unit])
            self._run(model_key, model, settings)
        return self.done[key]

    def _run(self, model_key, model, settings: Settings) -> None:
        from generator.vis.core.featurevis import optimize

        units = self.wanted.pop((model_key, settings), [])
        for start in range(0, len(units), max(1, CHUNK // settings.diversity)):
            chunk = units[start:start + max(1, CHUNK // settings.diversity)]
            base = self.steps_done
            per = len(chunk) * settings.diversity

            def progress(step, steps, base=base, per=per):
                self.steps_done = base + step * per
                if self.on_steps is not None:
                    self.on_steps(self.steps_done, max(self.steps_total, self.steps_done))

            found = optimize(model, chunk, steps=settings.steps, lr=settings.lr,
                             seed=settings.seed, param=settings.param,
                             transforms="standard" if settings.transforms == "on" else "none",
                             diversity=settings.diversity, size=settings.resolution,
                             objective=settings.objective, progress=progress)
            for fv in found:
                self.done.setdefault((model_key, settings, fv.unit), []).append(fv)


def picture(fv, tiles) -> Picture:
    from generator.vis.render.tiles import picture_png

    return Picture(tile=tiles.add(picture_png(fv.image)), activation=fv.activation,
                   history=[round(float(v), 5) for v in fv.history])

