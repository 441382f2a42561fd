"""Unit names in posts link to unit pages: inline `conv5_34` and figure tile labels."""
from __future__ import annotations

import re

from .store import Atlas


class UnitLinker:
    """Finds names of the atlas's units in post HTML and wraps them in links."""

    def __init__(self, atlas: Atlas, abs_url):
        self.atlas, self.abs_url = atlas, abs_url
        self.sizes = {l.name: l.units for l in atlas.layers}
        names = "|".join(sorted(map(re.escape, self.sizes), key=len, reverse=True)) or "(?!)"
        unit = rf"((?:{names})_\d+)"
        self._code = re.compile(rf"(?<!\">)<code>{unit}</code>")
        self._label = re.compile(rf'<span class="ft-label">{unit}(?=[:<])')
        self._tree = re.compile(r'<div class="ft-tree"(?=[^>]*\sdata-explore=)')

    def known(self, unit: str) -> bool:
        layer, _, index = unit.rpartition("_")
        return layer in self.sizes and int(index) < self.sizes[layer]

    def link(self, html: str) -> tuple[str, list[str]]:
        """(html with every known unit name linked, the units it names, in order)."""
        found: list[str] = []

        def href(unit: str) -> str:
            found.append(unit)
            return self.abs_url(self.atlas.unit_path(unit))

        def code(m):
            u = m.group(1)
            return f'<a class="ft-atlas" href="{href(u)}"><code>{u}</code></a>' if self.known(u) \
                else m.group(0)

        def label(m):
            u = m.group(1)
            return f'<span class="ft-label"><a class="ft-atlas" href="{href(u)}">{u}</a>' \
                if self.known(u) else m.group(0)

        html = self._label.sub(label, self._code.sub(code, html))
        # Explorable trees draw new tiles in the browser: tell the explorer where units live.
        html = self._tree.sub(lambda m: f'{m.group(0)} data-atlas="{self.abs_url(self.atlas.base)}" '
                                        f'data-atlas-units="{self._units}"', html)
        return html, list(dict.fromkeys(found))

    @property
    def _units(self) -> str:
        return " ".join(f"{name}:{n}" for name, n in self.sizes.items())
