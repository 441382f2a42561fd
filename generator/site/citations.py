"""Citations as pandoc writes them, against BibTeX files read by pybtex.

`[@key]`, `[see @key, p. 3; @other]` and `[-@key]` (year only) in prose become links
to a bibliography appended to the post: numeric (`[1, p. 3; 2]`, entries in order of
first citation) or author-year (`(Zeiler and Fergus, 2014, p. 3)`, entries sorted by
author and year), per `site.toml`'s `citation_style`. The BibTeX file is the post's
`bibliography:` (relative to the post; a list is allowed) or site.toml's (relative to
the site). An unknown key, a missing or malformed file is one line with a position.
The files' bytes are part of the post body's cache key (`bibfiles.bib_key`).
"""
from __future__ import annotations

import hashlib
import re

from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor

from .bibfiles import bib_paths, load_bib
from .crossrefs import KEY, PREFIXES
from .errors import BuildError, Pos, display_path, offset_to_pos
from .textscan import first_outside_code

_ITEM_KEY = re.compile(rf"(?<![\w@.])(?P<minus>-?)@(?P<key>{KEY})")
# Not followed by `(`, `[` or `:` (a link or a reference-link definition); a footnote `[^1]` may follow.
_GROUP = re.compile(rf"\[(?P<body>[^\[\]]*?(?<![\w@.])-?@{KEY}[^\[\]]*)\](?![(:]|\[(?!\^))")


class _CitePattern(InlineProcessor):
    def __init__(self, md, cites: "Citations"):
        super().__init__(_GROUP.pattern, md)
        self.cites = cites

    def handleMatch(self, m, data):
        items = parse_group(m.group("body"))
        if items is None:
            return None, None, None
        return self.md.htmlStash.store(self.cites.placeholder(items)), m.start(0), m.end(0)


def parse_group(body: str) -> list[tuple[str, str, bool, str]] | None:
    """`see @a, p. 3; @b` -> [(prefix, key, suppress_author, locator)]; None when it is no
    citation (an item without a key, or a cross-reference such as @fig-x)."""
    items = []
    for part in body.split(";"):
        m = _ITEM_KEY.search(part)
        if not m or m.group("key").split("-", 1)[0] in PREFIXES and "-" in m.group("key"):
            return None
        prefix = part[:m.start()].strip()
        locator = part[m.end():].strip().lstrip(",").strip()
        items.append((prefix, m.group("key"), bool(m.group("minus")), locator))
    return items


class CitationExtension(Extension):
    """Registers `[@key]` above links (so it is not read as a reference link)."""

    def __init__(self, cites: "Citations", **kwargs):
        self.cites = cites
        super().__init__(**kwargs)

    def extendMarkdown(self, md):
        md.inlinePatterns.register(_CitePattern(md, self.cites), "ft_cite", 175)


class Citations:
    """The citations of the page being converted, resolved by `finish`."""

    def __init__(self, config):
        self.config = config
        self._bibs: dict[tuple, object] = {}
        self.start(None, "")

    def start(self, post, salt: str) -> None:
        self.post, self.salt = post, salt
        self.groups: list[list] = []

    def placeholder(self, items) -> str:
        self.groups.append(items)
        return f"ftcite{len(self.groups) - 1}z{self.salt}"

    def finish(self, html: str) -> str:
        """Replace the placeholders in page order and append the bibliography."""
        if not self.groups:
            return html
        entries = self._entries()
        order: list[str] = []
        token = re.compile(rf"ftcite(\d+)z{re.escape(self.salt)}")
        for m in token.finditer(html):
            for _, key, _, _ in self.groups[int(m.group(1))]:
                if key not in entries:
                    raise BuildError(self._unknown(key, entries), self._pos(key))
                if key not in order:
                    order.append(key)
        from .bibstyle import Bibliography

        bib = Bibliography(entries, order, self.config.citation_style)
        html = token.sub(lambda m: bib.cite(self.groups[int(m.group(1))]), html)
        refs = bib.html(lambda key, err: BuildError(f"BibTeX entry '{key}': {err}", self._entry_pos(key)))
        i = html.find('<div class="footnote">')
        return html + refs if i < 0 else html[:i] + refs + html[i:]

    def _entries(self) -> dict:
        paths = bib_paths(self.post, self.config)
        if not paths:
            key = self.groups[0][0][1]
            raise BuildError(f"citation '@{key}' but no bibliography: set 'bibliography: refs.bib' "
                             "in the front matter or site.toml", self._pos(key))
        entries: dict = {}
        for path, where in paths:
            data = path.read_bytes() if path.is_file() else None
            cache = (str(path), hashlib.sha256(data).hexdigest() if data is not None else "")
            if cache not in self._bibs:
                self._bibs[cache] = load_bib(path, where)
            for key, entry in self._bibs[cache].entries.items():
                entries.setdefault(key, (entry, path))
        return entries

    def _unknown(self, key: str, entries: dict) -> str:
        import difflib

        close = difflib.get_close_matches(key, list(entries), n=1)
        did = f" (did you mean '@{close[0]}'?)" if close else ""
        files = ", ".join(sorted({display_path(p) for _, p in entries.values()})) or "the bibliography"
        return f"unknown citation key '@{key}'{did}: not in {files}"

    def _pos(self, key: str) -> Pos:
        post = self.post
        pattern = re.compile(rf"(?<![\w@.])-?@{re.escape(key)}(?!\w|[:.#$%&\-+?<>~/]\w)")
        i = max(first_outside_code(post.body, pattern), 0)
        return offset_to_pos(post.body, i, post.shown, post.body_line)

    def _entry_pos(self, key: str) -> Pos:
        path = self._entries()[key][1]
        text = path.read_text(encoding="utf-8")
        m = re.search(rf"@\w+\s*\{{\s*{re.escape(key)}\s*,", text)
        return offset_to_pos(text, m.start() if m else 0, display_path(path))
