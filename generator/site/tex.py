"""Math rendered at build time with KaTeX (pykatex), as a Python-Markdown extension.

Delimiters, as kramdown reads them plus the LaTeX ones:
`$$...$$` standing alone as a block is display math, inside a paragraph it is
inline; `\\[...\\]` and a block of `\\begin{env}...\\end{env}` are display;
`$...$` and `\\(...\\)` are inline. `\\$` is a literal dollar. Code is never math.
A TeX error stops the build at the formula's `path:line:col`.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as etree
from functools import lru_cache

from markdown.blockprocessors import BlockProcessor
from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor

from .errors import BuildError, Pos, offset_to_pos


class TexError(ValueError):
    """KaTeX rejected a formula; `offset` is KaTeX's 0-based position in it, if known."""

    def __init__(self, message: str, offset: int | None):
        super().__init__(message)
        self.offset = offset


@lru_cache(maxsize=4096)
def render_tex(tex: str, display: bool) -> str:
    """KaTeX HTML+MathML for one formula (cached: posts repeat their symbols)."""
    import pykatex

    try:
        html = pykatex.renderToString(tex, displayMode=display, strict=pykatex.STRICT_IGNORE)
    except pykatex.ParseError as e:
        msg = str(e).replace("\u0332", "")
        m = re.search(r" at position (\d+)", msg)
        raise TexError(msg, int(m.group(1)) - 1 if m else None) from None
    return f'<div class="math-display">{html}</div>' if display else html


class MathContext:
    """Where the page being converted comes from, to put TeX errors at file:line:col."""

    def __init__(self):
        self.source = ""
        self.path = "<string>"
        self.line_offset = 0

    def error(self, tex: str, err: TexError) -> BuildError:
        i = self.source.find(tex)
        if i < 0:
            first = tex.strip().splitlines()[0] if tex.strip() else tex
            i = self.source.find(first)
        if i < 0:
            return BuildError(f"KaTeX: {err} in ${tex}$", Pos(self.path, 1, 1))
        if err.offset is not None and "\n" not in tex[: err.offset]:
            i += err.offset
        return BuildError(f"KaTeX: {err}", offset_to_pos(self.source, i, self.path, self.line_offset))


_DISPLAY_BLOCK = re.compile(
    r"^\s*(?:\$\$(?P<d>(?:(?!\$\$).)+?)\$\$|\\\[(?P<b>.+?)\\\]|(?P<env>\\begin\{(?P<name>[A-Za-z]+\*?)\}.*?\\end\{(?P=name)\}))\s*$",
    re.S)

_INLINE = (
    r"(?<!\\)\$\$(?P<dd>.+?)\$\$"                                   # kramdown inline $$..$$
    r"|(?<![\\$])\$(?![\s$])(?P<d>(?:\\.|[^$\\])+?)(?<![\s\\])\$(?![\d$])"  # $..$
    r"|\\\((?P<p>.+?)\\\)"                                         # \(..\)
    r"|\\\[(?P<b>.+?)\\\]"                                         # \[..\] inside a paragraph: display
)


class _DisplayMath(BlockProcessor):
    def __init__(self, parser, ctx: MathContext):
        super().__init__(parser)
        self.ctx = ctx

    def test(self, parent, block):
        return bool(_DISPLAY_BLOCK.match(block))

    def run(self, parent, blocks):
        block = blocks.pop(0)
        m = _DISPLAY_BLOCK.match(block)
        tex = m.group("d") or m.group("b") or m.group("env")
        try:
            html = render_tex(tex.strip("\n"), True)
        except TexError as e:
            raise self.ctx.error(tex.strip("\n"), e) from None
        p = etree.SubElement(parent, "p")
        p.text = self.parser.md.htmlStash.store(html)


class _InlineMath(InlineProcessor):
    def __init__(self, md, ctx: MathContext):
        super().__init__(_INLINE, md)
        self.ctx = ctx

    def handleMatch(self, m, data):
        display = m.group("b") is not None
        tex = next(g for g in (m.group("dd"), m.group("d"), m.group("p"), m.group("b")) if g is not None)
        try:
            html = render_tex(tex, display)
        except TexError as e:
            raise self.ctx.error(tex, e) from None
        return self.md.htmlStash.store(html), m.start(0), m.end(0)


class MathExtension(Extension):
    """Registers the display-math block processor and the inline-math pattern."""

    def __init__(self, ctx: MathContext, **kwargs):
        self.ctx = ctx
        super().__init__(**kwargs)

    def extendMarkdown(self, md):
        if "$" not in md.ESCAPED_CHARS:
            md.ESCAPED_CHARS.append("$")
        # Before code (80)? No: indented code must stay code. After it, before headers.
        md.parser.blockprocessors.register(_DisplayMath(md.parser, self.ctx), "ft_math_block", 75)
        # Above backslash escapes (180) so `\[`, `\\` and `_` inside TeX survive; below code spans (190).
        md.inlinePatterns.register(_InlineMath(md, self.ctx), "ft_math_inline", 185)
