"""The site's search index, built at build time: one document per post (title, tags,
description, the body's text) as `search.json`, which the search page's script hands to
MiniSearch (vendored from npm like KaTeX). Nothing is fetched from outside the site, and
every URL in it carries `base_url`."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser

SKIP = {"script", "style", "svg", "math", "figure", "pre"}  # code, figures and formulas are not prose
_SKIP_CLASSES = {"katex", "headerlink", "footnote-backref", "footnote-ref"}
_BLOCKS = {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "section", "td", "th", "dt", "dd",
           "blockquote", "figcaption", "tr", "ol", "ul", "table"}
MAX_TEXT = 20000  # characters of body text indexed per post


class _Text(HTMLParser):
    """The readable text of an HTML fragment, skipping code blocks and figures; a formula
    reads as its TeX source (KaTeX's annotation)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.stack: list[bool] = []  # per open element: whether it is skipped
        self.tex = False  # inside KaTeX's <annotation>: the formula's TeX

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "img", "hr", "input", "meta", "link", "source", "wbr"):
            return
        classes = set((dict(attrs).get("class") or "").split())
        self.stack.append(tag in SKIP or bool(classes & _SKIP_CLASSES))
        self.tex = tag == "annotation"

    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()
        if tag in _BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data):
        if not any(self.stack) or self.tex:
            self.parts.append(data)
        self.tex = False


def page_text(html: str) -> str:
    """Body HTML -> plain text (whitespace collapsed, figure placeholders dropped)."""
    parser = _Text()
    parser.feed(re.sub(r"ftfigure\d+z[0-9a-f]+", " ", html))
    parser.close()
    return re.sub(r"\s+", " ", "".join(parser.parts)).strip()[:MAX_TEXT]


def search_json(posts, body_text, url) -> str:
    """`search.json`: `body_text(post)` gives a post's body as `page_text` reads it,
    `url(path)` a base_url-prefixed URL."""
    docs = [{"id": i, "title": p.title, "url": url(p.url_path), "date": p.date.strftime("%Y-%m-%d"),
             "description": p.description, "tags": " ".join(p.tags), "text": body_text(p)}
            for i, p in enumerate(posts)]
    return json.dumps({"version": 1, "documents": docs}, ensure_ascii=False, separators=(",", ":"))
