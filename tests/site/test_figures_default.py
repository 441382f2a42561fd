"""A post with every figure directive builds on the embedded `default` model."""
import json
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from generator.site.pipeline import build
from generator.vis.api import DEFAULT_WEIGHTS

pytestmark = pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(),
                                reason=f"{DEFAULT_WEIGHTS} not shipped yet (build.py train-default)")

POST = """---
title: Default model
date: 2024-02-01
model: default
image: a.png
---
<< unit conv1_4 >>

<< units conv5_1 conv5_2 >>

<< hierarchy fc6_10 depth=3 children=3 >>

<< predictions k=3 >>

<< featuremaps conv2 max=12 >>

<< maxacts conv3_2 images=a.png,b.png >>
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from PIL import Image

    from generator.vis.default.model import load_sample

    images, _ = load_sample()
    root = tmp_path_factory.mktemp("defaultsite") / "site"
    (root / "posts").mkdir(parents=True)
    (root / "images").mkdir()
    for name, arr in zip(("a", "b"), images[:2]):
        Image.fromarray(arr).save(root / "images" / f"{name}.png")
    (root / "site.toml").write_text('title = "d"\noutput = "out"\ncache = "cache"\n')
    (root / "posts" / "2024-02-01-default.md").write_text(POST)
    result = build(root, quiet=True)
    return root, result


def test_every_directive_on_the_default_model(site):
    from generator.vis.default.model import CLASS_NAMES

    root, result = site
    assert result.figures["computed"] == 6
    page = BeautifulSoup((root / "out" / "default" / "index.html").read_text(), "html.parser")
    figs = page.find_all("figure", class_="ft-figure")
    assert len(figs) == 6
    for fig in figs:
        for img in fig.find_all("img"):
            assert (root / "out" / img["src"].lstrip("/")).is_file()
    assert {r.th.text for r in figs[3].find("tbody").find_all("tr")} <= set(CLASS_NAMES)
    assert len(figs[4].find_all("img")) == 12


def test_default_hierarchy_equals_explain(site):
    from generator.cli import main

    root, _ = site
    out = CliRunner().invoke(main, ["explain", "--model", "default", "--image",
                                    str(root / "images" / "a.png"), "--root", "fc6_10",
                                    "--depth", "3", "--children", "3", "--json", "-"])
    assert out.exit_code == 0, out.output
    tree = json.loads(out.stdout[out.stdout.index("{"):])["tree"]
    want = {}

    def walk(n):
        want[n["path"]] = n["weight"]
        for c in n["children"]:
            walk(c)
    walk(tree)
    page = BeautifulSoup((root / "out" / "default" / "index.html").read_text(), "html.parser")
    nodes = page.find("figure", class_="ft-hierarchy").find_all(class_="ft-node")
    got = {n["data-path"]: float(n["data-weight"]) if n.has_attr("data-weight") else None for n in nodes}
    assert set(got) == set(want) and len(got) == 1 + 3 * 3
    for path, w in want.items():
        assert got[path] == (None if w is None else pytest.approx(w, rel=1e-6, abs=1e-12))
