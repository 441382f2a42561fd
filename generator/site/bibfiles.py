"""A post's BibTeX files: which they are, the hash of their bytes (part of the post
body's cache key, computed without importing Markdown or pybtex), and parsing them with
pybtex into one-line errors at the file's line and column."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .errors import BuildError, Pos, display_path, offset_to_pos


def bib_paths(post, config) -> list[tuple[Path, Pos]]:
    """The post's BibTeX files and where each is named (front matter first, then site.toml)."""
    own = post.meta.get("bibliography")
    if own:
        names = own if isinstance(own, list) else [own]
        line = next((i + 2 for i, text in enumerate(post_front_matter(post))
                     if text.startswith("bibliography")), 1)
        return [(post.source.parent / str(n), Pos(post.shown, line, 1)) for n in names]
    if config.bibliography:
        where = Pos(str(config.config_path or "site.toml"), 1, 1)
        return [(config.site_dir / config.bibliography, where)]
    return []


def post_front_matter(post) -> list[str]:
    """The front matter's lines (bibliography errors point at its key)."""
    try:
        text = post.source.read_text(encoding="utf-8")
    except OSError:
        return []
    return text.split("\n")[1:post.body_line]


def bib_key(post, config) -> str:
    """Hash of the bytes of the post's BibTeX files: editing one re-renders the post."""
    h = hashlib.sha256()
    for path, _ in bib_paths(post, config):
        try:
            h.update(str(path).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            h.update(str(path).encode() + b"\0missing")
    return h.hexdigest()


def load_bib(path: Path, where: Pos):
    """A BibTeX file parsed by pybtex; errors at the file's line and column."""
    from pybtex.database import parse_string
    from pybtex.exceptions import PybtexError
    from pybtex.scanner import PybtexSyntaxError

    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BuildError(f"bibliography file {shown} not found", where) from None
    except (OSError, UnicodeDecodeError) as e:
        raise BuildError(f"bibliography file {shown} cannot be read ({e})", where) from None
    try:
        return parse_string(text, "bibtex")
    except PybtexSyntaxError as e:
        _, line, col = e.parser.get_error_context(e.error_context_info)
        msg = str(e).split(": ", 1)[-1].splitlines()[0]
        raise BuildError(f"malformed BibTeX: {msg}", Pos(shown, line or 1, max(col or 1, 1))) from None
    except PybtexError as e:
        key = re.search(r": (\S+)$", str(e))
        at = text.rfind(key.group(1)) if key else -1
        pos = offset_to_pos(text, at, shown) if at >= 0 else Pos(shown, 1, 1)
        raise BuildError(f"BibTeX: {e}", pos) from None
