"""The figure cache: round trip, damage detection, atomic writes."""
import json

import pytest

from generator.site.figures.cache import FigureCache, tile_name


def _tile(n: int) -> bytes:
    return b"\x89PNG fake tile %d" % n


def test_round_trip(tmp_path):
    cache = FigureCache(tmp_path)
    tiles = {tile_name(_tile(i)): _tile(i) for i in range(3)}
    data = {"tree": {"unit": "fc6_1", "tile": next(iter(tiles))}, "x": 1.5}
    cache.put("k1", data, tiles)
    assert cache.get("k1") == data
    assert cache.get("other") is None
    for name, png in tiles.items():
        assert cache.tile_path(name).read_bytes() == png
    # nothing temporary left behind
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_damaged_entry_is_absent(tmp_path):
    cache = FigureCache(tmp_path)
    cache.put("k", {"v": 1}, {})
    path = tmp_path / "entries" / "k.json"
    entry = json.loads(path.read_text())
    entry["data"]["v"] = 2  # edited without updating the checksum
    path.write_text(json.dumps(entry))
    assert cache.get("k") is None
    assert not path.exists()  # removed (reported once, see cachecheck), computed again
    cache.put("k", {"v": 1}, {})
    path.write_bytes(path.read_bytes()[:10])  # truncated
    assert cache.get("k") is None


def test_damaged_or_missing_tile_is_absent(tmp_path):
    cache = FigureCache(tmp_path)
    png = _tile(7)
    cache.put("k", {"v": 1}, {tile_name(png): png})
    assert cache.get("k") == {"v": 1}
    cache.tile_path(tile_name(png)).write_bytes(b"garbage")
    assert cache.get("k") is None
    cache.put("k", {"v": 1}, {tile_name(png): png})
    cache.tile_path(tile_name(png)).unlink()
    assert cache.get("k") is None
    cache.put("k", {"v": 1}, {tile_name(png): png})  # recompute repairs it
    assert cache.get("k") == {"v": 1}


def test_tile_names_must_match_content(tmp_path):
    with pytest.raises(ValueError):
        FigureCache(tmp_path).put("k", {}, {"0" * 24 + ".png": b"abc"})
