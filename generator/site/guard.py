"""What a build may delete, where it may write and what it may publish.

A build replaces its output folder whole and `clean` removes output and cache, so
both must be folders featuretree made: each carries a marker file (`MARKER`), and an
unmarked non-empty one is refused (`build --force` takes it over). Output and cache
may not be system folders, the home folder or its dot-folders, nor lie in or over the
site's sources. One lock per site serializes builds; temporary trees of killed
builds are found by their name (`<out>.tmp-PID-*`) and removed once PID is gone.
Files published from the site's folders must resolve inside the site.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from generator.files import write_atomic

from .errors import BuildError, Pos, display_path

MARKER = ".featuretree-output"
# Folders a build may never be pointed at (nor at one that holds them).
SYSTEM = ("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32",
          "/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp",
          "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/share", "/var", "/var/lib", "/var/log")
# The site's own source folders (besides `posts`, which site.toml names).
SOURCE_DIRS = ("images", "static", "templates", "models", "assets")
# What a cache made before markers existed holds at its top (see `_legacy_cache`).
CACHE_NAMES = {"site", "figures", "index", "build.lock", MARKER}
LOCK_WAIT_S = 600.0


def _system_folders() -> set[Path]:
    """SYSTEM, the lib* folders at /, the home folder and its dot-folders, raw and resolved."""
    home = Path.home()
    found = {Path(p) for p in SYSTEM} | {home, home / ".ssh"}
    found |= {p for p in Path("/").glob("lib*")}
    try:
        found |= {p for p in home.iterdir() if p.name.startswith(".")}
    except OSError:
        pass
    return found | {p.resolve() for p in found}


def _place_problem(p: Path, site_dir: Path, sources: list[Path]) -> str | None:
    """Why folder `p` may not be an output or cache folder, or None."""
    if p == site_dir or site_dir.is_relative_to(p):
        return f"would contain the site sources ({site_dir})"
    for src in sources:
        if p == src or p.is_relative_to(src) or src.is_relative_to(p):
            return f"overlaps the site's source folder {src}"
    home = Path.home()
    for sys_dir in sorted(_system_folders()):
        if p == sys_dir:
            return "is a system folder"
        if sys_dir.is_relative_to(p):
            return f"holds the system folder {sys_dir}"
        if sys_dir.parent == home and sys_dir.name.startswith(".") and p.is_relative_to(sys_dir):
            return f"lies inside {sys_dir}"
    return None


def check_places(site_dir: Path, posts_dir: Path, places: dict[str, tuple[Path, str, Pos | None]]) -> None:
    """Refuse output/cache folders (name -> (path, key or option, position)) that would
    overwrite the sources, a system folder or each other."""
    sources = [posts_dir] + [site_dir / d for d in SOURCE_DIRS]
    sources += [s.resolve() for s in sources if s.exists()]
    for name, (p, label, pos) in places.items():
        why = _place_problem(p, site_dir, sources)
        if why is None and name == "cache":
            out = places["output"][0]
            if p == out or p.is_relative_to(out) or out.is_relative_to(p):
                why = f"overlaps the output folder {out}"
        if why:
            raise BuildError(f"{label} {p} {why}; choose a separate folder such as _site", pos)


def is_marked(folder: Path) -> bool:
    """Whether `folder` carries featuretree's marker (a plain file, JSON)."""
    marker = folder / MARKER
    try:
        if marker.is_symlink():
            return False
        return json.loads(marker.read_bytes()).get("featuretree") == 1
    except (OSError, ValueError, AttributeError):
        return False


def marker_bytes(kind: str) -> bytes:
    """The marker's content: the same for every build (outputs compare byte for byte)."""
    return json.dumps({"featuretree": 1, "kind": kind}).encode() + b"\n"


def mark(folder: Path, kind: str) -> None:
    write_atomic(folder / MARKER, marker_bytes(kind))


def _empty(folder: Path) -> bool:
    return not any(folder.iterdir())


def _legacy_output(out: Path, previous_files: dict) -> bool:
    """An output built before markers existed: this site's manifest lists every top entry."""
    tops = {rel.split("/", 1)[0] for rel in previous_files}
    return bool(tops) and all(p.name in tops for p in out.iterdir())


