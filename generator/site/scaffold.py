"""`featuretree init DIR`: a new site that builds at once.

The files come from `new_site/` beside this module (shipped as package data): a commented
`site.toml`, a first post with figures on the default model and a shipped image,
`images/`, `models/` with a commented example factory, a `.gitignore` for output and
cache, a `requirements.txt` naming featuretree, and a GitHub Pages workflow made for the
site's own repository. Names starting `dot-` become dot-files (so packaging keeps them);
`__TITLE__`, `__DATE__`, `__FEATURETREE__`, `__TORCH__`, `__TORCHVISION__` are filled in.
Torch-free.
"""
from __future__ import annotations

import json
from datetime import date
from importlib import metadata
from pathlib import Path

from .errors import BuildError, display_path

SOURCE = Path(__file__).resolve().parent / "new_site"
BINARY = {".png", ".jpg", ".jpeg"}
TORCH, TORCHVISION = "2.14.1", "0.29.1"   # what requirements.txt pins, when none is installed


def init_site(target: str | Path, today: date | None = None) -> list[Path]:
    """Write the starter site into `target` (new or empty); the files written, in order."""
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        what = "is not a folder" if not target.is_dir() else "is not empty"
        raise BuildError(f"{display_path(target)} {what}; featuretree init makes a site in a "
                         "new or empty folder")
    values = _values(target, today or date.today())
    written = []
    for src in sorted(p for p in SOURCE.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        dest = target / _fill(_dotted(src.relative_to(SOURCE)).as_posix(), values)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix.lower() in BINARY:
            dest.write_bytes(src.read_bytes())
        else:
            dest.write_text(_fill(src.read_text(encoding="utf-8"), values), encoding="utf-8")
        written.append(dest)
    return written


def _dotted(rel: Path) -> Path:
    return Path(*[("." + part[4:]) if part.startswith("dot-") else part for part in rel.parts])


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def _values(target: Path, today: date) -> dict[str, str]:
    name = target.resolve().name.replace("-", " ").replace("_", " ").strip() or "My notes"
    title = name[:1].upper() + name[1:]
    return {
        "__TITLE__": title.replace("\\", "\\\\").replace('"', '\\"'),
        "__DATE__": today.isoformat(),
        "__FEATURETREE__": featuretree_requirement(),
        "__TORCH__": _version("torch", TORCH),
        "__TORCHVISION__": _version("torchvision", TORCHVISION),
    }


def _version(dist: str, fallback: str) -> str:
    try:
        return metadata.version(dist).split("+", 1)[0]
    except metadata.PackageNotFoundError:
        return fallback


def featuretree_requirement() -> str:
    """The requirement line that installs this featuretree in the site's CI: the git URL
    and commit it was installed from, when pip recorded one (PEP 610)."""
    from generator import __version__

    try:
        direct = metadata.distribution("featuretree").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        direct = None
    info = json.loads(direct) if direct else {}
    vcs = info.get("vcs_info") or {}
    if vcs.get("vcs") == "git" and info.get("url"):
        url = info["url"]
        return f"featuretree @ git+{url}@{vcs['commit_id']}" if vcs.get("commit_id") else \
            f"featuretree @ git+{url}"
    return ("# featuretree was installed from a local folder, so write where CI gets it, e.g.\n"
            "# featuretree @ git+https://github.com/OWNER/featuretree\n"
            f"featuretree=={__version__}")
