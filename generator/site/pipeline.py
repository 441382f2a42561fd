"""The build: config -> posts (front matter, directives validated) -> figures planned
and computed -> pages rendered -> site written and swapped in.

Incremental: every output file has a key, a hash of everything it was made from
(post source, templates, config, this code, figure HTML, neighbouring posts). A
file whose key is unchanged is hard-linked from the previous site instead of
rendered, so a no-op rebuild imports neither Markdown, Jinja2 nor torch. Rendered
post bodies are cached by their own key, for the feed and for template edits.
"""
from __future__ import annotations

import html as htmllib
import re
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from generator.files import json_digest, sources_digest

from . import cachecheck, guard
from .config import SiteConfig, load_config
from .errors import BuildError
from .output import OutputTree, load_manifest, save_manifest
from .postcache import PostCache
from .posts import Post, load_posts
from .slug import url_slug
from .theme import asset_dirs, template_dirs, tree_digest

PYGMENTS_STYLE = "friendly"


@dataclass
class BuildResult:
    """What a build did, for the summary line and for tests."""

    out_dir: Path
    posts: int = 0
    files: int = 0
    rendered: int = 0
    rendered_files: list[str] = field(default_factory=list)
    reused: int = 0
    seconds: float = 0.0
    figures: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    watch_paths: list[Path] = field(default_factory=list)  # model/image files `serve` watches
    site_url: str = ""                                     # scheme and host ('' if unset)

    def summary(self) -> str:
        figs = ""
        if self.figures:
            figs = "; figures: " + ", ".join(f"{k} {v}" for k, v in self.figures.items())
        return (f"built {self.posts} posts into {self.out_dir} "
                f"({self.rendered} pages rendered, {self.reused} reused{figs}) in {self.seconds:.2f}s")


def _h(*parts) -> str:
    return json_digest(parts)


@lru_cache(maxsize=1)
def code_digest() -> str:
    """Hash of this package's own sources: a new pipeline version re-renders everything."""
    return sources_digest(Path(__file__).parent)


def _token(post: Post, i: int) -> str:
    return f"ftfigure{i}z{post.digest[:12]}"


_IN_P = re.compile(r"<p[\s>]|</p>")


def splice_figures(html: str, tokens: list[str], figures: list[str]) -> str:
    """Put each figure where its directive was: a paragraph of its own becomes the
    figure; an inline directive closes the paragraph around it (a <figure> cannot
    live inside a <p>)."""
    for tok, fig in zip(tokens, figures):
        block = f"<p>{tok}</p>"
        if block in html:
            html = html.replace(block, fig)
            continue
        i = html.find(tok)
        if i < 0:
            continue
        opens = [m.group(0) for m in _IN_P.finditer(html, 0, i)]
        inside_p = bool(opens) and opens[-1] != "</p>"
        html = html[:i] + (f"</p>\n{fig}\n<p>" if inside_p else fig) + html[i + len(tok):]
    return re.sub(r"<p>\s*</p>\n?", "", html)


def tokenized_body(post: Post) -> str:
    """The post body with each directive replaced by a unique placeholder word."""
    lines = post.body.split("\n")
    starts, off = [], 0
    for line in lines:
        starts.append(off)
        off += len(line) + 1
    text, shift = post.body, 0
    for i, d in enumerate(post.directives):
        at = starts[d.pos.line - post.body_line - 1] + d.pos.col - 1 + shift
        tok = _token(post, i)
        text = text[:at] + tok + text[at + len(d.raw):]
        shift += len(tok) - len(d.raw)
    return unescape_directives(text)


def unescape_directives(text: str) -> str:
    """`\\<<` (a literal `<<` in prose) loses its backslash; code is left alone."""
    from .textscan import CodeRegions

    code = CodeRegions(text)
    out, last = [], 0
    for m in re.finditer(r"\\<<", text):
        if m.start() in code:
            continue
        out.append(text[last:m.start()])
        last = m.start() + 1
    out.append(text[last:])
    return "".join(out)


def split_title(html: str, title: str) -> tuple[str, str]:
    """(the body's leading <h1> if it repeats the post title, the rest). Kramdown posts
    often open with their title as a setext heading; the page shows it once, on top."""
    m = re.match(r"\s*<h1\b[^>]*>(.*?)</h1>", html, re.S)
    if not m:
        return "", html
    text = re.sub(r"<a class=\"headerlink\".*?</a>|<[^>]+>", "", m.group(1))
    if htmllib.unescape(text).strip().lower() != title.strip().lower():
        return "", html
    return m.group(0).strip(), html[m.end():]


