"""Site commands: init, build, serve, new, clean. Bad input exits 2 with one line."""
from __future__ import annotations

import shutil
from pathlib import Path

import click

from generator.cli import UserError

SITE_DIR = click.argument("site_dir", default=None, required=False,
                          type=click.Path(file_okay=False, path_type=Path))


def site_dir_or_default(site_dir: Path | None) -> Path:
    """SITE_DIR when given; else the current folder when it holds a site.toml (a site made
    by `init`), else `content/` when that does (this repository's example site), else
    the current folder."""
    if site_dir is not None:
        return site_dir
    here = Path(".")
    if not (here / "site.toml").is_file() and (here / "content" / "site.toml").is_file():
        return here / "content"
    return here


def _user_errors(fn):
    """Turn BuildError / OSError into UserError (exit 2, `error: path:line:col: message`)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from generator.site.errors import BuildError

        try:
            return fn(*args, **kwargs)
        except BuildError as e:
            raise UserError(str(e)) from None
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            raise UserError(f"{where}{e.strerror or e}") from None

    return wrapper


@click.command()
@click.argument("site_dir", type=click.Path(file_okay=True, path_type=Path))
@_user_errors
def init(site_dir):
    """Start a new site in SITE_DIR (a new or empty folder) that builds at once.

    Writes a commented site.toml, a first post with figures, images/, models/ with an
    example model file, a .gitignore and a GitHub Pages workflow for the site's own
    repository. Then: cd SITE_DIR && featuretree build.
    """
    from generator.site.errors import display_path
    from generator.site.scaffold import init_site

    written = init_site(site_dir)
    for path in written:
        click.echo(f"  {display_path(path)}")
    where = display_path(site_dir)
    click.echo(f"created a site in {where}; next: cd {where} && featuretree build "
               f"(or featuretree serve to preview)")


@click.command()
@SITE_DIR
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output directory (default: site.toml's `output`, else SITE_DIR/_site).")
@click.option("--drafts", is_flag=True, help="Include posts marked `draft: true` or `published: false`.")
@click.option("--base-url", help="Override site.toml's base_url, e.g. /REPO/ for a project page.")
@click.option("--url", help="Override site.toml's url (scheme and host, e.g. https://you.github.io): "
                            "the sitemap and feed need it for absolute links.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@click.option("--force", is_flag=True, help="Replace a non-empty output folder (or use a cache folder) "
                                            "that featuretree did not make (it has no .featuretree-output).")
@_user_errors
def build(site_dir, out, drafts, base_url, url, quiet, force):
    """Build SITE_DIR (default: the current folder; content/ in the repository) into a site.

    The new site is written beside the output directory and swapped in at the end:
    if anything fails, the previous site stays as it was. Only a folder featuretree
    made (marked with .featuretree-output) is replaced, unless --force.
    """
    from generator.site.pipeline import build as run_build

    site_dir = site_dir_or_default(site_dir)
    result = run_build(site_dir, out=out, drafts=drafts, quiet=quiet, base_url=base_url, url=url,
                       force=force)
    if not quiet:
        click.echo(result.summary())
        if not result.site_url:
            click.echo("note: site.toml has no `url`, so the sitemap and feed use site-relative "
                       "links; set it (or pass --url https://you.github.io) before publishing",
                       err=True)


@click.command()
@SITE_DIR
@click.option("--port", "-p", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port on 127.0.0.1 (0 picks a free one).")
@click.option("--drafts/--no-drafts", default=True, show_default=True, help="Include draft posts.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Preview folder (default: OUTPUT.preview beside the site's output, so drafts "
                   "never reach what is published).")
@_user_errors
def serve(site_dir, port, drafts, out):
    """Preview SITE_DIR at http://127.0.0.1:PORT, rebuilding on change.

    Builds into its own folder (e.g. _site.preview), drafts included. Watches posts,
    images, site.toml, templates, assets and the model/image files that figures use;
    open pages reload after each successful rebuild, and show a failed one's error.
    """
    from generator.site.serve import serve as run_serve

    run_serve(site_dir_or_default(site_dir), port=port, drafts=drafts, out=out, echo=lambda s: click.echo(s))


@click.command()
@click.argument("title")
@SITE_DIR
@_user_errors
def new(title, site_dir):
    """Create a draft post titled TITLE in SITE_DIR/posts (never overwrites)."""
    from generator.site.newpost import new_post

    click.echo(f"created {new_post(site_dir_or_default(site_dir), title)}")


@click.command()
@SITE_DIR
@_user_errors
def clean(site_dir):
    """Remove SITE_DIR's built site, its preview and its cache (figures, build manifest).

    Only folders featuretree made (marked with .featuretree-output) are removed.
    """
    from generator.site import guard
    from generator.site.config import load_config
    from generator.site.serve import preview_dir

    config = load_config(site_dir_or_default(site_dir))
    out, cache, preview = config.output, config.cache, preview_dir(config)
    for key, p in (("output", out), ("cache", cache), ("preview", preview)):
        if (p.exists() or p.is_symlink()) and not guard.is_marked(p):
            raise UserError(f"{key} folder {p} was not made by featuretree (no {guard.MARKER}); "
                            "not removing it (delete it yourself if it should go)")
    lock = guard.try_lock(cache)
    try:
        removed = [p for p in (out, cache, preview) if p.exists()]
        removed += guard.remove_dead_tmp(out)
        old = [p for p in out.parent.glob(f"{out.name}.old-*") if p.is_dir() and not p.is_symlink()]
        for p in [out, cache, preview, *old]:
            if p.exists():
                shutil.rmtree(p)
        removed += old
    finally:
        if lock is not None:
            lock.release()
    click.echo("removed " + ", ".join(str(p) for p in removed) if removed else "nothing to remove")
