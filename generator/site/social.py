"""Link previews: the Open Graph and Twitter card of a post (title, description, its
first figure or image as the picture, the page's URL), absolute when `url` is set."""
from __future__ import annotations

import html as htmllib
import re

from .absurl import absolute

_IMG = re.compile(r"<img\b[^>]*>", re.S)
LARGE = 300  # px: Twitter's large card wants a picture at least this wide


def _attr(tag: str, name: str) -> str:
    m = re.search(rf'\s{name}="([^"]*)"', tag)
    return htmllib.unescape(m.group(1)) if m else ""


def card(post, html: str, config) -> dict:
    """The values the post template's meta tags show; `html` is the page's body."""
    page = config.full_url(post.url_path)
    out = {"title": post.title, "description": post.description or config.description,
           "url": page if config.url else "", "image": "", "image_alt": "", "twitter": "summary"}
    tag = next((t.group(0) for t in _IMG.finditer(html) if not _attr(t.group(0), "src").startswith("data:")), "")
    if tag:
        src = _attr(tag, "src")
        out["image"] = absolute(src, page) if config.url else src
        out["image_alt"] = _attr(tag, "alt")
        if _width(tag, src, config) >= LARGE:
            out["twitter"] = "summary_large_image"
    return out


def _width(tag: str, src: str, config) -> int:
    """The picture's width: its `width` attribute, else the site file's own (0 if unknown)."""
    width = _attr(tag, "width")
    if width.isdigit():
        return int(width)
    if not src.startswith(config.base_url):
        return 0
    path = (config.site_dir / src[len(config.base_url):].split("?")[0]).resolve()
    if not path.is_relative_to(config.site_dir) or not path.is_file():
        return 0
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.width
    except (OSError, UnidentifiedImageError):
        return 0