class _Bodies:
    """Rendered post bodies, cached on disk by (post source, config, code, URLs)."""

    def __init__(self, config: SiteConfig, post_urls: dict, urls_key: str):
        self.config = config
        self.post_urls = post_urls
        self.urls_key = urls_key
        self.dir = config.cache / "site" / "bodies"
        self._renderer = None
        self._memo: dict[str, dict] = {}

    def key(self, post: Post) -> str:
        from .bibfiles import bib_key

        return _h("body", code_digest(), post.digest, self.config.digest, self.urls_key,
                  str(post.source), bib_key(post, self.config))

    def get(self, post: Post) -> dict:
        key = self.key(post)
        if key in self._memo:
            return self._memo[key]
        path = self.dir / f"{key}.json"
        try:
            body = cachecheck.read_json(path, "post body")
            if all((self.config.site_dir / a).is_file() for a in body["assets"]) and "figures" in body:
                self._memo[key] = body
                return body
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if self._renderer is None:
            from .markup import MarkdownRenderer

            self._renderer = MarkdownRenderer(self.config, self.post_urls)
        rendered = self._renderer.render(post, tokenized_body(post))
        from .search import page_text

        body = {"html": rendered.html, "toc": rendered.toc, "assets": rendered.assets,
                "figures": rendered.figures, "text": page_text(rendered.html)}
        cachecheck.write_json(path, body)
        self._memo[key] = body
        return body

    def text(self, post: Post) -> str:
        """The body's plain text for the search index, kept with the cached body: reading
        every post's HTML again on each one-post edit cost 22 ms a post."""
        from .search import page_text

        body = self.get(post)
        if "text" not in body:
            body["text"] = page_text(body["html"])
            cachecheck.write_json(self.dir / f"{self.key(post)}.json", body)
        return body["text"]

    def has_math(self) -> bool:
        """Whether any body rendered in this build contains KaTeX output."""
        return any('class="katex' in b["html"] for b in self._memo.values())


def _figure_stage(config: SiteConfig, posts: list[Post], quiet: bool, stage_factory):
    """The figures stage, imported only when some post has a directive."""
    first = next((d for p in posts for d in p.directives), None)
    if first is None:
        return None
    if stage_factory is None:
        try:
            from .figures import FigureStage
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith("generator.site.figures"):
                raise BuildError("figures are not available in this checkout "
                                 "(generator/site/figures is missing)", first.pos) from None
            raise
        stage_factory = FigureStage
    stage = stage_factory(config, config.cache, quiet=quiet)
    for post in posts:
        for d, params in zip(post.directives, post.params):
            stage.plan(d, params, post.page_meta)
    stage.run()
    return stage


class _Pages:
    """Renders a page only when its key changed; the Jinja2 theme is loaded on first need."""

    def __init__(self, tree: OutputTree, config: SiteConfig, assets: dict):
        self.tree, self.config, self.assets = tree, config, assets
        self._theme = None

    def write(self, rel: str, key: str, template: str, **context) -> None:
        if self.tree.reuse(rel, key):
            return
        if self._theme is None:
            from .theme import Theme

            self._theme = Theme(self.config, set(self.assets))
        self.tree.write(rel, self._theme.render(template, **context), key)


def _post_html(post: Post, bodies: _Bodies, figures: list[str], atlas=None) -> str:
    from .crossrefs import label_figure

    body = bodies.get(post)
    figures = [label_figure(f, *n) for f, n in zip(figures, body["figures"])]
    html = splice_figures(body["html"], [_token(post, j) for j in range(len(figures))], figures)
    return atlas.link(post, html) if atlas is not None else html   # unit names -> atlas pages


def _write_posts(pages: _Pages, posts: list[Post], bodies: _Bodies, figure_html: dict,
                 site_key: str, previous: dict, atlas=None) -> dict[str, list[str]]:
    """One page per post; returns the site files each page references."""
    config, tree = pages.config, pages.tree
    used: dict[str, list[str]] = {}
    for i, post in enumerate(posts):
        newer = posts[i - 1] if i > 0 else None
        older = posts[i + 1] if i + 1 < len(posts) else None
        figs = figure_html[post.source]
        rel = f"{post.url_path}index.html"
        key = _h("post", site_key, bodies.key(post), figs, post.date.isoformat(),
                 [(p.title, p.url_path) if p else None for p in (newer, older)])
        old_assets = previous.get("assets", {}).get(rel)
        if old_assets is not None and all((config.site_dir / a).is_file() for a in old_assets) \
                and tree.reuse(rel, key):
            used[rel] = old_assets
            continue
        used[rel] = bodies.get(post)["assets"]
        from .social import card

        title_html, html = split_title(_post_html(post, bodies, figs, atlas), post.title)
        pages.write(rel, key, "post.html", post=post, body=_markup(html), card=card(post, html, config),
                    toc=_markup(bodies.get(post)["toc"]), title_html=_markup(title_html),
                    newer=newer, older=older)
    return used


