"""The theme: Jinja2 templates (the site's own `templates/` first, then the
project's) and the static assets of `site_src/`. Template errors become one-line
build errors at the template's file:line.
"""
from __future__ import annotations

import hashlib
import traceback
from pathlib import Path

from .config import SiteConfig
from .errors import BuildError, Pos, display_path
from .slug import url_slug

# An installed featuretree carries the theme as generator/_theme/ (see setup.py); a
# checkout has it at the repository root.
_INSTALLED = Path(__file__).resolve().parents[1] / "_theme"
PROJECT_ROOT = _INSTALLED if _INSTALLED.is_dir() else Path(__file__).resolve().parents[2]
TEMPLATES = PROJECT_ROOT / "templates"
SITE_SRC = PROJECT_ROOT / "site_src"


def template_dirs(config: SiteConfig) -> list[Path]:
    """Where templates are looked up, first match wins."""
    own = config.site_dir / "templates"
    return [d for d in (own, TEMPLATES) if d.is_dir()]


def asset_dirs(config: SiteConfig) -> list[Path]:
    """Static asset folders copied under `assets/` (the site's own `assets/` wins)."""
    own = config.site_dir / "assets"
    return [d for d in (SITE_SRC, own) if d.is_dir()]


def list_files(root: Path) -> list[Path]:
    """Files under `root`, sorted, skipping hidden ones."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(root).parts))


def tree_digest(dirs: list[Path], contents: bool = True, skip: tuple[str, ...] = ()) -> str:
    """Hash of the names (and contents) of every file under `dirs`, except top-level `skip` folders."""
    h = hashlib.sha256()
    for d in dirs:
        for p in list_files(d):
            rel = p.relative_to(d)
            if rel.parts[0] in skip:
                continue
            h.update(str(rel).encode() + b"\0")
            if contents:
                h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


class Theme:
    """A Jinja2 environment bound to one site; created only when a page must be rendered."""

    def __init__(self, config: SiteConfig, assets: set[str]):
        import jinja2

        self.config = config
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in template_dirs(config)]),
            autoescape=jinja2.select_autoescape(["html", "xml"]),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        )
        self.env.globals.update(
            site=config,
            url=config.abs_url,
            asset=lambda p: config.abs_url("assets/" + p),
            has_asset=lambda p: p in assets,
            tag_slug=url_slug,
        )

    def render(self, name: str, **context) -> str:
        import jinja2

        try:
            return self.env.get_template(name).render(**context)
        except jinja2.TemplateSyntaxError as e:
            where = e.filename or name
            raise BuildError(f"template error: {e.message}", Pos(display_path(where), e.lineno or 1, 1)) from None
        except jinja2.TemplateNotFound as e:
            raise BuildError(f"template '{e.name}' not found in {', '.join(map(display_path, template_dirs(self.config)))}") from None
        except BuildError:
            raise
        except Exception as e:  # a template is the user's code: any runtime error is theirs
            raise runtime_error(e, name, template_dirs(self.config)) from None


def runtime_error(e: Exception, name: str, dirs) -> BuildError:
    """A template's runtime error (`{{ 1 // 0 }}`, a bad filter argument) as one line at
    the template's file:line, found in the traceback's frames."""
    import jinja2

    text = " ".join(str(e).split()) or type(e).__name__
    message = f"template error: {text}" if isinstance(e, jinja2.TemplateError) \
        else f"template error: {type(e).__name__}: {text}"
    roots = [str(d) for d in dirs]
    for frame in reversed(traceback.extract_tb(e.__traceback__)):
        if any(frame.filename.startswith(d) for d in roots):
            return BuildError(message, Pos(display_path(frame.filename), frame.lineno or 1, 1))
    return BuildError(message, Pos(name, 1, 1))


def pygments_css(style: str = "friendly") -> str:
    """Highlighting colours for `.highlight` code blocks (and a dark variant)."""
    from pygments.formatters import HtmlFormatter

    light = HtmlFormatter(style=style).get_style_defs(".highlight")
    chosen = HtmlFormatter(style="monokai").get_style_defs(':root[data-theme="dark"] .highlight')
    system = HtmlFormatter(style="monokai").get_style_defs(':root:not([data-theme="light"]) .highlight')
    return f"{light}\n{chosen}\n@media (prefers-color-scheme: dark) {{\n{system}\n}}\n"
