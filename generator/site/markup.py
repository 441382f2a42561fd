"""Post body -> HTML: Python-Markdown with pymdown-extensions, KaTeX math, kramdown
compatibility and site-aware links. Imported only when a page must be re-rendered.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import markdown
from markdown.extensions import Extension
from markdown.extensions.toc import TocExtension
from markdown.treeprocessors import Treeprocessor

from .citations import CitationExtension, Citations
from .config import SiteConfig
from .crossrefs import CrossrefExtension, Crossrefs
from .kramdown import MARKER, parse_ial, rewrite_ials
from .mathlimit import BoundedMath
from .links import rewrite_links
from .posts import Post
from .slug import kramdown_id
from .tex import MathExtension, katex, lift_display_math


@dataclass
class Body:
    """A post's rendered body; `assets` are the site files it references."""

    html: str
    toc: str = ""
    assets: list[str] = field(default_factory=list)
    figures: list[list] = field(default_factory=list)  # per directive: [number, anchor id]


_P_FIGURE = re.compile(r"<p>\s*(<figure\b(?:(?!</?p[\s>]).)*?</figure>)\s*</p>", re.S)
_MARKDOWN_ATTR = re.compile(r'(<[A-Za-z][\w-]*\b[^<>]*?)\s+markdown=(?:"[^"]*"|\'[^\']*\'|\w+)')


def kramdown_cleanup(html: str) -> str:
    """What Python-Markdown leaves of HTML blocks it could not parse (e.g. a
    `<figure markdown="1">` indented inside a list item): unwrap the `<p>` around
    the figure and drop leftover `markdown=` attributes."""
    html = _P_FIGURE.sub(r"\1", html)
    return _MARKDOWN_ATTR.sub(r"\1", html)


class _MarkerIals(Treeprocessor):
    """Move each `ftial-HEX` marker paragraph's attributes onto the element before it."""

    def run(self, root):
        for parent in list(root.iter()):
            children = list(parent)
            for i, child in enumerate(children):
                m = MARKER.match((child.text or "").strip()) if child.tag == "p" else None
                if not m or len(child):
                    continue
                if i > 0:
                    target = children[i - 1]
                    for key, value in parse_ial(bytes.fromhex(m.group(1)).decode()):
                        if key == "class" and target.get("class"):
                            value = " ".join(dict.fromkeys(target.get("class").split() + [value]))
                        target.set(key, value)
                parent.remove(child)


class BlockIalExtension(Extension):
    """The tree half of `kramdown.rewrite_ials`: IALs after tables and lists."""

    def extendMarkdown(self, md):
        md.treeprocessors.register(_MarkerIals(md), "ft_block_ial", 5)


class MarkdownRenderer:
    """One Markdown instance reused across posts (reset between them)."""

    def __init__(self, config: SiteConfig, post_urls: dict):
        self.config = config
        self.post_urls = post_urls
        self.ctx = BoundedMath()       # formulas past limits.MAX_FORMULA are refused
        self.refs = Crossrefs()
        self.cites = Citations(config)
        self._site_preamble: str | None = None
        self.md = markdown.Markdown(
            output_format="html",
            extensions=[
                "footnotes", "tables", "attr_list", "md_in_html", "def_list", "abbr",
                TocExtension(slugify=kramdown_id, permalink="#", permalink_class="headerlink",
                             permalink_title="Link to this section"),
                "pymdownx.superfences", "pymdownx.highlight",
                MathExtension(self.ctx), BlockIalExtension(),
                CitationExtension(self.cites), CrossrefExtension(self.refs),
            ],
            extension_configs={
                "footnotes": {"BACKLINK_TITLE": "Back to the text"},
                "pymdownx.highlight": {"use_pygments": True, "css_class": "highlight",
                                       "guess_lang": False, "pygments_lang_class": True},
            },
        )

    def _macros(self, post: Post) -> str:
        """The TeX preamble for `post`: site macros, then the post's `macros:` (checked once each)."""
        from .errors import Pos
        from .macros import check_macros, check_macros_tex, preamble

        if self._site_preamble is None:
            where = Pos(str(self.config.config_path), 1, 1) if self.config.config_path else None
            check_macros_tex(self.config.macros, "site.toml [math] macros", where,
                             lambda tex: katex(tex, False))
            self._site_preamble = preamble(self.config.macros)
        own = post.meta.get("macros")
        if not own:
            return self._site_preamble
        own = check_macros(own, "front matter macros", Pos(post.shown, 1, 1))
        check_macros_tex(own, "front matter macros", Pos(post.shown, 1, 1),
                         lambda tex: katex(tex, False, self._site_preamble))
        return self._site_preamble + preamble(own)

    def render(self, post: Post, text: str) -> Body:
        """Convert `text` (the post body with directives replaced by tokens)."""
        from .equations import Numbering

        self.md.reset()
        self.ctx.source, self.ctx.path, self.ctx.line_offset = post.body, post.shown, post.body_line
        self.ctx.start(self._macros(post), Numbering(post.digest[:12]), post.digest[:12])
        self.refs.start(post, post.digest[:12])
        self.cites.start(post, post.digest[:12])
        html = self.ctx.finish(self.md.convert(rewrite_ials(text)))
        html = lift_display_math(kramdown_cleanup(html))
        html, figures = self.refs.finish(html, self.ctx.numbering.labels)
        html = self.cites.finish(html)
        html, assets = rewrite_links(html, post, self.config, self.post_urls)
        toc = getattr(self.md, "toc", "")
        return Body(html, toc if "<li>" in toc else "", assets, figures)
