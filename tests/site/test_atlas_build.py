"""The unit atlas of a small test net (issue 16): every page exists and every link
resolves, posts link their unit names, a no-op rebuild computes nothing and imports no
torch, a post edit recomputes nothing, `[atlas]` errors are one line, and a browser
follows a typical child."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urljoin, urlparse

import numpy as np
import pytest
from bs4 import BeautifulSoup
from PIL import Image

from browser_support import needs_chromium, serve
from generator.site.errors import BuildError
from generator.site.pipeline import build

ROOT = Path(__file__).resolve().parents[2]
MODEL = '''
import numpy as np
import torch
from torch import nn

INPUT_SHAPE = (1, 12, 12)
LABELS = ["a", "b", "c"]


def preprocess(image):
    a = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    return torch.from_numpy(a)[None] - 0.3


def build():
    torch.manual_seed(2)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 6 * 6, 5), nn.ReLU(), nn.Linear(5, 3))
    with torch.no_grad():
        net[0].bias.fill_(0.2), net[3].bias.fill_(0.2), net[6].bias.fill_(0.3)
    return net
'''
SITE_TOML = '''title = "atlas test"
model = "models/tiny.py:build"
[atlas]
model = "models/tiny.py:build"
dataset = "data"
k = 3
steps = 3
'''
POST = '''---
title: Units
date: 2024-05-01
---

Unit `conv2_1` is nice, `conv2_9` does not exist, and `fc3_4` is a hidden unit.
'''


def make_site(root: Path) -> Path:
    site = root / "site"
    (site / "models").mkdir(parents=True)
    (site / "models" / "tiny.py").write_text(MODEL)
    (site / "posts").mkdir()
    (site / "posts" / "2024-05-01-units.md").write_text(POST)
    (site / "data").mkdir()
    rng = np.random.default_rng(0)
    for i in range(9):
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), "L").save(site / "data" / f"{i}.png")
    (site / "site.toml").write_text(SITE_TOML)
    return site


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    site = make_site(tmp_path_factory.mktemp("atlas"))
    result = build(site, quiet=True)
    return site, site / "_site", result


def check_links(out: Path) -> int:
    """Every local href/src of every HTML page resolves to a file; returns links seen."""
    seen = 0
    for page in out.rglob("*.html"):
        url = "http://x/" + page.relative_to(out).as_posix()
        for tag in BeautifulSoup(page.read_text(), "html.parser").find_all(["a", "img", "link", "script"]):
            ref = tag.get("href") or tag.get("src")
            if not ref or ref.startswith(("#", "mailto:", "data:")):
                continue
            path = urlparse(urljoin(url, ref)).path.lstrip("/")
            if urlparse(urljoin(url, ref)).netloc != "x":
                continue
            target = out / path
            if path.endswith("/") or target.is_dir():
                target = target / "index.html"
            assert target.is_file(), f"{page.relative_to(out)} links {ref}"
            seen += 1
    return seen


def test_every_unit_page_exists_and_links_resolve(built):
    site, out, _ = built
    for layer, n in (("conv1", 3), ("conv2", 4), ("fc3", 5), ("fc4", 3)):
        assert (out / "atlas" / "tiny" / layer / "index.html").is_file()
        for i in range(n):
            assert (out / "atlas" / "tiny" / layer / str(i) / "index.html").is_file()
    assert check_links(out) > 15 * 4
    sitemap = (out / "sitemap.xml").read_text()
    assert "/atlas/tiny/conv2/1/</loc>" in sitemap and "/atlas/tiny/</loc>" in sitemap


def test_unit_page_shows_children_parents_labels_and_mentions(built):
    _, out, _ = built
    page = BeautifulSoup((out / "atlas/tiny/conv2/1/index.html").read_text(), "html.parser")
    kids = [a["href"] for a in page.select(".ft-children a")]
    assert len(kids) == 3 and all(re.fullmatch(r"/atlas/tiny/conv1/\d/", k) for k in kids)
    assert page.select(".ft-hist rect") and page.select("img.ft-picture")
    assert [a.text for a in page.select(".ft-mentions a")] == ["Units"]
    hidden = [BeautifulSoup((out / f"atlas/tiny/fc3/{i}/index.html").read_text(), "html.parser")
              for i in range(5)]
    assert any(h.select(".ft-labels li") for h in hidden)
    # an fc unit is one number: its picture drives a neuron whatever `objective` says
    assert "neuron objective" in hidden[0].text and "channel objective" in page.text
    parents = [p for i in range(3) for p in BeautifulSoup(
        (out / f"atlas/tiny/conv1/{i}/index.html").read_text(), "html.parser").select(".ft-parents a")]
    assert parents and all(p["href"].startswith("/atlas/tiny/conv2/") for p in parents)


def test_no_published_file_names_the_build_machine_path(built):
    """Model files resolve to absolute paths inside the build; none may reach a page."""
    site, out, _ = built
    leaks = [p.relative_to(out) for p in out.rglob("*") if p.suffix in (".html", ".json", ".xml", ".txt")
             and str(site.parent) in p.read_text(errors="replace")]
    assert not leaks, leaks


def test_serve_watches_the_atlas_model_and_dataset(tmp_path):
    """The atlas's model file and dataset folder may live outside the site: `serve`
    watches what the build reports, so they are in it."""
    site = make_site(tmp_path)
    elsewhere = tmp_path / "nets"
    (site / "models").rename(elsewhere)
    (site / "data").rename(tmp_path / "photos")
    toml = (SITE_TOML.replace('model = "models/tiny.py:build"\n[atlas]', '[atlas]')
            .replace("models/tiny.py", str(elsewhere / "tiny.py")).replace('"data"', f'"{tmp_path / "photos"}"'))
    (site / "site.toml").write_text(toml)
    watched = {p.resolve() for p in build(site, quiet=True).watch_paths}
    assert (elsewhere / "tiny.py").resolve() in watched and (tmp_path / "photos").resolve() in watched


def test_unlabelled_examples_are_named_by_their_file(built):
    """A folder of images has no labels: the top examples are named by file, never '?'."""
    _, out, _ = built
    page = BeautifulSoup((out / "atlas/tiny/conv2/1/index.html").read_text(), "html.parser")
    best = next(p.text for p in page.find_all("p") if p.text.startswith("Best first:"))
    assert "?" not in best
    assert re.fullmatch(r"Best first: (\d\.png \([\d.e-]+\)(, )?){3}\.", best), best


def test_post_unit_names_link_to_unit_pages(built):
    _, out, _ = built
    post = BeautifulSoup((out / "units/index.html").read_text(), "html.parser")
    links = {a.text: a["href"] for a in post.select("a.ft-atlas")}
    assert links == {"conv2_1": "/atlas/tiny/conv2/1/", "fc3_4": "/atlas/tiny/fc3/4/"}


def test_noop_rebuild_computes_nothing_and_imports_no_torch(built, tmp_path):
    site, _, _ = built
    code = textwrap.dedent(f"""
        import sys
        from generator.site.pipeline import build
        r = build({str(site)!r}, quiet=True)
        assert 'torch' not in sys.modules, 'torch imported'
        print(r.rendered)
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert proc.stdout.strip() == "0"


