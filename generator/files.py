"""File helpers shared by the engine and the site (neither imports the other): atomic
writes, sealed cache files and content digests."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # mkstemp makes the file private; published tiles are hard-linked into the site,
        # where a web server running as another user must be able to read them
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


SEAL = b"featuretree-sealed-1 "


class Damaged(Exception):
    """A cache file that exists but is not what was written (truncated, emptied, garbled)."""


def write_sealed(path: Path, data: bytes) -> None:
    """Write `data` atomically after a first line holding its sha256: a cache file whose
    bytes were damaged afterwards is then told from a good one (`read_sealed`)."""
    write_atomic(path, SEAL + hashlib.sha256(data).hexdigest().encode() + b"\n" + data)


def read_sealed(path: Path) -> bytes | None:
    """The data of a file `write_sealed` wrote; None when there is none; `Damaged` when
    the file is there but its bytes do not match their seal (or cannot be read)."""
    try:
        blob = Path(path).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise Damaged(f"{path}: {e.strerror or e}") from None
    head, sep, data = blob.partition(b"\n")
    if not sep or head != SEAL + hashlib.sha256(data).hexdigest().encode():
        raise Damaged(str(path))
    return data


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def json_digest(value) -> str:
    """Hex SHA-256 of `value` as canonical JSON (sorted keys, compact, `str` for the rest):
    the one way cache keys and checksums are made from data."""
    import json

    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def sources_digest(root: Path, recursive: bool = False, skip: tuple[str, ...] = ()) -> str:
    """Hex SHA-256 of the `*.py` files under `root` (names relative to it, and bytes),
    except `skip` (relative posix paths): how code versions key caches."""
    root = Path(root)
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py") if recursive else root.glob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in skip or "__pycache__" in path.parts:
            continue
        h.update(rel.encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


def tile_name(png: bytes) -> str:
    """A figure tile's file name: the hash of its bytes, so equal tiles share one file.
    The engine names tiles with it and the site's cache checks them with it."""
    return hashlib.sha256(png).hexdigest()[:24] + ".png"
