"""URLs as a reader outside the site needs them (feed readers, link previews): absolute,
resolved against the page they come from. Only possible when `site.toml` sets `url`."""
from __future__ import annotations

import html as htmllib
import re
from urllib.parse import urljoin

_ATTR = re.compile(r"""(<[A-Za-z][\w-]*\b[^<>]*?\s(?:src|href|poster)=)("([^"]*)"|'([^']*)')""")
_SRCSET = re.compile(r"""(\ssrcset=)("([^"]*)"|'([^']*)')""")


def absolute(url: str, page_url: str) -> str:
    """`url` resolved against `page_url` (unchanged for data: and other schemes)."""
    return urljoin(page_url, url)


def absolute_html(html: str, page_url: str) -> str:
    """Every src/href/poster (and srcset) in `html` made absolute against `page_url`."""
    def one(m: re.Match) -> str:
        raw = m.group(3) if m.group(3) is not None else m.group(4)
        return f'{m.group(1)}"{htmllib.escape(absolute(htmllib.unescape(raw), page_url))}"'

    def srcset(m: re.Match) -> str:
        raw = htmllib.unescape(m.group(3) if m.group(3) is not None else m.group(4))
        parts = []
        for item in raw.split(","):
            bits = item.strip().split(None, 1)
            if bits:
                parts.append(" ".join([absolute(bits[0], page_url)] + bits[1:]))
        return f'{m.group(1)}"{htmllib.escape(", ".join(parts))}"'

    return _SRCSET.sub(srcset, _ATTR.sub(one, html))
