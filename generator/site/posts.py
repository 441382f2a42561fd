"""Posts: markdown files with YAML front matter, read and checked before any rendering.

A post is `posts/NAME.md` (or `posts/NAME/index.md`, a bundle with its assets).
Its date comes from `date:` or a `YYYY-MM-DD-` file-name prefix (Jekyll style), else
from git or the file (see `undated`);
its URL is `SLUG/`. Jekyll keys (`layout`, `comments`, `disqus_*`, ...) are accepted
and ignored. `published: false` or `draft: true` keeps a post out unless drafts
are asked for.
"""
from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from . import undated
from .config import SiteConfig
from .directives import SPECS, Directive, check_defaults, find_directives, validate
from .limits import check_directives
from .lookalike import check_lookalikes
from .errors import BuildError, Pos, display_path
from .kramdown import blank_extensions
from .slug import url_slug

KNOWN_KEYS = ("title", "date", "description", "tags", "model", "image", "published", "draft",
              "slug", "author", "toc", "layout", "comments", "categories", "excerpt", "permalink",
              "macros", "bibliography")
POST_SUFFIXES = (".md", ".markdown")
_DATED_NAME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})-(.+)$")
_FENCE = re.compile(r"^(---|\.\.\.)[ \t]*$")


@dataclass
class Post:
    """One post, parsed and validated; `body` has kramdown comments blanked out."""

    source: Path
    shown: str  # the source path as errors show it
    slug: str
    title: str
    date: datetime
    description: str
    tags: tuple[str, ...]
    draft: bool
    meta: dict
    body: str
    body_line: int  # lines before the body (front matter), added to body line numbers
    digest: str  # sha256 of the file's bytes
    directives: list[Directive] = field(default_factory=list)
    params: list[dict] = field(default_factory=list)

    @property
    def url_path(self) -> str:
        """Site-relative URL of the post's page."""
        return f"{self.slug}/"

    @property
    def page_meta(self) -> dict:
        """Front matter plus where the post lives: what the figures stage resolves against."""
        return {**self.meta, "post_dir": self.source.parent, "post_path": self.source, "slug": self.slug}


