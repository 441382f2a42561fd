"""Figures through the real build: every directive, fidelity to `build.py explain`,
cache reuse without torch, recomputation after a weights swap, bad input."""
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from generator.site.errors import BuildError
from generator.site.pipeline import build
from test_figures_support import make_site, save_weights

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = make_site(tmp_path_factory.mktemp("figsite") / "site")
    first = build(root, quiet=True)
    return root, first


def _page(root, slug):
    return BeautifulSoup((root / "out" / slug / "index.html").read_text(), "html.parser")


def _copy(root, tmp_path):
    """A private copy of the built site, its output and its cache."""
    dst = tmp_path / "site"
    # a previous build's old tree (`out.old-*`) may be vanishing in the background
    shutil.copytree(root, dst, ignore=shutil.ignore_patterns("*.old-*"))
    return dst


def test_every_directive_becomes_a_figure(built):
    root, first = built
    assert first.figures["computed"] == 9 and first.figures["reused"] == 0
    figs = _page(root, "all").find_all("figure", class_="ft-figure")
    kinds = [next(c[3:] for c in f["class"] if c.startswith("ft-") and c != "ft-figure")
             for f in figs]
    assert kinds == ["unit", "units", "hierarchy", "predictions", "featuremaps", "maxacts"]
    for fig in figs:
        assert "zoom_img" in fig["class"] and fig.find("figcaption").text.strip()
        for img in fig.find_all("img"):
            assert img["alt"]
            src = root / "out" / img["src"].lstrip("/")
            # tiles are PNGs named by the hash of their content
            assert src.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert src.name == hashlib.sha256(src.read_bytes()).hexdigest()[:24] + ".png"
    units = figs[1]
    assert [c["data-unit"] for c in units.find_all(class_="ft-cell")] == ["conv2_1", "conv2_5"]
    cap = units.find("figcaption")
    legend = cap.find(class_="ft-legend").extract()      # what the grays mean, under the caption
    assert "Gray: no effect" in legend.text
    assert cap.text.strip() == "Figure 2. Two conv2 units"  # numbered in page order
    preds = figs[3].find("tbody").find_all("tr")
    assert len(preds) == 3 and {r.th.text for r in preds} <= {"circle", "square", "cross", "stripe"}
    assert len(figs[4].find_all("img")) == 6            # conv1 has 6 channels
    assert [p["data-image"] for p in figs[5].find_all(class_="ft-pair")] == ["one.png", "two.png"]


def _tree_from_html(fig):
    return {n["data-path"]: (n["data-unit"], float(n["data-weight"]) if n.has_attr("data-weight") else None)
            for n in fig.find_all(class_="ft-node")}


def _tree_from_json(node, out=None):
    out = {} if out is None else out
    out[node["path"]] = (node["unit"], node["weight"])
    for c in node["children"]:
        _tree_from_json(c, out)
    return out


def test_hierarchy_equals_explain(built):
    root, _ = built
    result = CliRunner().invoke(__import__("generator.cli", fromlist=["main"]).main, [
        "explain", "--model", f"{root / 'net.py'}:build", "--weights", str(root / "a.safetensors"),
        "--image", str(root / "images" / "one.png"), "--root", "fc4_3", "--depth", "2",
        "--children", "3", "--json", "-"])
    assert result.exit_code == 0, result.output
    expected = _tree_from_json(json.loads(result.stdout[result.stdout.index("{"):])["tree"])
    fig = _page(root, "all").find("figure", class_="ft-hierarchy")
    got = _tree_from_html(fig)
    assert list(got) == list(expected) or set(got) == set(expected)
    assert len(got) == 7
    for path, (unit, weight) in expected.items():
        assert got[path][0] == unit
        if weight is None:
            assert got[path][1] is None
        else:
            assert got[path][1] == pytest.approx(weight, rel=1e-6, abs=1e-12)
    # every parent-child pair has its line, carrying the same weight
    edges = {(g["data-parent"], g["data-child"]): float(g["data-weight"])
             for g in fig.find_all("g", class_="ft-edge")}
    assert len(edges) == 6
    for path, (unit, weight) in expected.items():
        if weight is not None:
            parent = expected[path.rsplit("-", 1)[0]][0]
            assert edges[(parent, unit)] == pytest.approx(weight, rel=1e-6, abs=1e-12)