def test_post_edit_recomputes_no_unit(built):
    site, out, _ = built
    post = site / "posts" / "2024-05-01-units.md"
    post.write_text(post.read_text() + "\nAlso `conv1_2`.\n")
    r = build(site, quiet=True)
    assert "units/index.html" in r.rendered_files
    assert "atlas/tiny/conv1/2/index.html" in r.rendered_files      # its mentions changed
    assert "atlas/tiny/conv2/3/index.html" not in r.rendered_files
    units = list((site / ".cache" / "atlas" / "units").glob("*.json"))
    assert len(units) == 15
    mtimes = {p: p.stat().st_mtime_ns for p in units}
    build(site, quiet=True)
    assert {p: p.stat().st_mtime_ns for p in units} == mtimes


@pytest.mark.parametrize("table, message", [
    ("k = 0", "'atlas.k' must be in 1..64"),
    ("steps = 'x'", "'atlas.steps' must be a int"),
    ("objective = 'pixel'", "'atlas.objective' must be one of channel, neuron"),
    ("colour = 1", "unknown setting 'atlas.colour'"),
    ("layers = ['conv9']", "'atlas.layers' names 'conv9', not a layer"),
    ("diversity = 0", "'atlas.diversity' must be in 1..8"),
    ("diversity = 9", "'atlas.diversity' must be in 1..8"),
    ("diversity_layers = ['fc9']", "'atlas.diversity_layers' names 'fc9', not a layer of the atlas"),
])
def test_atlas_settings_errors_are_one_line(tmp_path, table, message):
    site = make_site(tmp_path)
    key = table.split()[0]
    kept = [line for line in SITE_TOML.splitlines() if not line.startswith(key + " =")]
    (site / "site.toml").write_text("\n".join(kept + [table]) + "\n")
    with pytest.raises(BuildError) as e:
        build(site, quiet=True)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs chromium")
