"""`site.toml`: the site's settings, read once per build into a `SiteConfig`."""
from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BuildError, Pos, offset_to_pos

CONFIG_NAME = "site.toml"

# key -> (type, default, help). Paths are relative to the site directory.
KEYS: dict[str, tuple[type, object, str]] = {
    "title": (str, "Untitled", "site title"),
    "author": (str, "", "default author of posts"),
    "description": (str, "", "one-line description (index, feed)"),
    "url": (str, "", "scheme and host for absolute links in the feed and sitemap, e.g. https://you.github.io"),
    "base_url": (str, "/", "path the site is served under, e.g. /REPO/"),
    "language": (str, "en", "html lang attribute"),
    "model": (str, "", "default model for figures (a name or a weights file)"),
    "image": (str, "", "default image for figures"),
    "output": (str, "_site", "output directory"),
    "cache": (str, ".cache", "cache directory (figures, build manifest)"),
    "posts": (str, "posts", "directory holding the posts"),
    "feed_entries": (int, 20, "number of posts in the Atom feed"),
    "theme": (dict, {}, "theme options, read by the templates"),
    "figures": (dict, {}, "site-wide figure defaults, read by the figures stage"),
    "math": (dict, {}, "math options: macros = { \"\\\\RR\" = \"\\\\mathbb{R}\" } (TeX macros for every formula)"),
    "bibliography": (str, "", "default BibTeX file for citations [@key], relative to this file"),
    "atlas": (dict, {}, "a unit atlas: model, dataset, layers, k, steps, seed, objective (see README)"),
    "citation_style": (str, "numeric", "how [@key] reads: numeric ([1]) or author-year ((Zeiler and Fergus, 2014))"),
}
CITATION_STYLES = ("numeric", "author-year")


@dataclass(frozen=True)
class SiteConfig:
    """Everything the pipeline and the figures stage need to know about a site."""

    site_dir: Path
    title: str = "Untitled"
    author: str = ""
    description: str = ""
    url: str = ""
    base_url: str = "/"
    language: str = "en"
    model: str = ""
    image: str = ""
    output: Path = Path("_site")
    cache: Path = Path(".cache")
    posts_dir: Path = Path("posts")
    feed_entries: int = 20
    theme: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    # [figures] checked as directive values are (directives.check_defaults), converted
    figure_defaults: dict = field(default_factory=dict)
    macros: dict = field(default_factory=dict)  # [math] macros, checked (macros.check_macros)
    bibliography: str = ""
    citation_style: str = "numeric"
    atlas: object = None  # [atlas] checked (site/atlas/config.py), None when off
    config_path: Path | None = None
    digest: str = ""  # hash of site.toml's bytes plus overrides: part of every page's key

    def abs_url(self, site_path: str) -> str:
        """`base_url`-prefixed URL of a site-relative path ('' is the home page)."""
        return self.base_url + site_path.lstrip("/")

    def full_url(self, site_path: str) -> str:
        """Absolute URL (with `url`'s host when set) for feeds and sitemaps."""
        return self.url.rstrip("/") + self.abs_url(site_path)


def normalize_base_url(value: str) -> str:
    """'/REPO', 'REPO/', '' -> '/REPO/', '/': always leading and trailing slash."""
    value = value.strip().strip("/")
    return "/" + value + "/" if value else "/"


def _key_pos(text: str, key: str, path: str) -> Pos:
    m = re.search(rf"^[ \t]*({re.escape(key)})[ \t]*=", text, re.M)
    return offset_to_pos(text, m.start(1), path) if m else Pos(path, 1, 1)


def _math_and_citations(values: dict, text: str, shown: str) -> tuple[dict, str]:
    """`[math]` (only `macros` so far) and the citation settings, checked."""
    from .macros import check_macros

    for key in values["math"]:
        if key != "macros":
            raise BuildError(f"unknown setting 'math.{key}'; valid: macros", _key_pos(text, key, shown))
    macros = check_macros(values["math"].get("macros"), "site.toml [math] macros",
                          _key_pos(text, "macros", shown))
    if values["citation_style"] not in CITATION_STYLES:
        raise BuildError(f"citation_style must be one of {', '.join(CITATION_STYLES)}",
                         _key_pos(text, "citation_style", shown))
    return macros, values["bibliography"]


