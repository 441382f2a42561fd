"""What a figure kind is: its directive's arguments and keys, and its engine part.

A kind module defines one `Kind` subclass; everything that differs between kinds is
read from it: the site validates a directive and fills its defaults from `keys`, keys
the planner from the `compute` keys, the engine checks and runs through `check`/`run`,
and the site renders the typed result through `template` and `caption`. Importing a
kind imports no torch: `check` and `run` import the engine when they are called.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from generator.vis.names import RULES

if TYPE_CHECKING:                     # pragma: no cover - types only
    from generator.vis.kinds.results import Figure
    from generator.vis.kinds.session import Session, Tiles

_KEEP = object()


@dataclass(frozen=True)
class Key:
    """One directive key.

    `kind` decides how the raw string is checked and converted: int (lo..hi), choice,
    text, file, files (comma list, at most `hi`), unit, units, size, norm, name.
    `role` says what it changes: `compute` keys go into the request and the cache key;
    `input` keys name files the planner resolves and hashes (image, model, dataset);
    `show` keys only change the HTML (caption, size). A `compute` key whose value equals
    `unset` is left out of the request (a hierarchy without `explore` keeps its key).
    """

    kind: str
    default: object = None
    lo: int | None = None
    hi: int | None = None
    choices: tuple[str, ...] = ()
    required: bool = False
    doc: str = ""
    role: str = "compute"
    unset: object = _KEEP


# Keys most kinds share, defined once.
IMAGE = Key("file", doc="input image (default: the post's `image`, then site.toml's)", role="input")
MODEL = Key("file", doc="model name or weights file (default: the post's `model`, then site.toml's)",
            role="input")
RULE = Key("choice", "guided", choices=RULES, doc="ReLU backward rule")
CAPTION = Key("text", doc="figure caption (plain text; escaped)", role="show")
SIZE = Key("size", doc="small | medium | large | full, or a width such as 480px or 60%", role="show")
NORM = Key("norm", doc="display normalization NAME[:PARAM] (percentile:P, default 99.5)")
PATCHES = Key("int", 0, 0, 64, doc="dataset patch grid of K examples under each unit (0: none)",
              unset=0)
DATASET = Key("name", doc="dataset to mine (default: site's; the default model's shipped "
                          "sample)", role="input")

# Feature visualization (`optimize`, and `optimize=1` on unit figures): one set of keys,
# so `[figures] steps = 64` holds for every figure that optimizes.
FEATUREVIS = {
    "objective": Key("choice", "channel", choices=("channel", "neuron"),
                     doc="channel: the mean of the unit's map; neuron: its centre (fc units: the unit)"),
    "steps": Key("int", 128, 1, 4096, doc="optimization steps (Adam)"),
    "lr": Key("float", 0.05, 0.0001, 10.0, doc="learning rate"),
    "seed": Key("int", 0, 0, 2**31 - 1, doc="random seed (same seed, same picture)"),
    "param": Key("choice", "fft", choices=("fft", "pixel"),
                 doc="image parametrization: fft (decorrelated colour, Fourier space) or pixel"),
    "transforms": Key("choice", "on", choices=("on", "off"),
                      doc="random pad, jitter, scale and rotation each step"),
    "resolution": Key("int", None, 8, 512, doc="picture side in px (default: the model's input)"),
}

ID = Key("name", doc="figure id for references: id=fig-tree, then @fig-tree in prose", role="show")

COMMON = {"image": IMAGE, "model": MODEL, "rule": RULE, "caption": CAPTION, "size": SIZE,
          "norm": NORM, "id": ID}


def keys(*drop: str, **extra: Key) -> dict[str, Key]:
    """The common keys without `drop`, plus `extra` (a kind's own)."""
    out = {k: v for k, v in COMMON.items() if k not in drop}
    out.update(extra)
    return out


class Kind:
    """One figure kind. Subclasses set the class attributes and override `check`, `run`
    and `caption`; `request_params` and `check_values` have defaults that fit most."""

    name: ClassVar[str]
    doc: ClassVar[str]                      # one line, for the README's directive table
    example: ClassVar[str]
    arg: ClassVar[str | None] = None        # where positional arguments are stored
    positional: ClassVar[str] = "unit"      # what they are: unit references or layer names
    nmin: ClassVar[int] = 0
    nmax: ClassVar[int] = 0
    keys: ClassVar[dict[str, Key]] = {}
    images: ClassVar[str] = "image"         # "image": one (the post's); "images": the list; "none"
    template: ClassVar[str]                 # templates/figures/<template>.html
    layout: ClassVar[str | None] = None     # a site-side layout the template needs ("tree")
    result: ClassVar[type]                  # the typed result (a `Figure` dataclass)
    legend: ClassVar[str] = ""              # what the colours mean, one line under the caption

    # -- the site's side (torch-free) ----------------------------------------------------
    def check_values(self, values: dict) -> tuple[str, str] | None:
        """(key, message) when validated values contradict each other, else None."""
        return None

    def request_params(self, values: dict) -> dict:
        """The engine's parameters from a directive's validated values: its positional
        argument and its `compute` keys (dropping those at their `unset` value)."""
        out = {self.arg: values[self.arg]} if self.arg else {}
        for name, key in self.keys.items():
            if key.role != "compute":
                continue
            value = values.get(name)
            if key.unset is not _KEEP and value == key.unset:
                continue
            if name == "norm":
                from generator.vis.render.norms import display_params
                out["display"] = display_params(value)
                continue
            out[name] = value
        return out

    def uses_dataset(self, params: dict) -> bool:
        """Whether this figure mines a dataset (its planner resolves `dataset`)."""
        return bool(params.get("patches"))

    def caption(self, fig: "Figure") -> str:
        """A caption saying what the figure shows, used when the author gave none."""
        return ""

    def legend_of(self, fig: "Figure") -> str:
        """The figure's legend (`[theme] legends = false` hides every legend)."""
        extra = " Right of each pair: the unit's optimized picture." if getattr(
            fig, "optimized", None) else ""
        return self.legend + extra if self.legend else ""

    # -- the engine's side ---------------------------------------------------------------
    def check(self, session: "Session", req, model) -> None:
        """Raise EngineError for anything in `req` that cannot be computed for `model`."""

    def run(self, session: "Session", req, model, tiles: "Tiles") -> "Figure":
        raise NotImplementedError(self.name)
