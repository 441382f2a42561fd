"""A unit that is off on the post's image: one warning at the directive, and the tile
says so instead of showing a blank gray square (issue 12)."""
import shutil
from pathlib import Path

from bs4 import BeautifulSoup

from generator.site.pipeline import build

ROOT = Path(__file__).resolve().parents[2]


def sneaker_site(tmp_path, slug: str, figures: str, toml: str = "") -> Path:
    """A site on the default model and the sneaker with one post of `figures`."""
    root = tmp_path / "site"
    (root / "posts").mkdir(parents=True)
    (root / "images").mkdir()
    shutil.copy(ROOT / "content" / "images" / "sneaker_9.png", root / "images")
    (root / "site.toml").write_text('title = "t"\nimage = "sneaker_9.png"\n'
                                    'output = "out"\ncache = "cache"\n' + toml)
    (root / "posts" / f"2024-01-01-{slug}.md").write_text(
        f"---\ntitle: {slug}\ndate: 2024-01-01\n---\n{figures}")
    return root


def test_inactive_units_warn_once_and_say_so_on_the_tile(tmp_path, capsys):
    root = sneaker_site(tmp_path, "dead", "<< units fc6_12 fc6_245 >>\n\n"
                        "<< hierarchy fc6_12 depth=1 children=2 >>\n", "[theme]\nlegends = false\n")
    build(root, quiet=False)
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if "inactive on this image" in l]
    assert len(lines) == 1, err        # the same warning is printed once per build
    assert lines[0].startswith("warning: ") and "2024-01-01-dead.md:5:1" in lines[0]
    assert "fc6_12: inactive on this image (activation 0)" in lines[0]
    page = BeautifulSoup((root / "out" / "dead" / "index.html").read_text(), "html.parser")
    units, tree = page.find_all("figure")
    cells = {c["data-unit"]: c for c in units.select(".ft-cell")}
    assert "ft-inactive" in cells["fc6_12"]["class"] and cells["fc6_12"].select(".ft-inactive-note")
    assert "ft-inactive" not in cells["fc6_245"]["class"]
    # every gradient figure says what its grays mean; `[theme] legends = false` hides it
    assert "Gray: no effect on the unit" in units.select_one(".ft-legend").text
    assert "Line width: edge weight" in tree.select_one(".ft-legend").text
    assert "no-legends" in page.body["class"]
    root_node = tree.select_one('.ft-node[data-unit="fc6_12"]')
    assert "ft-inactive" in root_node["class"] and root_node.select_one(".ft-inactive-note")


def test_a_negative_logit_is_not_inactive(tmp_path, capsys):
    """A logit has no ReLU: below zero it still seeds a picture (scaled by a negative
    value), so only an exact 0 is "inactive". fc8_8 (Bag) is -5.69 on the sneaker."""
    import numpy as np
    from PIL import Image

    root = sneaker_site(tmp_path, "neg", "<< units fc8_8 >>\n\n<< hierarchy fc8_8 depth=1 children=2 >>\n")
    build(root, quiet=False)
    assert "inactive" not in capsys.readouterr().err
    page = BeautifulSoup((root / "out" / "neg" / "index.html").read_text(), "html.parser")
    units, tree = page.find_all("figure")
    cell = units.select_one('.ft-cell[data-unit="fc8_8"]')
    assert "ft-inactive" not in cell["class"] and not cell.select(".ft-inactive-note")
    assert "activation -5.69" in cell.img["title"]
    tile = np.asarray(Image.open(root / "out" / cell.img["src"].lstrip("/")).convert("L"))
    assert tile.std() > 1                      # a picture, not a blank gray square
    node = tree.select_one('.ft-node[data-unit="fc8_8"]')
    assert "ft-inactive" not in node["class"] and not node.select(".ft-inactive-note")
    weights = [float(g["data-weight"]) for g in tree.select("g.ft-edge")]
    assert len(weights) == 2 and min(weights) > 0
