"""Nothing lost, nothing leaked: the build replaces only folders it marked, refuses
output/cache folders in the sources or over system folders, `clean` removes only
marked folders, killed builds' temporary trees go, hand edits in the output do not
survive, and nothing from outside the site (symlinks) is published."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.site.guard import MARKER
from generator.site.pipeline import build


def make_site(tmp_path: Path, toml: str = "") -> Path:
    """A text-only site (no figures, so no torch)."""
    site = tmp_path / "site"
    (site / "posts").mkdir(parents=True)
    (site / "site.toml").write_text('title = "Safe"\n' + toml)
    (site / "posts" / "2024-05-01-hello.md").write_text(
        "---\ntitle: Hello\ndate: 2024-05-01\n---\n\nFirst words.\n")
    return site


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_output_and_cache_are_marked(tmp_path):
    site = make_site(tmp_path)
    assert run("build", site, "-q").exit_code == 0
    for folder, kind in ((site / "_site", "output"), (site / ".cache", "cache")):
        assert json.loads((folder / MARKER).read_text()) == {"featuretree": 1, "kind": kind}


def test_unmarked_non_empty_output_is_refused_unless_force(tmp_path):
    site = make_site(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    line = one_line_error(run("build", site, "--out", mine, "-q"))
    assert str(mine) in line and "--force" in line
    assert tree(mine) == {"thesis.tex": b"years of work"}
    assert not list(tmp_path.glob("mine.*")), "a temporary tree was left beside the output"

    empty = tmp_path / "empty"
    empty.mkdir()
    assert run("build", site, "--out", empty, "-q").exit_code == 0  # an empty folder is fine
    assert (empty / MARKER).is_file()

    forced = run("build", site, "--out", mine, "-q", "--force")
    assert forced.exit_code == 0, forced.output
    assert (mine / MARKER).is_file() and (mine / "hello" / "index.html").is_file()
    assert not (mine / "thesis.tex").exists()
    assert run("build", site, "--out", mine, "-q").exit_code == 0  # marked now: no --force needed


def test_unmarked_non_empty_cache_is_refused(tmp_path):
    site = make_site(tmp_path, 'cache = "../notes"\n')
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep")
    line = one_line_error(run("build", site, "-q"))
    assert str(notes) in line and "--force" in line
    assert not (notes / MARKER).exists() and not (site / "_site").exists()


@pytest.mark.parametrize("toml, option, label", [
    ('output = "posts"\n', None, "output"),
    ('output = "posts/built"\n', None, "output"),
    ('output = "static/site"\n', None, "output"),
    ('output = "templates"\n', None, "output"),
    ('cache = "images/cache"\n', None, "cache"),
    ('cache = "models"\n', None, "cache"),
    ('cache = "assets"\n', None, "cache"),
    ('output = "."\n', None, "output"),
    ('cache = "_site"\n', None, "cache"),
    (f'cache = "{Path.home() / ".cache"}"\n', None, "cache"),
    (f'output = "{Path.home()}"\n', None, "output"),
    ("", "/", "--out"),
    ("", "/usr", "--out"),
    ("", "/etc", "--out"),
    ("", "/var", "--out"),
    ("", "/tmp", "--out"),
    ("", "/lib", "--out"),
    ("", str(Path.home()), "--out"),
    ("", str(Path.home() / ".ssh"), "--out"),
    ("", str(Path.home() / ".config"), "--out"),
])
def test_output_or_cache_over_sources_or_system_folders_is_refused(tmp_path, toml, option, label):
    site = make_site(tmp_path, toml)
    for d in ("static", "templates", "images", "models", "assets"):
        (site / d).mkdir(exist_ok=True)
    before = tree(site)
    args = ["build", site, "-q"] + (["--out", option] if option else [])
    line = one_line_error(run(*args))
    assert f" {label} " in line or line.startswith(f"error: {label} "), line
    if option is None and toml:
        assert "site.toml:2:1:" in line  # the key's own line
    assert tree(site) == before
    if option is None:  # clean reads the same settings and refuses them the same way
        assert one_line_error(run("clean", site)) == line


def test_clean_removes_only_marked_folders(tmp_path):
    site = make_site(tmp_path)
    assert run("build", site, "-q").exit_code == 0
    cleaned = run("clean", site)
    assert cleaned.exit_code == 0, cleaned.output
    assert not (site / "_site").exists() and not (site / ".cache").exists()
    assert (site / "posts" / "2024-05-01-hello.md").is_file()

    (site / "_site").mkdir()
    (site / "_site" / "notes.txt").write_text("mine")
    line = one_line_error(run("clean", site))
    assert str(site / "_site") in line and "output" in line
    assert (site / "_site" / "notes.txt").read_text() == "mine"

    (site / "_site" / "notes.txt").unlink()
    assert run("build", site, "-q").exit_code == 0  # an empty folder is taken and marked
    (site / ".cache" / MARKER).unlink()
    line = one_line_error(run("clean", site))
    assert "cache" in line and str(site / ".cache") in line
    assert (site / "_site" / "index.html").is_file(), "clean removed something before refusing"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftover_temp_trees_of_dead_builds_are_removed(tmp_path):
    site = make_site(tmp_path)
    dead = _dead_pid()
    stale = site / f"_site.tmp-{dead}-abc123"
    stale.mkdir()
    (stale / MARKER).write_text(json.dumps({"featuretree": 1, "kind": "output"}))
    (stale / "index.html").write_text("half")
    empty_stale = site / f"_site.tmp-{dead}-zz9"
    empty_stale.mkdir()
    alive = site / f"_site.tmp-{os.getpid()}-abc123"  # a build still running: kept
    (alive / "x").mkdir(parents=True)
    (alive / MARKER).write_text(json.dumps({"featuretree": 1, "kind": "output"}))
    unmarked = site / f"_site.tmp-{dead}-def456"  # not ours after all: kept
    unmarked.mkdir()
    (unmarked / "data.csv").write_text("1,2")
    other = site / "_site.tmp-notes"
    other.mkdir()
    assert run("build", site, "-q").exit_code == 0
    assert not stale.exists() and not empty_stale.exists()
    assert alive.is_dir() and unmarked.is_dir() and other.is_dir()
    assert (unmarked / "data.csv").read_text() == "1,2"
    leftovers = [p.name for p in site.iterdir() if p.name.startswith("_site.tmp-")]
    assert sorted(leftovers) == sorted([alive.name, unmarked.name, other.name])


def test_hand_edited_output_files_do_not_survive_a_rebuild(tmp_path):
    site = make_site(tmp_path)
    out = site / "_site"
    assert run("build", site, "-q").exit_code == 0
    clean = tree(out)
    with open(out / "index.html", "a") as f:  # in place: the same inode the next build would link
        f.write("<!-- hand edit -->")
    (out / "hello" / "index.html").write_text("replaced")
    (out / "stray.txt").write_text("added by hand")
    assert run("build", site, "-q").exit_code == 0
    assert tree(out) == clean


def test_symlinks_out_of_the_site_are_refused(tmp_path):
    site = make_site(tmp_path)
    assert run("build", site, "-q").exit_code == 0
    published = tree(site / "_site")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (outside / "2024-06-01-leak.md").write_text("---\ntitle: Leak\ndate: 2024-06-01\n---\n\nsecret\n")

    (site / "static").mkdir()
    (site / "static" / "passwd").symlink_to("/etc/passwd")
    line = one_line_error(run("build", site, "-q"))
    assert "static/passwd" in line and "outside the site" in line
    (site / "static" / "passwd").unlink()

    (site / "static").rmdir()
    (site / "static").symlink_to(outside)
    line = one_line_error(run("build", site, "-q"))
    assert "static" in line and str(outside) in line
    (site / "static").unlink()

    (site / "assets").mkdir()
    (site / "assets" / "extra.css").symlink_to(outside / "secret.txt")
    line = one_line_error(run("build", site, "-q"))
    assert "assets/extra.css" in line
    (site / "assets" / "extra.css").unlink()

    (site / "posts" / "2024-06-01-leak.md").symlink_to(outside / "2024-06-01-leak.md")
    line = one_line_error(run("build", site, "-q"))
    assert "2024-06-01-leak.md" in line and "outside the site" in line
    (site / "posts" / "2024-06-01-leak.md").unlink()

    (site / "images").mkdir()
    (site / "images" / "leak.png").symlink_to(outside / "secret.txt")
    post = site / "posts" / "2024-05-01-hello.md"
    post.write_text(post.read_text() + "\n![x](/images/leak.png)\n")
    line = one_line_error(run("build", site, "-q"))
    assert "/images/leak.png" in line and "outside the site" in line

    assert tree(site / "_site") == published
    assert "secret" not in repr(published)


def test_symlinks_inside_the_site_are_published_as_regular_files(tmp_path):
    site = make_site(tmp_path)
    (site / "shared").mkdir()
    (site / "shared" / "CNAME").write_text("example.test\n")
    (site / "shared" / "fonts").mkdir()
    (site / "shared" / "fonts" / "a.woff2").write_bytes(b"font")
    (site / "static").mkdir()
    (site / "static" / "CNAME").symlink_to("../shared/CNAME")
    (site / "static" / "fonts").symlink_to("../shared/fonts")
    (site / "drafts").mkdir()
    (site / "drafts" / "2024-07-01-linked.md").write_text(
        "---\ntitle: Linked\ndate: 2024-07-01\n---\n\nLinked words.\n")
    (site / "posts" / "2024-07-01-linked.md").symlink_to("../drafts/2024-07-01-linked.md")
    result = run("build", site, "-q")
    assert result.exit_code == 0, result.output
    out = site / "_site"
    assert (out / "CNAME").read_text() == "example.test\n"
    assert (out / "fonts" / "a.woff2").read_bytes() == b"font"
    assert "Linked words." in (out / "linked" / "index.html").read_text()
    links = [os.path.join(d, n) for d, dirs, files in os.walk(out) for n in dirs + files
             if os.path.islink(os.path.join(d, n))]
    assert links == []


def test_build_api_takes_force(tmp_path):
    site = make_site(tmp_path)
    out = tmp_path / "o"
    out.mkdir()
    (out / "a").write_text("a")
    from generator.site.errors import BuildError

    with pytest.raises(BuildError, match="--force"):
        build(site, out=out, quiet=True)
    build(site, out=out, quiet=True, force=True)
    assert (out / MARKER).is_file() and not (out / "a").exists()
