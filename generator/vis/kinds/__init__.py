"""The figure kinds: one module each, registered here (torch-free to import).

Adding a kind: its module (a `Kind` subclass and its result dataclass), its template
`templates/figures/<template>.html`, its tests, and one line below.
"""
from __future__ import annotations

from generator.vis.kinds.dream import DreamKind
from generator.vis.kinds.featuremaps import FeatureMaps
from generator.vis.kinds.hierarchy import Hierarchy
from generator.vis.kinds.maxacts import Maxacts
from generator.vis.kinds.optimize import Optimize
from generator.vis.kinds.patches import Patches
from generator.vis.kinds.predictions import Predictions
from generator.vis.kinds.spec import Key, Kind
from generator.vis.kinds.units import Unit, Units

KINDS: dict[str, Kind] = {k.name: k for k in (
    Unit(), Units(), Hierarchy(), Predictions(), FeatureMaps(), Maxacts(), Patches(),
    Optimize(), DreamKind(),
)}

__all__ = ["KINDS", "Key", "Kind"]