def load_config(site_dir: str | Path, *, output: str | Path | None = None,
                base_url: str | None = None, url: str | None = None) -> SiteConfig:
    """Read `SITE_DIR/site.toml` (optional) and apply command-line overrides."""
    site_dir = Path(site_dir).resolve()
    if not site_dir.is_dir():
        raise BuildError(f"site directory {site_dir} does not exist (pass SITE_DIR, e.g. content)")
    path = site_dir / CONFIG_NAME
    shown = str(path)
    raw: bytes = b""
    data: dict = {}
    if path.exists():
        raw = path.read_bytes()
        text = raw.decode("utf-8", errors="replace")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
            pos = Pos(shown, int(m.group(1)), int(m.group(2))) if m else Pos(shown, 1, 1)
            msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e)) or "invalid TOML"
            raise BuildError(f"invalid TOML: {msg}", pos) from None
        for key, value in data.items():
            if key not in KEYS:
                hint = difflib.get_close_matches(key, KEYS, n=1)
                did = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise BuildError(f"unknown setting '{key}'{did}; valid: {', '.join(KEYS)}",
                                 _key_pos(text, key, shown))
            want = KEYS[key][0]
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                raise BuildError(f"'{key}' must be a {want.__name__} ({KEYS[key][2]})",
                                 _key_pos(text, key, shown))
    values = {k: data.get(k, default) for k, (_, default, _) in KEYS.items()}
    if output is not None:
        values["output"] = str(output)
    if base_url is not None:
        values["base_url"] = base_url
    if url is not None:
        values["url"] = url
    if values["url"] and not re.fullmatch(r"https?://[^/\s]+/?", values["url"]):
        where = "--url" if url is not None else "url"
        raise BuildError(f"{where} {values['url']!r} must be a scheme and host such as "
                         "https://you.github.io (the path belongs in base_url)",
                         None if url is not None or not raw
                         else _key_pos(raw.decode("utf-8", "replace"), "url", shown))
    out_dir = (site_dir / values["output"]).resolve() if output is None else Path(output).resolve()
    cache_dir = (site_dir / values["cache"]).resolve()
    from .guard import check_places

    def where(key: str) -> Pos | None:
        return _key_pos(raw.decode("utf-8", "replace"), key, shown) if key in data else None

    check_places(site_dir, (site_dir / values["posts"]).resolve(), {
        "output": (out_dir, "--out" if output is not None else "output", None if output is not None
                   else where("output")),
        "cache": (cache_dir, "cache", where("cache"))})
    digest = hashlib.sha256(raw + repr((output, base_url, url)).encode()).hexdigest()
    from .directives import check_defaults
    text = raw.decode("utf-8", errors="replace")
    figure_defaults = check_defaults(values["figures"], "site.toml [figures]",
                                     lambda k: _key_pos(text, k or "figures", shown))
    macros, bibliography = _math_and_citations(values, text, shown)
    from .atlas.config import check_atlas
    atlas = check_atlas(values["atlas"], lambda k: _key_pos(text, k, shown))
    return SiteConfig(
        site_dir=site_dir,
        macros=macros, bibliography=bibliography, citation_style=values["citation_style"],
        title=values["title"],
        author=values["author"],
        description=values["description"],
        url=values["url"].rstrip("/"),
        base_url=normalize_base_url(values["base_url"]),
        language=values["language"],
        model=values["model"],
        image=values["image"],
        output=out_dir,
        cache=cache_dir,
        posts_dir=(site_dir / values["posts"]).resolve(),
        feed_entries=values["feed_entries"],
        theme=dict(values["theme"]),
        figures=dict(values["figures"]),
        figure_defaults=figure_defaults,
        atlas=atlas,
        config_path=path if raw else None,
        digest=digest,
    )
