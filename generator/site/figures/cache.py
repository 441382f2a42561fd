"""The figure cache: computed figures kept in `.cache/figures/` between builds.

An entry is `entries/<key>.json` holding the figure's data and a checksum of it; its
tiles live beside it in `tiles/<name>.png`, where the name is the hash of the PNG
bytes. Tiles are written before the entry, and every file is written to a temporary
name and renamed, so an interrupted build never leaves an entry that points at missing
or partial tiles. A damaged entry or tile fails its checksum and is treated as absent,
so the figure is simply computed again (and the build says so once, see `cachecheck`).
"""
from __future__ import annotations

import json
from pathlib import Path

from generator.files import json_digest, write_atomic
from generator.site import cachecheck
# The engine names tiles; the cache's integrity check must use the very same rule.
from generator.vis.api import tile_name

FORMAT = 1


def _checksum(data) -> str:
    return json_digest(data)


class FigureCache:
    """Content-addressed store of figure results under one directory."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.entries = self.root / "entries"
        self.tiles = self.root / "tiles"

    def tile_path(self, name: str) -> Path:
        return self.tiles / name

    def get(self, key: str) -> dict | None:
        """The figure data stored under `key`, or None when absent or damaged (a damaged
        entry or tile is noted by `cachecheck`, removed, and so computed again)."""
        path = self.entries / f"{key}.json"
        try:
            entry = json.loads(path.read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError):
            entry = None
        data, tiles = (entry.get("data"), entry.get("tiles")) if isinstance(entry, dict) else (None, None)
        if not isinstance(entry, dict) or entry.get("format") != FORMAT or not isinstance(tiles, list) \
                or entry.get("checksum") != _checksum([data, tiles]):
            cachecheck.note("figure data", path)
            return None
        for name in tiles:
            if not self._tile_ok(name):
                cachecheck.note("figure tile", self.tile_path(name))
                return None
        return data

    def put(self, key: str, data: dict, tiles: dict[str, bytes]) -> None:
        """Store a figure: its tiles first, then the entry that refers to them."""
        for name, png in tiles.items():
            if tile_name(png) != name:
                raise ValueError(f"tile {name} does not match its content hash")
            path = self.tile_path(name)
            if not self._tile_ok(name):
                write_atomic(path, png)
        names = sorted(tiles)
        entry = {"format": FORMAT, "data": data, "tiles": names,
                 "checksum": _checksum([data, names])}
        write_atomic(self.entries / f"{key}.json",
                     json.dumps(entry, sort_keys=True).encode())

    def _tile_ok(self, name: str) -> bool:
        try:
            return tile_name(self.tile_path(name).read_bytes()) == name
        except OSError:
            return False