def test_noop_rebuild_computes_nothing_and_imports_no_torch(built):
    root, _ = built
    code = ("import json, sys; from generator.site.pipeline import build; "
            f"r = build({str(root)!r}, quiet=True); "
            "print(json.dumps([r.figures, 'torch' in sys.modules, r.rendered]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    figures, torch_loaded, rendered = json.loads(out.strip().splitlines()[-1])
    assert figures["computed"] == 0 and figures["reused"] == 9
    assert torch_loaded is False
    assert rendered == 0


def test_weights_swap_recomputes_that_model_only(built, tmp_path):
    root = _copy(built[0], tmp_path)
    save_weights(root / "b.safetensors", 3)       # post "other" uses b; post "all" uses a
    before = _page(root, "all").find_all("img")
    swapped = build(root, quiet=True)
    assert swapped.figures["computed"] == 1 and swapped.figures["reused"] == 9 - 1
    assert [i["src"] for i in _page(root, "all").find_all("img")] == [i["src"] for i in before]


def test_damaged_cache_entry_is_recomputed(built, tmp_path):
    root = _copy(built[0], tmp_path)
    entries = sorted((root / "cache" / "figures" / "entries").glob("*.json"))
    entries[0].write_text(entries[0].read_text()[:-20])
    again = build(root, quiet=True)
    assert again.figures["computed"] == 1 and again.figures["reused"] == 8


def test_patch_grids_show_the_top_activating_examples(built):
    """The grid's examples are the dataset's strongest images for the unit, best first,
    checked against a brute-force forward over the whole folder."""
    import torch

    from generator.vis.core.inputs import load_input
    from generator.vis.core.models import load_model

    root, _ = built
    page = _page(root, "patches")
    fig = page.find("figure", class_="ft-patches")
    imgs = fig.find_all("img")
    assert len(imgs) == 2 and "conv2_3" in imgs[0]["alt"] and "4 most activating" in imgs[0]["alt"]
    tree = page.find("figure", class_="ft-hierarchy")
    assert len(tree.find_all(class_="ft-band")) == 3          # a grid under each of 3 tiles
    model = load_model(f"{root / 'net.py'}:build", str(root / "a.safetensors"), device="cpu")
    layer = model.layer("conv2")
    seen = {}
    handle = dict(model.module.named_modules())[layer.path].register_forward_hook(
        lambda m, a, out: seen.__setitem__("h", out))
    best = []
    for f in sorted((root / "dataset").glob("*.png")):
        with torch.no_grad():
            model.module(load_input(f, model).unsqueeze(0))
        best.append((float(seen["h"][0, 3].max()), f.name))
    handle.remove()
    best.sort(reverse=True)
    grids = [json.loads(p.read_text())["data"] for p in (root / "cache" / "figures" / "entries").glob("*.json")]
    grid = next(d["grid"] for d in grids if d.get("unit") == "conv2_3" and "grid" in d)
    assert [e["source"] for e in grid["examples"]] == [name for _, name in best[:4]]
    assert [e["activation"] for e in grid["examples"]] == pytest.approx([a for a, _ in best[:4]], rel=1e-5)


BAD = [
    ("<< unit conv1_99 >>", "conv1_99: conv1 has 6 channels"),
    ("<< hierarchy conv2_1 path=conv3_1 >>", "not below conv2"),
    ("<< unit conv1_1 image=notimage.png >>", "not a readable image"),
    ("<< unit conv1_1 image=bomb.png >>", "pixels is more than the limit"),
    ("<< unit conv1_1 image=../../outside.png >>", "outside the site directory"),
    ("<< unit conv1_1 model=broken.safetensors >>", "broken.safetensors"),
    ("<< unit conv1_1 norm=percentile:200 >>", "percentile must be"),
    ("<< patches conv2_1 dataset=nowhere >>", "dataset 'nowhere' not found"),
]


@pytest.mark.parametrize("directive, message", BAD)
def test_bad_input_is_one_positioned_error_and_keeps_the_site(built, tmp_path, directive, message):
    from PIL import Image

    root = _copy(built[0], tmp_path)
    (root / "images" / "notimage.png").write_text("this is text, not a PNG\n")
    Image.new("1", (8000, 6000)).save(root / "images" / "bomb.png")
    (root / "broken.safetensors").write_bytes(b"\x00" * 64)
    (tmp_path / "outside.png").write_bytes((root / "images" / "one.png").read_bytes())
    post = root / "posts" / "2024-01-03-bad.md"
    post.write_text(f"---\ntitle: Bad\ndate: 2024-01-03\n---\nText.\n\n{directive}\n")
    index = (root / "out" / "index.html").read_bytes()
    with pytest.raises(BuildError) as err:
        build(root, quiet=True)
    text = str(err.value)
    assert "2024-01-03-bad.md:7:1: " in text and message in text and "\n" not in text
    assert (root / "out" / "index.html").read_bytes() == index
    assert not (root / "out" / "bad").exists()


def test_cli_reports_bad_unit_with_exit_status_2(built, tmp_path):
    root = _copy(built[0], tmp_path)
    (root / "posts" / "2024-01-03-bad.md").write_text(
        "---\ntitle: Bad\ndate: 2024-01-03\n---\n\nSee << unit fc4_99 >> here.\n")
    from generator.cli import main

    result = CliRunner().invoke(main, ["build", str(root), "--quiet"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "2024-01-03-bad.md:6:5: " in lines[0] and "fc4 has 16 units" in lines[0]
    assert "Traceback" not in result.output
