"""Numbered figures and Quarto-style cross-references in one page.

Figures are numbered in page order: every figure directive, and every markdown figure
with an id starting `fig-` (an image alone in its paragraph with `{#fig-cat}`, which
becomes a `<figure>` captioned by its alt text, or a `<figure id="fig-...">` block).
`@fig-ID` becomes a link reading "Figure 3", `@sec-ID` one reading the heading's text,
`@eq-ID` one reading "Equation (2)" (the equation labelled `eq-ID`). References are
placeholders until the whole page is converted, since one may precede its target. An
unknown reference is a one-line error at its file:line:col; `a@fig-b.com` is an email
address, not a reference; code is never looked at (Python-Markdown stashes it first).
"""
from __future__ import annotations

import html as htmllib
import re

from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor

from .errors import BuildError, Pos, offset_to_pos
from .textscan import first_outside_code

# Pandoc's key syntax: inner punctuation only when a word character follows it.
KEY = r"[A-Za-z0-9_](?:\w|[:.#$%&\-+?<>~/](?=\w))*"
PREFIXES = ("fig", "sec", "eq")
_REF = rf"(?<![\w@.])@(?P<id>(?:{'|'.join(PREFIXES)})-{KEY})"
_ID = re.compile(r"fig-[A-Za-z0-9_](?:[\w\-:.]*\w)?")


def ref_pattern(ident: str) -> re.Pattern:
    """Where `@ident` is written (for error positions)."""
    return re.compile(rf"(?<![\w@.])@{re.escape(ident)}(?!\w|[:.#$%&\-+?<>~/]\w)")


class _RefPattern(InlineProcessor):
    def __init__(self, md, refs: "Crossrefs"):
        super().__init__(_REF, md)
        self.refs = refs

    def handleMatch(self, m, data):
        return self.md.htmlStash.store(self.refs.placeholder(m.group("id"))), m.start(0), m.end(0)


class CrossrefExtension(Extension):
    """Registers `@fig-/@sec-/@eq-` below citations (a `[@key]` is read first)."""

    def __init__(self, refs: "Crossrefs", **kwargs):
        self.refs = refs
        super().__init__(**kwargs)

    def extendMarkdown(self, md):
        md.inlinePatterns.register(_RefPattern(md, self.refs), "ft_crossref", 174)


_FIGURE_OR_TOKEN = r"(?P<tok>ftfigure(?P<i>\d+)z{salt})|(?P<img><p>\s*(?P<tag><img\b[^>]*\bid=\"fig-[^\"]*\"[^>]*>)\s*</p>)|(?P<fig><figure\b[^>]*\bid=\"(?P<fid>fig-[^\"]*)\"[^>]*>)"


