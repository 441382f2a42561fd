"""The unit atlas's request and typed results (issue 16), torch-free.

The site keys every unit's result by content (weights, dataset, unit, settings, engine
version) and keeps it as JSON; these dataclasses are that JSON's typed form, so the site
reads cached results without importing torch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

CHUNK = 64       # units per batch of work; fixed, so results never depend on sharding
CHILDREN = 8     # typical children kept per unit
LABELS = 3       # top labels kept per last-hidden unit
BINS = 24        # histogram bins


@dataclass(frozen=True)
class AtlasRequest:
    """What an atlas is computed from; `settings()` is what a unit's key depends on."""

    model: str
    weights: str | None
    dataset: str
    k: int = 8
    steps: int = 64
    seed: int = 0
    objective: str = "channel"
    lr: float = 0.05
    param: str = "fft"
    transforms: str = "on"
    diversity: int = 1   # pictures per unit pushed apart, beside the main one (1: none)
    diversity_layers: tuple[str, ...] = ()   # the layers that get them (empty: every layer)

    def settings(self) -> dict:
        """What every unit's key depends on: all but where the model and dataset live
        (their bytes are keyed apart) and diversity, which is per layer (`diversity_of`)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("model", "weights", "dataset", "diversity", "diversity_layers")}

    def diversity_of(self, layer: str) -> int:
        """The diversity pictures a unit of `layer` gets (1: none)."""
        return self.diversity if not self.diversity_layers or layer in self.diversity_layers else 1


@dataclass
class LayerInfo:
    """One named layer as the model page lists it."""

    name: str
    kind: str
    units: int
    map: str              # "8x8" or "-"
    field: str            # receptive field "36x36" or "whole input"
    stride: str           # "8x8" or "-"
    logits: bool = False


@dataclass
class Layout:
    """A model's layers and labels: what the site needs to name every unit."""

    model: str
    input_shape: list[int]
    layers: list[LayerInfo]
    labels: list[str]
    last_hidden: str | None   # the layer whose units get top labels

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Layout":
        return cls(**{**data, "layers": [LayerInfo(**l) for l in data["layers"]]})


@dataclass
class PatchSet:
    """A unit's top-k dataset examples: one grid of image patches, one of gradients."""

    image_grid: str
    gradient_grid: str
    cols: int
    rows: int
    sources: list[str]
    labels: list[str | None]
    activations: list[float]


@dataclass
class Histogram:
    """The unit's activation (max over space for conv) over every dataset image."""

    lo: float
    hi: float
    counts: list[int]


@dataclass
class Weighted:
    """A unit or label with the weight that ranks it."""

    name: str
    weight: float


@dataclass
class UnitAtlas:
    """Everything a unit page shows that the engine computes."""

    unit: str
    layer: str
    index: int
    picture: str                       # tile name of the optimized picture
    picture_activation: float
    patches: PatchSet
    histogram: Histogram
    mean: float
    max: float
    children: list[Weighted] = field(default_factory=list)
    labels: list[Weighted] = field(default_factory=list)
    tiles: list[str] = field(default_factory=list)
    diverse: list[str] = field(default_factory=list)   # tile names of the diversity pictures

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "UnitAtlas":
        return cls(**{**data, "patches": PatchSet(**data["patches"]),
                      "histogram": Histogram(**data["histogram"]),
                      "children": [Weighted(**c) for c in data["children"]],
                      "labels": [Weighted(**c) for c in data["labels"]]})


@dataclass
class AtlasResult:
    """Computed units plus the PNG bytes of their tiles (name -> bytes)."""

    units: list[UnitAtlas]
    tiles: dict[str, bytes]
    seconds: dict[str, float] = field(default_factory=dict)   # per phase, this process
