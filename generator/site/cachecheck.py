"""Every cache entry the site reads is checked before use.

A cache file can be damaged behind the build's back (a disk, a sync tool, a hand edit):
trusting it published truncated figures or crashed every build until `clean`. Entries
are written sealed (`files.write_sealed`) or are named by their content's hash; one that
fails its check is removed, recomputed by the caller and reported once, in one line at
the end of the build (`take`). The record is per process and cleared by each build.
"""
from __future__ import annotations

import json
from pathlib import Path

from generator.files import Damaged, read_sealed, write_sealed

from .errors import display_path

_damaged: list[tuple[str, Path]] = []


def note(kind: str, path: Path) -> None:
    """Record a damaged entry of `kind` and remove it, so it is reported only once."""
    path = Path(path)
    _damaged.append((kind, path))
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def read(path: Path, kind: str) -> bytes | None:
    """A sealed entry's bytes; None when absent or damaged (then noted)."""
    try:
        return read_sealed(path)
    except Damaged:
        note(kind, path)
        return None


def read_json(path: Path, kind: str, want=dict):
    """A sealed JSON entry of type `want`; None when absent or damaged (then noted)."""
    data = read(path, kind)
    if data is None:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        value = None
    if not isinstance(value, want):
        note(kind, path)
        return None
    return value


def read_text(path: Path, kind: str) -> str | None:
    data = read(path, kind)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        note(kind, path)
        return None


def write_json(path: Path, value) -> None:
    write_sealed(path, json.dumps(value).encode())


def write_text(path: Path, text: str) -> None:
    write_sealed(path, text.encode("utf-8"))


def reset() -> None:
    _damaged.clear()


def take() -> list[str]:
    """The build's one warning line about damaged entries (none when all were intact)."""
    found = list(dict.fromkeys(_damaged))
    _damaged.clear()
    if not found:
        return []
    kinds: dict[str, int] = {}
    for kind, _ in found:
        kinds[kind] = kinds.get(kind, 0) + 1
    what = ", ".join(f"{n} {k}" for k, n in kinds.items())
    first = display_path(found[0][1])
    return [f"{len(found)} damaged cache entr{'y was' if len(found) == 1 else 'ies were'} "
            f"recomputed ({what}), e.g. {first}"]
