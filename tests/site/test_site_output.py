"""The written site: base_url everywhere, feed/sitemap/404/.nojekyll, drafts,
incremental rebuilds (exactly the affected pages), atomic swap, and a no-op
rebuild that imports no torch."""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from site_helpers import FakeStage, copy_site, soup

from generator.site.errors import BuildError
from generator.site.output import _exchange
from generator.site.pipeline import build

ROOT = Path(__file__).resolve().parents[2]
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def site(tmp_path):
    return copy_site("kramdown_site", tmp_path / "site")


def html_pages(out: Path):
    return [p for p in out.rglob("*.html")]


def test_every_internal_link_honours_base_url(site):
    build(site, stage_factory=FakeStage, quiet=True)
    out = site / "_site"
    checked = 0
    for page in html_pages(out):
        doc = soup(page)
        for tag, attr in (("a", "href"), ("img", "src"), ("link", "href"), ("script", "src")):
            for el in doc.find_all(tag, attrs={attr: True}):
                url = el[attr]
                if url.startswith(("#", "https://", "http://", "mailto:")):
                    continue
                checked += 1
                assert url.startswith("/REPO/"), f"{page.relative_to(out)}: {tag} {attr}={url}"
                target = out / url[len("/REPO/"):].split("#")[0]
                if target.suffix == "" or url.endswith("/"):
                    target = target / "index.html"
                assert target.is_file(), f"{page.relative_to(out)} links to missing {url}"
    assert checked > 20


def test_feed_sitemap_404_nojekyll_and_drafts(site):
    build(site, stage_factory=FakeStage, quiet=True)
    out = site / "_site"
    assert (out / ".nojekyll").is_file() and (out / "404.html").is_file()
    feed = ET.parse(out / "feed.xml").getroot()
    entries = feed.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}title").text for e in entries] == [
        "Edges between units", 'First light <script>alert("t")</script>']
    assert entries[0].find(f"{ATOM}link").get("href") == "https://example.test/REPO/edges-between-units/"
    content = entries[0].find(f"{ATOM}content").text
    assert 'class="ft-figure ft-hierarchy"' in content and "katex" in content
    urls = [u.text for u in ET.parse(out / "sitemap.xml").getroot().iter(
        "{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert "https://example.test/REPO/first-light/" in urls
    assert not (out / "unfinished").exists()
    index = soup(out / "index.html")
    items = index.select(".post-list li")
    assert [li.select_one("a").get_text() for li in items][0] == "Edges between units"
    assert items[0].select_one("time")["datetime"] == "2024-02-03"
    assert "Every construct" in items[0].select_one(".post-description").get_text()
    tag = soup(out / "tags" / "kramdown" / "index.html")
    assert [a.get_text() for a in tag.select(".post-list a")] == ["Edges between units"]

    build(site, stage_factory=FakeStage, quiet=True, drafts=True)
    assert (out / "unfinished" / "index.html").is_file()


def test_css_and_scripts_are_local_and_figure_assets_linked(site):
    (site / "static").mkdir()
    (site / "static" / "CNAME").write_text("example.test\n")
    (site / "assets" / "js").mkdir(parents=True)
    (site / "assets" / "js" / "explorer.js").write_text("// explorer\n")
    build(site, stage_factory=FakeStage, quiet=True)
    page = soup(site / "_site" / "first-light" / "index.html")
    sheets = [l["href"] for l in page.find_all("link", rel="stylesheet")]
    assert "/REPO/assets/css/site.css" in sheets
    script = page.find("script", src="/REPO/assets/js/explorer.js")
    assert script is not None and script.has_attr("defer")
    assert (site / "_site" / "assets" / "js" / "explorer.js").is_file()
    assert (site / "_site" / "CNAME").read_text() == "example.test\n"  # static/ goes to the root


def test_noop_and_one_edit_rebuild_only_what_changed(site):
    out = site / "_site"
    first = build(site, stage_factory=FakeStage, quiet=True)
    assert "edges-between-units/index.html" in first.rendered_files
    inode = (out / "index.html").stat().st_ino

    again = build(site, stage_factory=FakeStage, quiet=True)
    assert again.rendered_files == []
    assert again.reused == first.rendered
    assert (out / "index.html").stat().st_ino == inode  # hard-linked, not rewritten

    post = site / "posts" / "2024-01-01-first-light.md"
    post.write_text(post.read_text().replace("The first post", "The very first post"))
    edit = build(site, stage_factory=FakeStage, quiet=True)
    assert edit.rendered_files == ["feed.xml", "first-light/index.html", "search.json"]
    assert "The very first post" in soup(out / "first-light" / "index.html").get_text()

    post.write_text(post.read_text().replace("title: First light", "title: First lamp"))
    retitle = build(site, stage_factory=FakeStage, quiet=True)
    assert retitle.rendered_files == [
        "edges-between-units/index.html",  # its link to the older post shows the title
        "feed.xml", "first-light/index.html", "index.html", "search.json", "tags/notes/index.html"]


def test_deleted_post_disappears_and_failed_build_changes_nothing(site):
    out = site / "_site"
    build(site, stage_factory=FakeStage, quiet=True)
    (site / "posts" / "2024-01-01-first-light.md").unlink()
    build(site, stage_factory=FakeStage, quiet=True)
    assert not (out / "first-light").exists()

    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (site / "templates").mkdir()
    (site / "templates" / "tags.html").write_text("{{ undefined_thing.x }}")  # fails late, after posts
    with pytest.raises(BuildError, match=r"tags\.html:1:1: template error"):
        build(site, stage_factory=FakeStage, quiet=True)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    names = sorted(p.name for p in site.iterdir() if ".old-" not in p.name)  # old trees: deleted in background
    assert names == sorted(["_site", ".cache", "posts", "images", "site.toml", "templates"])


def test_swap_is_one_exchange_on_linux(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x").write_text("new")
    (b / "x").write_text("old")
    if not _exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) not available here; the two-rename fallback is used")
    assert (b / "x").read_text() == "new" and (a / "x").read_text() == "old"


def test_noop_rebuild_imports_no_torch(site):
    build(site, stage_factory=FakeStage, quiet=True)
    # No directives: the fixture's are dropped so the real pipeline (no stand-in) runs.
    post = site / "posts" / "2024-02-03-edges-between-units.md"
    post.write_text(post.read_text().replace("<< unit conv1_4", "unit conv1_4").replace(
        "<< hierarchy", "hierarchy"))
    code = (
        "import sys\n"
        "from generator.site.pipeline import build\n"
        f"r = build({str(site)!r}, quiet=True)\n"
        "print(r.rendered, 'torch' in sys.modules, 'markdown' in sys.modules, 'jinja2' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    rendered, torch, *_ = first.stdout.split()
    assert int(rendered) > 0 and torch == "False"
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["0", "False", "False", "False"]