def _write_listings(pages: _Pages, posts: list[Post], bodies: _Bodies, figure_html: dict,
                    site_key: str, atlas=None) -> None:
    """Index, tag pages, Atom feed, sitemap, 404."""
    config = pages.config
    listing = [(p.title, p.url_path, p.date.isoformat(), p.description, p.tags, p.draft) for p in posts]
    pages.write("index.html", _h("index", site_key, listing), "index.html", posts=posts)
    tags: dict[str, tuple[str, list[Post]]] = {}
    for post in posts:
        for tag in post.tags:
            tags.setdefault(url_slug(tag) or "tag", (tag, []))[1].append(post)
    tag_list = sorted(tags.values(), key=lambda t: t[0].lower())
    pages.write("tags/index.html", _h("tags", site_key, [(n, len(ps)) for n, ps in tag_list]),
                "tags.html", tags=tag_list)
    for slug, (name, tagged) in tags.items():
        summary = [(p.title, p.url_path, p.date.isoformat(), p.description) for p in tagged]
        pages.write(f"tags/{slug}/index.html", _h("tag", site_key, name, summary), "tag.html",
                    tag=name, posts=tagged)

    recent = posts[: config.feed_entries]
    feed_key = _h("feed", site_key, [(bodies.key(p), figure_html[p.source]) for p in recent],
                  listing[: len(recent)])
    if not pages.tree.reuse("feed.xml", feed_key):
        from .absurl import absolute_html

        entries = [{"post": p, "html": absolute_html(_post_html(p, bodies, figure_html[p.source], atlas),
                                                     config.full_url(p.url_path)) if config.url
                    else _post_html(p, bodies, figure_html[p.source], atlas)} for p in recent]
        updated = max((p.date for p in posts), default=None)
        pages.write("feed.xml", feed_key, "feed.xml", entries=entries,
                    updated=updated.isoformat() if updated else "1970-01-01T00:00:00+00:00")
    urls = [("", None)] + [(p.url_path, p.date.strftime("%Y-%m-%d")) for p in posts] + \
           [("tags/", None)] + [(f"tags/{s}/", None) for s in tags] + \
           [(u, None) for u in (atlas.urls() if atlas is not None else [])]
    pages.write("sitemap.xml", _h("sitemap", site_key, urls), "sitemap.xml", pages=urls)
    pages.write("404.html", _h("404", site_key), "404.html")
    _write_search(pages, posts, bodies, site_key)


def _write_search(pages: _Pages, posts: list[Post], bodies: _Bodies, site_key: str) -> None:
    """The search page and its index (search.py), rebuilt when a post's body changes."""
    pages.write("search/index.html", _h("search-page", site_key), "search.html")
    key = _h("search.json", site_key, [(bodies.key(p), p.title, p.description, p.tags) for p in posts])
    if not pages.tree.reuse("search.json", key):
        from .search import search_json

        text = search_json(posts, bodies.text, pages.config.abs_url)
        pages.tree.write("search.json", text, key)


def _write_extras(tree: OutputTree, config: SiteConfig) -> None:
    """robots.txt, .nojekyll (GitHub Pages: serve files as they are), Pygments colours."""
    robots = "User-agent: *\nAllow: /\n" + (f"Sitemap: {config.full_url('sitemap.xml')}\n" if config.url else "")
    for rel, text in (("robots.txt", robots), (".nojekyll", "")):
        if not tree.reuse(rel, _h(rel, text)):
            tree.write(rel, text, _h(rel, text))
    key = _h("pygments", code_digest(), PYGMENTS_STYLE)
    if not tree.reuse("assets/css/pygments.css", key):
        from .theme import pygments_css

        tree.write("assets/css/pygments.css", pygments_css(PYGMENTS_STYLE), key)


def _publish_files(tree: OutputTree, config: SiteConfig, assets: dict, used: dict, stage,
                   extra: dict | None = None) -> int:
    """Link theme assets, referenced site files, static/ and figure files; first path wins."""
    published = set(tree.keys)

    def publish(rel: str, src: Path) -> None:
        if rel not in published:
            published.add(rel)
            tree.add_file(rel, src)

    for rel, src in assets.items():
        publish(f"assets/{rel}", src)
    for rel in sorted({a for lst in used.values() for a in lst}):
        publish(rel, config.site_dir / rel)
    static = config.site_dir / "static"
    if static.is_dir():
        for p in guard.site_files(static, config.site_dir):
            publish(p.relative_to(static).as_posix(), p)
    if stage is not None:
        for rel, src in sorted(stage.files().items()):
            publish(rel, Path(src))
    for rel, src in sorted((extra or {}).items()):   # atlas tiles
        publish(rel, Path(src))
    return len(published)


