"""Writing the site: into a temporary directory beside the output, then swapped in
with one rename, so a failed build leaves the previous site untouched and a reader
of the old site never sees half of a new one.

Unchanged pages are hard-linked from the previous site (copied where links are
not possible); the build manifest records which inputs made each output file.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from generator.files import _UMASK, write_atomic

from .guard import MARKER, marker_bytes

MANIFEST_VERSION = 1


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link `src` to `dst` (same bytes, no copy); copy across filesystems."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _stat(path: Path) -> list[int] | None:
    """[size, mtime_ns] of a regular file (not a symlink), else None."""
    try:
        st = path.lstat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns] if stat.S_ISREG(st.st_mode) else None


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


class OutputTree:
    """A new site being assembled in `<out>.tmp-PID-HEX` (marked from the start, so a
    killed build's tree is recognizably ours); `commit()` swaps it in."""

    def __init__(self, out_dir: Path, previous: dict[str, str], stats: dict | None = None):
        self.out_dir = out_dir
        self.previous = previous  # site path -> key, from the last successful build
        self.previous_stats = stats or {}  # site path -> [size, mtime_ns] as that build left it
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f"{out_dir.name}.tmp-{os.getpid()}-"))
        self.tmp.chmod(0o777 & ~_UMASK)  # mkdtemp makes it private; the site is served as it is
        (self.tmp / MARKER).write_bytes(marker_bytes("output"))
        self.keys: dict[str, str] = {}
        self.written: list[str] = []
        self.stats: dict[str, list[int]] = {}
        self.reused = 0

    def reuse(self, rel: str, key: str) -> bool:
        """Link the previous build's file for `rel` if it was made from the same inputs and
        nobody changed it since (a hand edit in the output is not kept)."""
        old = self.out_dir / rel
        now = _stat(old)
        if self.previous.get(rel) != key or now is None or now != self.previous_stats.get(rel):
            return False
        link_or_copy(old, self.tmp / rel)
        self.keys[rel] = key
        self.reused += 1
        return True

    def write(self, rel: str, data: str | bytes, key: str) -> None:
        """Write a freshly rendered file."""
        path = self.tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        self.keys[rel] = key
        self.written.append(rel)

    def add_file(self, rel: str, src: Path) -> None:
        """Publish an existing file (asset, image, figure tile) at `rel`: the file itself,
        never a symlink (the caller has checked where it leads)."""
        link_or_copy(Path(src).resolve(), self.tmp / rel)

    def commit(self) -> None:
        """Swap the new tree in; the old one is deleted in the background."""
        out = self.out_dir
        self.stats = {rel: _stat(self.tmp / rel) for rel in self.keys}
        old = out.with_name(f"{out.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        if out.exists() and _exchange(self.tmp, out):
            os.rename(self.tmp, old)
        else:
            if out.exists():
                os.rename(out, old)
            os.rename(self.tmp, out)
        remove_stale(out)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def remove_stale(out_dir: Path) -> None:
    """Delete previous trees (`<out>.old-*`) in a detached process: removing a few
    hundred directories costs more than a whole no-op build on slow disks."""
    stale = [str(p) for p in out_dir.parent.glob(f"{out_dir.name}.old-*")]
    if not stale:
        return
    rm = shutil.which("rm")
    if rm is None:
        for p in stale:
            shutil.rmtree(p, ignore_errors=True)
        return
    subprocess.Popen([rm, "-rf", "--", *stale], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)


def load_manifest(path: Path, out_dir: Path) -> dict:
    """The last build into `out_dir`: {"files": {path: key}, "assets": {page: [files]},
    "stats": {path: [size, mtime_ns]}}.

    Empty when absent, unreadable, from another version or for another output.
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION or data.get("out") != str(out_dir):
        return {}
    return {k: v for k, v in data.items() if k in ("files", "assets", "stats") and isinstance(v, dict)}


def save_manifest(path: Path, out_dir: Path, data: dict) -> None:
    """Write the manifest atomically (a crash leaves the previous one or none)."""
    write_atomic(path, json.dumps({"version": MANIFEST_VERSION, "out": str(out_dir), **data}).encode())