def split_front_matter(text: str, shown: str) -> tuple[dict, str, int]:
    """(front matter, body, number of lines before the body). Errors carry file:line:col."""
    import yaml

    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        raise BuildError("missing front matter: start the post with a '---' line, "
                         "then 'title: ...', then a closing '---'", Pos(shown, 1, 1))
    end = next((i for i in range(1, len(lines)) if _FENCE.match(lines[i])), None)
    if end is None:
        raise BuildError("front matter is not closed: add a '---' line after it", Pos(shown, 1, 1))
    fm_text = "\n".join(lines[1:end])
    try:
        meta = yaml.load(fm_text, Loader=_no_alias_loader()) if fm_text.strip() else {}
    except _AliasRefused as e:
        raise BuildError("front matter uses a YAML alias or anchor (&name / *name); "
                         "write the value out instead", Pos(shown, e.line + 2, e.col + 1)) from None
    except _BadDate as e:
        raise BuildError(f"date '{e.value}' is not a date; write YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS +ZZZZ'",
                         Pos(shown, e.line + 2, e.col + 1)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        pos = Pos(shown, mark.line + 2, mark.column + 1) if mark else Pos(shown, 2, 1)
        raise BuildError(f"malformed front matter: {problem} (write 'key: value' lines of YAML)", pos) from None
    if not isinstance(meta, dict):
        raise BuildError("front matter must be 'key: value' lines (a YAML mapping)", Pos(shown, 2, 1))
    return meta, "\n".join(lines[end + 1:]), end + 1


class _AliasRefused(Exception):
    def __init__(self, line: int, col: int):
        super().__init__("YAML alias")
        self.line, self.col = line, col


class _BadDate(Exception):
    def __init__(self, value: str, line: int, col: int):
        super().__init__(value)
        self.value, self.line, self.col = value, line, col


_LOADER = None


def _no_alias_loader():
    """A SafeLoader that refuses anchors and aliases (no 'billion laughs' expansion)."""
    global _LOADER
    if _LOADER is None:
        import yaml

        class NoAliasLoader(yaml.SafeLoader):
            def compose_node(self, parent, index):
                event = self.peek_event()
                if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                    raise _AliasRefused(event.start_mark.line, event.start_mark.column)
                return super().compose_node(parent, index)

            def construct_yaml_timestamp(self, node):
                try:
                    return super().construct_yaml_timestamp(node)
                except (ValueError, OverflowError):
                    raise _BadDate(node.value, node.start_mark.line, node.start_mark.column) from None

        NoAliasLoader.add_constructor("tag:yaml.org,2002:timestamp", NoAliasLoader.construct_yaml_timestamp)

        _LOADER = NoAliasLoader
    return _LOADER


def _key_pos(text: str, key: str, shown: str) -> Pos:
    m = re.search(rf"^({re.escape(str(key))})\s*:", text, re.M)
    return Pos(shown, text.count("\n", 0, m.start()) + 1, 1) if m else Pos(shown, 1, 1)


def _parse_date(value, text: str, shown: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    s = str(value).strip()
    for fmt in ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M %z", "%Y-%m-%dT%H:%M:%S%z",
                "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            d = datetime.strptime(s, fmt)
            return d if d.tzinfo else d.replace(tzinfo=timezone.utc)
        except ValueError:
            pass
        except (OverflowError, TypeError):
            break
    raise BuildError(f"date '{s}' is not a date; write YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS +ZZZZ'",
                     _key_pos(text, "date", shown))


def _tags(value, text: str, shown: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        items = value.split(",") if "," in value else value.split()
    elif isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        items = [str(v) for v in value]
    else:
        raise BuildError("tags must be a list ([a, b]) or a string ('a b')", _key_pos(text, "tags", shown))
    return tuple(dict.fromkeys(t.strip() for t in items if t.strip()))


def _string(meta: dict, key: str, text: str, shown: str, default: str = "") -> str:
    value = meta.get(key, default)
    if value is None:
        return default
    if isinstance(value, (dict, list)):
        raise BuildError(f"{key} must be a plain string", _key_pos(text, key, shown))
    return str(value)


def file_slug(path: Path) -> str:
    """The slug a post file gets from its name (`2015-10-31-a-cat.md` -> `a-cat`)."""
    stem = path.parent.name if path.stem == "index" else path.stem
    dated = _DATED_NAME.match(stem)
    return url_slug(dated.group(4) if dated else stem)


def load_post(path: Path, config: SiteConfig, data: bytes | None = None) -> Post:
    """Parse one post file: front matter, dates, tags, directives (validated)."""
    shown = display_path(path)
    data = path.read_bytes() if data is None else data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BuildError(f"not UTF-8 text (byte {e.start}); save the post as UTF-8", Pos(shown, 1, 1)) from None
    text = text.replace("\r\n", "\n").removeprefix("\ufeff")
    meta, body, body_line = split_front_matter(text, shown)
    fm_text = "\n".join(text.split("\n")[:body_line])
    for key in meta:
        if key not in KNOWN_KEYS and not str(key).startswith("disqus_"):
            close = difflib.get_close_matches(str(key), KNOWN_KEYS, n=1, cutoff=0.8)
            if close and close[0] not in meta:
                raise BuildError(f"unknown front matter key '{key}' (did you mean '{close[0]}'?)",
                                 _key_pos(fm_text, key, shown))
    stem = path.parent.name if path.stem == "index" else path.stem
    dated = _DATED_NAME.match(stem)
    draft = meta.get("draft") is True or meta.get("published") is False
    if "date" in meta and meta["date"] is not None:
        when = _parse_date(meta["date"], fm_text, shown)
    elif dated:
        try:
            when = datetime(int(dated.group(1)), int(dated.group(2)), int(dated.group(3)), tzinfo=timezone.utc)
        except ValueError:
            raise BuildError(f"file name date '{stem[:10]}' is not a date; name the file YYYY-MM-DD-slug.md "
                             "with a real date, or set 'date:'", Pos(shown, 1, 1)) from None
    else:
        when = undated.date_of(path)[0]   # refreshed by load_posts on every build
    title = _string(meta, "title", fm_text, shown)
    if not title.strip():
        raise BuildError("front matter has no title: add 'title: ...'", Pos(shown, 1, 1))
    slug = url_slug(_string(meta, "slug", fm_text, shown)) or file_slug(path)
    if not slug:
        raise BuildError("cannot make a URL from this file name; add 'slug: some-name'", Pos(shown, 1, 1))
    if meta.get("macros") is not None:
        from .macros import check_macros

        check_macros(meta["macros"], "front matter macros", _key_pos(fm_text, "macros", shown))
    body = blank_extensions(body)
    post = Post(
        source=path if path.is_absolute() else path.resolve(), shown=shown, slug=slug, title=title.strip(), date=when,
        description=_string(meta, "description", fm_text, shown).strip(),
        tags=_tags(meta.get("tags"), fm_text, shown), draft=draft, meta=meta,
        body=body, body_line=body_line, digest=hashlib.sha256(data).hexdigest(),
    )
    post.directives = find_directives(body, shown, body_line)
    check_directives(post.directives)
    check_lookalikes(body, shown, body_line, SPECS)
    if post.directives:
        defaults = dict(config.figure_defaults)
        defaults.update(check_defaults(meta.get("figures"), "front matter figures",
                                       lambda k: _key_pos(fm_text, k or "figures", shown)))
        post.params = [validate(d, defaults) for d in post.directives]
    return post


def post_files(config: SiteConfig) -> list[Path]:
    """Post sources under the posts directory, in a stable order."""
    root = config.posts_dir
    if not root.is_dir():
        return []
    files = []
    for p in sorted(root.iterdir()):
        if p.name.startswith((".", "_")):
            continue
        if p.is_file() and p.suffix in POST_SUFFIXES:
            files.append(p)
        elif p.is_dir():
            files.extend(q for q in (p / "index.md", p / "index.markdown") if q.is_file())
    for p in files:  # nothing from outside the site is published: a symlinked post must stay inside
        real = p.resolve()
        if not real.is_relative_to(config.site_dir):
            raise BuildError(f"{display_path(p)} is a symlink to {real}, outside the site "
                             f"{config.site_dir}; copy the post into the site instead")
    return files


RESERVED = {"assets", "tags", "feed.xml", "sitemap.xml", "404.html", "index.html", "robots.txt",
            "search", "search.json", "favicon.svg"}


def is_undated(post: Post) -> bool:
    """No `date:` and no YYYY-MM-DD- file name: the date comes from git or the file."""
    stem = post.source.parent.name if post.source.stem == "index" else post.source.stem
    return post.meta.get("date") is None and not _DATED_NAME.match(stem)


def load_posts(config: SiteConfig, drafts: bool = False, cache=None,
               notes: list[str] | None = None) -> list[Post]:
    """All posts to publish, newest first; duplicate or reserved slugs are errors.

    `cache` (a PostCache) returns unchanged posts without parsing them again; `notes`
    collects one line per undated post (see `undated`).
    """
    notes = notes if notes is not None else []
    posts = []
    for path in post_files(config):
        data = path.read_bytes()
        post = cache.get(path, hashlib.sha256(data).hexdigest()) if cache is not None else None
        if post is None:
            post = load_post(path, config, data)
            if cache is not None:
                cache.put(post)
        if post.draft and not drafts:
            continue
        if is_undated(post):
            post.date, source = undated.date_of(path)
            notes.append(undated.note(post.shown, post.date, source))
        posts.append(post)
    seen: dict[str, Post] = {}
    top = {p.name for p in config.site_dir.iterdir()}
    for post in posts:
        if post.slug in seen:
            raise BuildError(f"slug '{post.slug}' is also used by {seen[post.slug].shown}; "
                             f"rename one or set 'slug:'", Pos(post.shown, 1, 1))
        if post.slug in RESERVED or post.slug in top:
            raise BuildError(f"slug '{post.slug}' clashes with a site path; set another 'slug:'",
                             Pos(post.shown, 1, 1))
        seen[post.slug] = post
    posts.sort(key=lambda p: (p.date, p.slug), reverse=True)
    return posts
