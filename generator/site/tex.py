"""Math rendered at build time with KaTeX (pykatex), as a Python-Markdown extension.

Delimiters, as kramdown reads them plus the LaTeX ones:
`$$...$$` standing alone as a block is display math, inside a paragraph it is
inline; `\\[...\\]` and a block of `\\begin{env}...\\end{env}` are display;
`$...$` and `\\(...\\)` are inline. `\\$` is a literal dollar. Code is never math.
A TeX error stops the build at the formula's `path:line:col`.

Papers' numbering (`equations.Numbering`): a display formula with `\\label{eq:x}`, or an
unstarred `equation`/`align`/`gather` environment, gets the page's next number as its
`\\tag` and the label as its id; `\\eqref{eq:x}`/`\\ref{eq:x}` in prose become links.
Macros (`macros.py`) reach KaTeX as a preamble in front of each formula.
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
def katex(tex: str, display: bool, preamble: str = "") -> str:
    """KaTeX HTML+MathML for one formula (cached: posts repeat their symbols). Error
    offsets are into `tex`, the preamble (macro definitions) taken off."""
    import pykatex

    try:
        html = pykatex.renderToString(preamble + tex, displayMode=display, strict=pykatex.STRICT_IGNORE)
    except pykatex.ParseError as e:
        msg = str(e).replace("\u0332", "")
        m = re.search(r" at position (\d+)", msg)
        at = int(m.group(1)) - 1 - len(preamble) if m else None
        if at is not None and at < 0:
            at = None
        msg = re.sub(r" at position \d+: .*", "", msg, flags=re.S) if preamble else msg
        raise TexError(msg, at) from None
    if preamble:  # the TeX annotation (copy and paste, screen readers) shows the formula alone
        esc = "".join(_KATEX_ESCAPES.get(c, c) for c in preamble)
        html = html.replace(_ANNOTATION + esc, _ANNOTATION, 1)
    return html


_ANNOTATION = '<annotation encoding="application/x-tex">'
_KATEX_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}


def render_tex(tex: str, display: bool, preamble: str = "", anchor: str = "") -> str:
    """One formula as the page shows it: display math in its own `<div>` (with the
    equation's id when it is labelled)."""
    html = katex(tex, display, preamble)
    if not display:
        return html
    ident = f' id="{anchor}"' if anchor else ""
    return f'<div class="math-display"{ident}>{html}</div>'


class MathContext:
    """Where the page being converted comes from, to put TeX errors at file:line:col."""

    def __init__(self):
        self.source = ""
        self.path = "<string>"
        self.line_offset = 0
        self.macros = ""  # the site's and the post's macros, as a \\def preamble
        self.defs: list[tuple[str, str]] = []  # (formula, the \\newcommands it makes)
        self.numbering = None  # equations.Numbering of the page being converted
        self.pending: list[str] = []  # display formulas, rendered by `finish` in page order
        self.salt = ""

    def start(self, macros: str, numbering, salt: str) -> None:
        self.macros, self.numbering, self.salt = macros, numbering, salt
        self.defs, self.pending = [], []

    def pos_of(self, text: str, start: int = 0) -> Pos:
        """Where `text` first occurs in the post outside code (else the body's first line)."""
        from .textscan import CodeRegions

        code = CodeRegions(self.source)
        i = self.source.find(text, start)
        while i >= 0 and i in code:
            i = self.source.find(text, i + 1)
        return offset_to_pos(self.source, max(i, 0), self.path, self.line_offset)

    def _preamble(self, tex: str) -> str:
        """Macros, then every other formula's definitions: a \\newcommand holds for the whole post."""
        return self.macros + "".join(d for t, d in self.defs if t != tex)

    def _keep_definitions(self, tex: str) -> None:
        from .macros import definitions

        found = definitions(tex)
        if found and (tex, found) not in self.defs:
            self.defs.append((tex, found))

    def render(self, tex: str, display: bool) -> str:
        """Inline math: its HTML now (headings' ids read it). Display math: a token that
        `finish` renders in page order, numbered (Python-Markdown reads blocks before
        inline text, so the order of conversion is not the order of the page)."""
        self._keep_definitions(tex)
        if display:
            self.pending.append(tex)
            return f"ftmath{len(self.pending) - 1}z{self.salt}"
        if "\\label" in tex and re.search(r"\\label\s*\{", tex):
            raise BuildError("\\label works only in display math ($$...$$ on its own lines, "
                             "\\[...\\] or \\begin{equation})", self.pos_of("\\label"))
        try:
            return render_tex(tex, False, self._preamble(tex))
        except TexError as e:
            raise self.error(tex, e) from None

    def finish(self, html: str) -> str:
        """Render the display formulas in the order the page shows them, numbering them,
        then resolve the \\eqref links."""
        def one(m: re.Match) -> str:
            tex = self.pending[int(m.group("a") or m.group("b"))]
            shown, anchor = self.numbering.number(tex, self)
            try:
                return render_tex(shown, True, self._preamble(tex), anchor)
            except TexError as e:
                raise self.error(tex, e) from None

        html = re.sub(rf"<p>ftmath(?P<a>\d+)z{self.salt}</p>|ftmath(?P<b>\d+)z{self.salt}", one, html)
        return self.numbering.resolve(html, self)

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
        html = self.ctx.render(tex.strip("\n"), True)
        p = etree.SubElement(parent, "p")
        p.text = self.parser.md.htmlStash.store(html)


class _InlineMath(InlineProcessor):
    def __init__(self, md, ctx: MathContext):
        super().__init__(_INLINE, md)
        self.ctx = ctx

    def handleMatch(self, m, data):
        display = m.group("b") is not None
        tex = next(g for g in (m.group("dd"), m.group("d"), m.group("p"), m.group("b")) if g is not None)
        return self.md.htmlStash.store(self.ctx.render(tex, display)), m.start(0), m.end(0)


class _EqRef(InlineProcessor):
    """`\\eqref{eq:x}` / `\\ref{eq:x}` in prose: a placeholder, resolved once the whole
    page is numbered (a reference may come before its equation)."""

    def __init__(self, md, ctx: MathContext):
        super().__init__(r"\\(?P<kind>eqref|ref)\{(?P<label>[^{}\s]+)\}", md)
        self.ctx = ctx

    def handleMatch(self, m, data):
        token = self.ctx.numbering.reference(m.group("label"), m.group("kind"), m.group(0))
        return self.md.htmlStash.store(token), m.start(0), m.end(0)


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
        # Below math (a \\ref inside $...$ stays TeX), above backslash escapes.
        md.inlinePatterns.register(_EqRef(md, self.ctx), "ft_eqref", 184)


_P_WITH_DISPLAY = re.compile(r"<p>((?:(?!</?p[\s>]).)*?<div class=\"math-display\"(?:(?!</?p[\s>]).)*?)</p>", re.S)
_DISPLAY_DIV = re.compile(r"<div class=\"math-display\"[^>]*>.*?</div>", re.S)


def lift_display_math(html: str) -> str:
    """`\\[...\\]` inside a paragraph: close the paragraph around the display (a `<div>`
    cannot live inside a `<p>`); empty paragraphs left over are dropped."""
    def split(m: re.Match) -> str:
        parts, last = [], 0
        for d in _DISPLAY_DIV.finditer(m.group(1)):
            parts.append(f"<p>{m.group(1)[last:d.start()]}</p>\n{d.group(0)}\n")
            last = d.end()
        parts.append(f"<p>{m.group(1)[last:]}</p>")
        return re.sub(r"<p>\s*</p>\n?", "", "".join(parts)).strip()

    return _P_WITH_DISPLAY.sub(split, html)
