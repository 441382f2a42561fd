"""Figure HTML: parsed, not grepped."""
from bs4 import BeautifulSoup

from generator.site.figures.markup import render_figure
from test_figures_support import hierarchy_data


def _soup(html):
    return BeautifulSoup(html, "html.parser")


def test_hierarchy_figure_structure():
    html = render_figure("hierarchy", hierarchy_data(), base_url="/repo/", caption=None)
    fig = _soup(html).find("figure")
    assert {"ft-figure", "ft-hierarchy", "zoom_img"} <= set(fig["class"])
    imgs = fig.find_all("img")
    assert [i.find_parent(class_="ft-node")["data-unit"] for i in imgs] == [
        "fc6_1068", "conv5_243", "conv5_9", "conv4_7", "conv4_8"]
    assert imgs[0]["src"] == "/repo/figures/r.png"
    alt = {i.find_parent(class_="ft-node")["data-unit"]: i["alt"] for i in imgs}
    assert "conv4_8" in alt["conv4_8"] and "layer conv4" in alt["conv4_8"]
    assert "weight 0.125" in alt["conv4_8"] and "from conv5_243" in alt["conv4_8"]
    # one SVG edge per parent-child pair, weight on hover via <title>
    edges = fig.find("svg").find_all("g", class_="ft-edge")
    pairs = {(g["data-parent"], g["data-child"]): g for g in edges}
    assert set(pairs) == {("fc6_1068", "conv5_243"), ("fc6_1068", "conv5_9"),
                          ("conv5_243", "conv4_7"), ("conv5_243", "conv4_8")}
    assert "0.75" in pairs[("conv5_243", "conv4_7")].find("title").text
    assert fig.find("figcaption") is not None


def test_caption_is_escaped_and_size_applies():
    html = render_figure("hierarchy", hierarchy_data(), base_url="/",
                         caption="<script>alert(1)</script> `conv5_243`", size="400px")
    fig = _soup(html).find("figure")
    assert fig.find("script") is None
    assert "<script>" in fig.find("figcaption").text
    assert fig.find("figcaption").find("code").text == "conv5_243"
    assert "max-width: 400px" in fig["style"]


def test_other_kinds_render():
    units = {"model": "default", "rule": "guided", "image_name": "x.png", "tile_w": 64,
             "tile_h": 64, "units": [{"unit": "conv1_4", "layer": "conv1", "index": 4,
                                      "activation": 0.5, "tile": "u.png"}]}
    fig = _soup(render_figure("unit", units, base_url="/")).find("figure")
    assert "ft-unit" in fig["class"] and "conv1_4" in fig.find("img")["alt"]
    preds = {"model": "default", "image_name": "x.png", "tile_w": 64, "tile_h": 64,
             "input_tile": "i.png", "predictions": [
                 {"index": 9, "label": "Ankle boot", "prob": 0.9},
                 {"index": 7, "label": "<b>Sneaker</b>", "prob": 0.1}]}
    fig = _soup(render_figure("predictions", preds, base_url="/")).find("figure")
    rows = fig.find("tbody").find_all("tr")
    assert [r.th.text for r in rows] == ["Ankle boot", "<b>Sneaker</b>"]
    assert "90.0%" in rows[0].td.text
    maps = {"model": "default", "image_name": "x.png", "layer": "conv1", "map_w": 32,
            "map_h": 32, "tile_w": 64, "tile_h": 64, "maps": [{"unit": f"conv1_{i}", "index": i, "max": 1.0 + i,
                                   "tile": f"m{i}.png"} for i in range(3)]}
    fig = _soup(render_figure("featuremaps", maps, base_url="/")).find("figure")
    assert len(fig.find_all("img")) == 3
    acts = {"model": "default", "rule": "guided", "unit": "conv1_7", "tile_w": 64, "tile_h": 64,
            "image_name": "",
            "items": [{"image_name": "a.png", "activation": 2.0, "tile": "g.png",
                       "input_tile": "in.png"}]}
    fig = _soup(render_figure("maxacts", acts, base_url="/")).find("figure")
    assert len(fig.find_all("img")) == 2 and fig.find(class_="ft-pair")["data-image"] == "a.png"