def build(site_dir: str | Path = "content", *, out: str | Path | None = None, drafts: bool = False,
          quiet: bool = False, base_url: str | None = None, url: str | None = None,
          stage_factory=None, force: bool = False) -> BuildResult:
    """Build the site in `site_dir` into its output directory (see module doc).

    Raises BuildError for bad input; the previous output is then left as it was.
    `stage_factory(config, cache_dir, quiet=...)` replaces the figures stage (tests).
    `force` replaces a non-empty output (or uses a cache) featuretree did not mark.
    One build of a site at a time: a second waits for the site's lock (guard.py).
    """
    t0 = time.perf_counter()
    cachecheck.reset()
    config = load_config(site_dir, output=out, base_url=base_url, url=url)
    guard.claim_cache(config.cache, force)
    with guard.build_lock(config.cache, config.site_dir, quiet):
        previous = load_manifest(config.cache / "site" / "manifest.json", config.output)
        guard.claim_output(config.output, previous.get("files", {}), force)
        guard.remove_dead_tmp(config.output)
        return _build(config, t0, drafts=drafts, quiet=quiet, stage_factory=stage_factory)


def _build(config: SiteConfig, t0: float, *, drafts: bool, quiet: bool, stage_factory) -> BuildResult:
    """The build itself, under the site's lock, output and cache claimed."""
    # Parsed posts carry their figure parameters, resolved against [figures]: a change
    # there must parse them again.
    figures_key = _h("figures", config.figures)
    post_cache = PostCache(config.cache / "site" / "posts.json", code_digest() + figures_key)
    notes: list[str] = []
    posts = load_posts(config, drafts=drafts, cache=post_cache, notes=notes)
    post_cache.save()
    if not quiet:
        for line in notes:
            print(line, file=sys.stderr)
    stage = _figure_stage(config, posts, quiet, stage_factory)
    atlas = None
    if config.atlas is not None:
        from .atlas.stage import AtlasStage

        atlas = AtlasStage(config, quiet)

    assets = {}  # path under assets/ -> source file
    for d in asset_dirs(config):
        for p in guard.site_files(d, config.site_dir if d.is_relative_to(config.site_dir) else d.resolve()):
            assets[p.relative_to(d).as_posix()] = p
    # Figure templates are left out: their output reaches a page's key as figure HTML.
    site_key = _h("site", code_digest(), tree_digest(template_dirs(config), skip=("figures",)),
                  config.digest, drafts, sorted(assets), *([atlas.link_key] if atlas else []))
    post_urls = {p.source: p.url_path for p in posts}
    bodies = _Bodies(config, post_urls, _h(sorted((str(k), v) for k, v in post_urls.items())))

    manifest_path = config.cache / "site" / "manifest.json"
    previous = load_manifest(manifest_path, config.output)
    tree = OutputTree(config.output, previous.get("files", {}), previous.get("stats", {}))
    result = BuildResult(config.output, posts=len(posts), site_url=config.url)
    try:
        figure_html = {p.source: [stage.render(d) for d in p.directives] if stage else [] for p in posts}
        pages = _Pages(tree, config, assets)
        used = _write_posts(pages, posts, bodies, figure_html, site_key, previous, atlas)
        _write_listings(pages, posts, bodies, figure_html, site_key, atlas)
        if atlas is not None:
            atlas.write(pages, site_key, atlas.mentions(
                posts, lambda p: _post_html(p, bodies, figure_html[p.source])))
        _write_extras(tree, config)
        result.files = _publish_files(tree, config, assets, used, stage,
                                      atlas.files() if atlas is not None else None)
        if bodies.has_math() and "vendor/katex/katex.min.css" not in assets:
            result.warnings.append("site_src/vendor/katex/ is missing (run `make katex`): "
                                   "math is rendered but the page has no KaTeX stylesheet or fonts")
        manifest_path.unlink(missing_ok=True)  # a crash from here on must not trust it
        tree.commit()
    except BaseException:
        tree.abort()
        raise
    save_manifest(manifest_path, config.output, {"files": tree.keys, "assets": used, "stats": tree.stats})
    result.rendered = len(tree.written)
    result.rendered_files = sorted(tree.written)
    result.reused = tree.reused
    if stage is not None:
        result.figures = dict(getattr(stage, "counters", {}))
        result.watch_paths = [Path(p) for p in stage.watch_paths()]
    if atlas is not None:
        result.watch_paths += [p for p in atlas.watch_paths() if p not in result.watch_paths]
    result.warnings += cachecheck.take()
    result.seconds = time.perf_counter() - t0
    if not quiet:
        for w in result.warnings:
            print(f"warning: {w}", file=sys.stderr)
    return result


def _markup(s: str):
    from markupsafe import Markup

    return Markup(s)