def _legacy_cache(cache: Path) -> bool:
    """A cache made before markers existed: only the names featuretree puts there."""
    return all(p.name in CACHE_NAMES for p in cache.iterdir())


def claim_output(out: Path, previous_files: dict, force: bool) -> None:
    """Refuse to replace a non-empty output folder featuretree did not make."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise BuildError(f"output {out} is not a folder; remove it or choose another output")
    if not out.exists() or force or is_marked(out) or _empty(out) or _legacy_output(out, previous_files):
        return
    raise BuildError(f"output folder {out} is not empty and was not made by featuretree "
                     f"(no {MARKER}); pass --force to replace it")


def claim_cache(cache: Path, force: bool) -> None:
    """Mark the cache folder (creating it); refuse a non-empty one featuretree did not make."""
    if cache.exists() and not is_marked(cache):
        if not cache.is_dir():
            raise BuildError(f"cache {cache} is not a folder; remove it or choose another cache")
        if not (force or _empty(cache) or _legacy_cache(cache)):
            raise BuildError(f"cache folder {cache} is not empty and was not made by featuretree "
                             f"(no {MARKER}); pass --force to use it")
    if not is_marked(cache):
        mark(cache, "cache")


def build_lock(cache: Path, site_dir: Path, quiet: bool):
    """The site's build lock (held for the whole build: cache writes and the swap).

    Waits for a running build, saying so once; after LOCK_WAIT_S it gives up in one line.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(str(cache / "build.lock"))

    class _Held:
        def __enter__(self):
            try:
                lock.acquire(timeout=0)
            except Timeout:
                if not quiet:
                    import sys

                    print(f"waiting for another build of {display_path(site_dir)} to finish",
                          file=sys.stderr, flush=True)
                try:
                    lock.acquire(timeout=LOCK_WAIT_S)
                except Timeout:
                    raise BuildError(f"another build of {display_path(site_dir)} is running "
                                     f"(lock {cache / 'build.lock'}); try again when it ends") from None
            return lock

        def __exit__(self, *exc):
            lock.release()

    return _Held()


def try_lock(cache: Path):
    """The build lock taken without waiting (for `clean`), or None when a build holds it."""
    from filelock import FileLock, Timeout

    if not cache.is_dir():
        return None
    lock = FileLock(str(cache / "build.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise BuildError(f"a build of this site is running (lock {cache / 'build.lock'}); "
                         "try again when it ends") from None
    return lock


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tmp_pattern(out: Path) -> re.Pattern:
    """Names of the build's temporary trees beside `out`: `<out>.tmp-PID-RANDOM` (mkdtemp)."""
    return re.compile(rf"{re.escape(out.name)}\.tmp-(\d+)-[a-z0-9_]+")


def remove_dead_tmp(out: Path) -> list[Path]:
    """Remove temporary trees of builds that were killed (PID gone); only those that are
    empty or carry the marker, so nothing else that happens to match is touched."""
    pattern, removed = tmp_pattern(out), []
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = pattern.fullmatch(p.name)
        if not m or p.is_symlink() or not p.is_dir() or _alive(int(m.group(1))):
            continue
        if is_marked(p) or _empty(p):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def site_files(root: Path, site_dir: Path) -> list[Path]:
    """Files under `root` to publish, sorted, hidden ones skipped. A file or folder that
    resolves outside `site_dir` is refused; symlinks inside it are followed (published
    as the files they name)."""
    found: list[Path] = []
    seen: set[Path] = set()

    def inside(p: Path) -> Path:
        real = p.resolve()
        if not real.is_relative_to(site_dir):
            raise BuildError(f"{display_path(p)} is a symlink to {real}, outside the site "
                             f"{site_dir}; copy the file into the site instead")
        return real

    def walk(d: Path) -> None:
        real = inside(d)
        if real in seen:
            return
        seen.add(real)
        for p in sorted(d.iterdir()):
            if p.name.startswith("."):
                continue
            if p.is_dir():
                walk(p)
            elif p.is_file():
                inside(p)
                found.append(p)
            elif p.is_symlink():
                raise BuildError(f"{display_path(p)} is a broken symlink")

    walk(root)
    return sorted(found)
