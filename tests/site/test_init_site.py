"""Issue 12, point 1: `featuretree init DIR` makes a site that builds at once, `build` with
no argument builds the current folder, and the package (a wheel) carries everything an
installed featuretree needs outside the repository."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from generator.cli import main
from site_helpers import soup

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def blog(tmp_path_factory):
    root = tmp_path_factory.mktemp("init") / "my-blog"
    result = CliRunner().invoke(main, ["init", str(root)])
    assert result.exit_code == 0, result.output
    return root


def test_init_writes_a_commented_starter_site(blog):
    files = sorted(p.relative_to(blog).as_posix() for p in blog.rglob("*") if p.is_file())
    assert files[:2] == [".github/workflows/pages.yml", ".gitignore"]
    assert "images/sneaker.png" in files and "models/example_net.py" in files
    assert "site.toml" in files and "requirements.txt" in files
    (post,) = [f for f in files if f.startswith("posts/")]
    text = (blog / post).read_text()
    assert "<< hierarchy" in text and "model: default" in text
    for f in files:
        if not f.endswith(".png"):
            text = (blog / f).read_text()
            assert not any(k in text for k in ("__TITLE__", "__DATE__", "__TORCH", "__FEATURETREE__")), f
    toml = (blog / "site.toml").read_text()
    assert 'title = "My blog"' in toml and toml.count("#") > 10
    ignored = (blog / ".gitignore").read_text().split()
    assert "/_site/" in ignored and "/.cache/" in ignored


@pytest.mark.parametrize("make", [lambda d: (d / "x.md").write_text("x"), lambda d: None])
def test_init_refuses_a_non_empty_folder_or_a_file(tmp_path, make):
    target = tmp_path / "site"
    target.mkdir()
    make(target)
    if not any(target.iterdir()):   # an empty folder is fine
        assert CliRunner().invoke(main, ["init", str(target)]).exit_code == 0
        target = target / "site.toml"   # ... and a file is refused
    result = CliRunner().invoke(main, ["init", str(target)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "featuretree init" in lines[0]


def test_the_workflow_is_for_the_sites_own_repository(blog):
    flow = yaml.safe_load((blog / ".github/workflows/pages.yml").read_text())
    steps = flow["jobs"]["build"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    uses = [s.get("uses", "") for s in steps]
    assert "download.pytorch.org/whl/cpu" in runs and "-r requirements.txt" in runs
    assert 'featuretree build --base-url "${{ steps.pages.outputs.base_path }}/"' in runs
    (cache,) = [s for s in steps if s.get("uses", "").startswith("actions/cache")]
    assert cache["with"]["path"] == ".cache"
    assert "hashFiles('site.toml', 'posts/**', 'images/**', 'models/**'" in cache["with"]["key"]
    assert any(u.startswith("actions/upload-pages-artifact") for u in uses)
    (upload,) = [s for s in steps if s.get("uses", "").startswith("actions/upload-pages")]
    assert upload["with"]["path"] == "_site"
    assert flow["jobs"]["deploy"]["steps"][0]["uses"].startswith("actions/deploy-pages")


def test_the_example_model_file_loads_with_functional_relus(blog):
    import warnings

    from generator.vis.core.models import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("error")   # it sets INPUT_SHAPE, MEAN, STD, LABELS
        m = load_model(f"{blog / 'models/example_net.py'}:build", device="cpu")
    assert [(l.name, l.path) for l in m.layers] == [
        ("conv1", "relu(block1.bn)"), ("conv2", "relu(block2.bn)"),
        ("conv3", "relu(block3.bn)"), ("fc4", "head")]


def test_build_with_no_argument_builds_the_current_folder(blog, monkeypatch):
    monkeypatch.chdir(blog)
    result = CliRunner().invoke(main, ["build", "-q"])
    assert result.exit_code == 0, result.output
    (page,) = [p for p in (blog / "_site").glob("*/index.html") if "first-look" in str(p)]
    figures = soup(page).select("figure.ft-hierarchy img, figure.ft-hierarchy image")
    assert figures, "the first post has a hierarchy figure with tiles"
    for img in figures[:3]:
        src = img.get("src") or img.get("href")
        assert (blog / "_site" / src.lstrip("/")).is_file()


@pytest.mark.slow
def test_the_wheel_works_outside_the_repository(tmp_path):
    """Build the wheel (from a copy: setuptools builds in the source tree), unpack it away
    from the checkout, and init + build a site with it."""
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("generator", "templates", "site_src"):
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    for name in ("setup.py", "pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")],
                   check=True, cwd=tmp_path, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("featuretree-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "lib")
        entry = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "featuretree = generator.cli:main" in entry
    for want in ("generator/_theme/templates/base.html", "generator/_theme/site_src/js/explorer.js",
                 "generator/_theme/templates/figures/hierarchy.html",
                 "generator/site/new_site/dot-github/workflows/pages.yml",
                 "generator/vis/default/assets/fashion_alexnet.safetensors"):
        assert want in names, want
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "lib")}
    run = lambda *args, cwd=tmp_path: subprocess.run(  # noqa: E731
        [sys.executable, "-c", "from generator.cli import main; main()", *args],
        cwd=cwd, env=env, capture_output=True, text=True)
    made = run("init", "blog")
    assert made.returncode == 0, made.stderr
    built = run("build", "-q", cwd=tmp_path / "blog")
    assert built.returncode == 0, built.stderr
    assert not str(ROOT) in (tmp_path / "blog/_site/assets/css/site.css").read_text()
    page = next((tmp_path / "blog/_site").glob("*first-look/index.html"))
    assert "ft-hierarchy" in page.read_text()
    layers = run("layers", "--model", "default")
    assert layers.returncode == 0 and "conv1" in layers.stdout and "fc8" in layers.stdout
