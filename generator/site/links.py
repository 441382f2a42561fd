"""Local links in a rendered body: resolved against the post's folder, published at
their site-relative path, and prefixed with `base_url` so the site works under
`/REPO/`. A missing image is a build error at the reference's file:line:col.
"""
from __future__ import annotations

import html as htmllib
import re
from pathlib import Path

from .config import SiteConfig
from .errors import BuildError, Pos, offset_to_pos

_ATTR = re.compile(r"""(<[A-Za-z][\w-]*\b[^<>]*?\s(src|href)=)("([^"]*)"|'([^']*)')""")
_EXTERNAL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:|//|#)")


def _where(post, url: str) -> Pos:
    """Position of `url` in the post source (first reference), for error messages."""
    for needle in (f"({url}", f'"{url}"', f"'{url}'", f"<{url}>", url):
        i = post.body.find(needle)
        if i >= 0:
            return offset_to_pos(post.body, i + (len(needle) - len(url) if needle != url else 0),
                                 post.shown, post.body_line)
    return Pos(post.shown, post.body_line + 1, 1)


def resolve_local(url: str, post, config: SiteConfig) -> Path | None:
    """The file a local URL names (site-absolute or relative to the post), or None."""
    path = url.split("#", 1)[0].split("?", 1)[0]
    if not path:
        return None
    from urllib.parse import unquote

    path = unquote(path)
    base = config.site_dir if path.startswith("/") else post.source.parent
    return (base / path.lstrip("/")).resolve()


def rewrite_links(html: str, post, config: SiteConfig, post_urls: dict) -> tuple[str, list[str]]:
    """Rewrite local `src`/`href` in `html`; return it and the site files it references."""
    assets: list[str] = []
    site = config.site_dir

    def sub(m: re.Match) -> str:
        raw = m.group(4) if m.group(4) is not None else m.group(5)
        url = htmllib.unescape(raw)
        if not url or _EXTERNAL.match(url):
            return m.group(0)
        target = resolve_local(url, post, config)
        if target is None:
            return m.group(0)
        suffix = url[len(url.split("#", 1)[0].split("?", 1)[0]):]
        if not target.is_relative_to(site):
            raise BuildError(f"'{url}' points outside the site directory {site}", _where(post, url))
        if target in post_urls:
            new = config.abs_url(post_urls[target]) + suffix
        elif target.is_file():
            rel = target.relative_to(site).as_posix()
            assets.append(rel)
            new = config.abs_url(rel) + suffix
        elif m.group(2) == "src":
            raise BuildError(f"missing file '{url}' (looked for {target})", _where(post, url))
        elif url.startswith("/"):
            new = config.abs_url(url)
        else:
            return m.group(0)
        return f'{m.group(1)}"{htmllib.escape(new)}"'

    return _ATTR.sub(sub, html), sorted(set(assets))