def test_browser_opens_unit_page_and_follows_a_child(built, browser):
    _, out, _ = built
    with serve(out) as origin:
        page = browser.new_page()
        page.goto(f"{origin}/atlas/tiny/conv2/1/", wait_until="load")
        assert page.locator("h1").inner_text() == "conv2_1"
        # The tiny net's patches are a few pixels: the grids are shown enlarged, readable.
        widths = page.eval_on_selector_all(".ft-patches img", "els => els.map(e => e.getBoundingClientRect().width)")
        natural = page.eval_on_selector_all(".ft-patches img", "els => els.map(e => e.naturalWidth)")
        assert len(widths) == 2 and all(w >= 2 * 64 and w > 3 * n for w, n in zip(widths, natural)), (widths, natural)
        child = page.locator(".ft-children a").first
        name = child.inner_text()
        child.click()
        page.wait_for_load_state("load")
        assert page.locator("h1").inner_text() == name
        assert page.url.endswith(f"/atlas/tiny/conv1/{name.split('_')[1]}/")
        page.goto(f"{origin}/atlas/tiny/conv2/", wait_until="load")
        page.click("button[data-sort=max]")
        maxes = page.eval_on_selector_all("#ft-units li", "els => els.map(e => +e.dataset.max)")
        assert maxes == sorted(maxes, reverse=True)
        page.close()