class Crossrefs:
    """The figures, headings and references of the page being converted."""

    def __init__(self):
        self.start(None, "")

    def start(self, post, salt: str) -> None:
        self.post, self.salt = post, salt
        self.refs: list[str] = []
        self.targets: dict[str, str] = {}  # id -> link text

    def placeholder(self, ident: str) -> str:
        self.refs.append(ident)
        return f"ftxref{len(self.refs) - 1}z{self.salt}"

    def finish(self, html: str, equations: dict[str, str]) -> tuple[str, list[list]]:
        """Number the figures, resolve references; returns the HTML and, per figure
        directive, [number, anchor id] for `label_figure`."""
        html, directives = self._number(html)
        for m in re.finditer(r"<h([1-6])\b[^>]*\bid=\"([^\"]+)\"[^>]*>(.*?)</h\1>", html, re.S):
            text = re.sub(r"<a class=\"headerlink\".*?</a>|<[^>]+>", "", m.group(3))
            self.targets.setdefault(m.group(2), htmllib.unescape(text).strip())
        for label, shown in equations.items():
            self.targets.setdefault(label, f"Equation ({shown})")
        for i, ident in enumerate(self.refs):
            if ident not in self.targets:
                raise BuildError(self._unknown(ident), self._pos(ident))
            link = (f'<a class="xref" href="#{htmllib.escape(ident)}">'
                    f"{htmllib.escape(self.targets[ident])}</a>")
            html = html.replace(f"ftxref{i}z{self.salt}", link)
        return html, directives

    def _number(self, html: str) -> tuple[str, list[list]]:
        """Figures in page order: directive tokens, lone `{#fig-}` images, `<figure id=fig->`."""
        directives: dict[int, list] = {}
        count = 0
        pattern = re.compile(_FIGURE_OR_TOKEN.format(salt=re.escape(self.salt)))

        def one(m: re.Match) -> str:
            nonlocal count
            count += 1
            if m.group("tok"):
                i = int(m.group("i"))
                ident = self._directive_id(i) or f"figure-{count}"
                directives[i] = [count, ident]
                self._target(ident, count)
                return m.group(0)
            if m.group("img"):
                return self._image_figure(m.group("tag"), count)
            self._target(m.group("fid"), count)
            return m.group(0)

        html = pattern.sub(one, html)
        html = _label_figure_blocks(html, self.targets)
        n = len(self.post.directives) if self.post else 0
        return html, [directives.get(i, [0, ""]) for i in range(n)]

    def _target(self, ident: str, number: int) -> None:
        if ident in self.targets:
            raise BuildError(f"duplicate figure id '{ident}'", self._pos_of_id(ident))
        self.targets[ident] = f"Figure {number}"

    def _directive_id(self, i: int) -> str:
        ident = (self.post.params[i].get("id") or "") if i < len(self.post.params) else ""
        if ident and not _ID.fullmatch(ident):
            d = self.post.directives[i]
            at = re.search(r"(?<![\w-])id=", d.raw)
            raise BuildError(f"figure id '{ident}': start it with fig- and use letters, digits "
                             f"and - _ : . (e.g. fig-tree, referred to as @fig-tree)",
                             Pos(d.pos.path, d.pos.line, d.pos.col + (at.start() if at else 0)))
        return ident

    def _image_figure(self, tag: str, number: int) -> str:
        """`![A cat](cat.png){#fig-cat}` alone in a paragraph: a numbered figure, the alt text its caption."""
        ident = re.search(r'\bid="([^"]*)"', tag).group(1)
        self._target(ident, number)
        alt = re.search(r'\balt="([^"]*)"', tag)
        img = re.sub(r'\s+id="[^"]*"', "", tag, count=1)
        caption = f" {alt.group(1)}" if alt and alt.group(1) else ""
        return (f'<figure class="md-figure" id="{ident}">{img}<figcaption>'
                f'<span class="fig-label">Figure {number}.</span>{caption}</figcaption></figure>')

    def _unknown(self, ident: str) -> str:
        import difflib

        kind = {"fig": "figure", "sec": "heading", "eq": "equation"}[ident.split("-", 1)[0]]
        same = [t for t in self.targets if t.startswith(ident.split("-", 1)[0] + "-")]
        close = difflib.get_close_matches(ident, same, n=1)
        did = f" (did you mean '@{close[0]}'?)" if close else ""
        how = {"figure": "id=fig-NAME on a directive or {#fig-NAME} after an image",
               "heading": "{#sec-NAME} after a heading",
               "equation": "\\label{eq-NAME} inside display math"}[kind]
        return f"unknown reference '@{ident}'{did}: no {kind} on this page has that id ({how})"

    def _pos(self, ident: str) -> Pos:
        return self._at(ref_pattern(ident))

    def _pos_of_id(self, ident: str) -> Pos:
        return self._at(re.compile(rf"(?:id=|#){re.escape(ident)}(?![\w\-])"))

    def _at(self, pattern: re.Pattern) -> Pos:
        post = self.post
        i = max(first_outside_code(post.body, pattern), 0)
        return offset_to_pos(post.body, i, post.shown, post.body_line)


def _label_figure_blocks(html: str, targets: dict[str, str]) -> str:
    """A `<figure id="fig-...">` block written in HTML gets its number before its caption."""
    def one(m: re.Match) -> str:
        label = targets.get(m.group(2))
        if 'class="fig-label"' in m.group(0):
            return m.group(0)
        return label_figure(m.group(0), int(label.split()[-1]), "") if label else m.group(0)

    return re.sub(r"(<figure\b[^>]*\bid=\"(fig-[^\"]*)\"[^>]*>)(?:(?!<figure\b).)*?</figure>",
                  one, html, flags=re.S)


def label_figure(html: str, number: int, ident: str) -> str:
    """A figure's HTML with "Figure N." before its caption and `ident` as its id."""
    if not number:
        return html
    if ident and not re.match(r"\s*<figure\b[^>]*\bid=", html):
        html = re.sub(r"<figure\b", f'<figure id="{htmllib.escape(ident)}"', html, count=1)
    label = f'<span class="fig-label">Figure {number}.</span>'
    if "<figcaption" in html:
        return re.sub(r"(<figcaption\b[^>]*>)", rf"\1{label} ", html, count=1)
    i = html.rfind("</figure>")
    return html[:i] + f"<figcaption>{label}</figcaption>" + html[i:] if i >= 0 else html