def test_torchrun_two_gloo_ranks_equal_one_process(tmp_path):
    """`build.py atlas SITE` in one process and under torchrun (2 CPU ranks, gloo) write
    the same unit files and tiles, byte for byte."""
    import os
    import shutil

    site = make_site(tmp_path)
    rng = np.random.default_rng(3)     # 139 images: three 64-image batches, both ranks read
    for i in range(9, 139):
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), "L").save(site / "data" / f"{i}.png")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    one = subprocess.run([sys.executable, str(ROOT / "build.py"), "atlas", str(site), "--device", "cpu"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    assert "15 computed on 1 rank" in one.stdout
    bars = {m[0]: m[1:] for m in re.findall(r"atlas (\w+) .*? (\d+)/(\d+) +[\d.]+ (\w+)/s", one.stderr)}
    assert bars == {"mining": ("139", "139", "images"), "histograms": ("139", "139", "images"),
                    "pictures": ("15", "15", "units"),
                    "patches": ("15", "15", "units"), "edges": ("15", "15", "units")}, one.stderr
    shutil.move(site / ".cache" / "atlas", tmp_path / "one")
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node=2", str(ROOT / "build.py"), "atlas", str(site),
                          "--device", "cpu"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "15 computed on 2 ranks" in two.stdout
    for sub in ("units", "tiles"):
        a = {p.name: p.read_bytes() for p in (tmp_path / "one" / sub).iterdir()}
        b = {p.name: p.read_bytes() for p in (site / ".cache" / "atlas" / sub).iterdir()}
        assert a.keys() == b.keys() and len(a) >= 15
        assert all(a[n] == b[n] for n in a), sub
    assert build(site, quiet=True).rendered_files   # the build finds every unit cached
    assert "atlas: 15 units, 0 computed" in subprocess.run(
        [sys.executable, str(ROOT / "build.py"), "build", str(site)], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120).stderr


def test_diversity_pictures_on_unit_pages(tmp_path):
    """`diversity = 3`: every unit page shows three more pictures, distinct from each other
    and from the main one, each a tile that exists; the main picture is the one without
    diversity (turning diversity on does not change a unit's thumbnail)."""
    site = make_site(tmp_path)
    plain = build(site, quiet=True)
    assert plain.rendered_files
    before = BeautifulSoup((site / "_site/atlas/tiny/conv2/1/index.html").read_text(),
                           "html.parser").select_one("img.ft-picture")["src"]
    (site / "site.toml").write_text(SITE_TOML + "diversity = 3\n")
    build(site, quiet=True)
    out = site / "_site"
    for page in ("conv1/0", "conv2/1", "fc3/4", "fc4/2"):
        html = BeautifulSoup((out / f"atlas/tiny/{page}/index.html").read_text(), "html.parser")
        srcs = [img["src"] for img in html.select(".ft-diverse img")]
        main = html.select_one("img.ft-picture")["src"]
        assert len(set(srcs)) == 3 and main not in srcs, page
        assert all((out / s.lstrip("/")).is_file() for s in srcs)
        if page == "conv2/1":
            assert main == before
    assert check_links(out) > 15 * 4
    units = site / ".cache" / "atlas" / "units"
    mtimes = {p: p.stat().st_mtime_ns for p in units.glob("*.json")}
    (site / "site.toml").write_text(SITE_TOML + "diversity = 3\ndiversity_layers = ['fc4']\n")
    build(site, quiet=True)       # conv1..fc3 back to their first results, fc4 kept: no unit computed
    assert {p: p.stat().st_mtime_ns for p in units.glob("*.json")} == mtimes
    html = (out / "atlas/tiny/conv2/1/index.html").read_text()
    assert "diverse picture" not in html and before in html
    assert (out / "atlas/tiny/fc4/2/index.html").read_text().count("diverse picture") == 3


def test_atlas_command_without_table_is_one_line(tmp_path):
    site = make_site(tmp_path)
    (site / "site.toml").write_text('title = "no atlas"\n')
    proc = subprocess.run([sys.executable, str(ROOT / "build.py"), "atlas", str(site)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no [atlas] table" in proc.stderr


def test_changing_the_model_recomputes_the_atlas(tmp_path):
    site = make_site(tmp_path)
    build(site, quiet=True)
    units = site / ".cache" / "atlas" / "units"
    assert len(list(units.glob("*.json"))) == 15
    model = site / "models" / "tiny.py"
    model.write_text(model.read_text().replace("fill_(0.3)", "fill_(0.4)"))
    r = build(site, quiet=True)
    assert len(list(units.glob("*.json"))) == 30
    assert "atlas/tiny/fc3/0/index.html" in r.rendered_files


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs chromium")
def test_explorer_tiles_link_to_unit_pages(tmp_path, browser):
    """Tiles the explorer draws in the browser carry the same atlas links as the static
    ones, and following one opens the unit's page instead of exploring it."""
    site = make_site(tmp_path)
    (site / "images").mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (12, 12), dtype=np.uint8), "L") \
        .save(site / "images" / "x.png")
    (site / "posts" / "2024-05-02-tree.md").write_text(
        "---\ntitle: Tree\ndate: 2024-05-02\nimage: images/x.png\n---\n\n"
        "<< hierarchy fc3_1 depth=1 children=2 explore=2 >>\n")
    build(site, quiet=True)
    out = site / "_site"
    with serve(out) as origin:
        page = browser.new_page()
        page.goto(f"{origin}/tree/", wait_until="networkidle")
        tree = page.locator(".ft-tree[data-explore]")
        assert tree.get_attribute("data-atlas") == "/atlas/tiny/"
        followed = page.locator(".ft-node.ft-followed").count()
        other = page.locator('.ft-node[data-path^="fc3_1-"]:not(.ft-followed)').first
        other.click()
        page.wait_for_function("() => document.querySelectorAll('.ft-crumbs button').length === 2")
        drawn = page.eval_on_selector_all(
            '.ft-node[data-unit^="conv1_"] .ft-label a.ft-atlas', "els => els.map(a => [a.textContent, a.getAttribute('href')])")
        assert followed >= 1 and drawn, "the explorer drew no linked conv1 tiles"
        for unit, href in drawn:
            assert href == f"/atlas/tiny/conv1/{unit.split('_')[1]}/" and (out / href.strip("/") / "index.html").is_file()
        page.locator('.ft-node[data-unit^="conv1_"] .ft-label a.ft-atlas').first.click()
        page.wait_for_load_state("load")
        assert page.locator("h1").inner_text() == drawn[0][0]
        page.close()
