"""Issue 12, point 9: the explorer's default budget comes from the bytes tiles really take,
and a budget that cuts the requested depth says so, with the budget that would cover it."""
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from generator.cli import main
from generator.vis.core.backprop import Backprop
from generator.vis.core.explore import explore
from generator.vis.core.inputs import load_input
from generator.vis.core.models import load_model
from generator.vis.errors import EngineWarning
from generator.vis.kinds.hierarchy import EXPLORE_BYTES, default_explore_budget
from generator.vis.render.tiles import gradient_pngs

SNEAKER = Path(__file__).resolve().parents[2] / "content" / "images" / "sneaker_9.png"


@pytest.fixture(scope="module")
def bp():
    model = load_model("default", device="cpu")
    return Backprop(model, load_input(SNEAKER, model), "guided")


def test_default_budget_follows_the_real_tile_bytes(bp):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EngineWarning)
        tree = explore(bp, "fc6_245", depth=1, children=5, levels=1, budget=40)
    pngs = gradient_pngs(torch.stack([n.image for n in tree.root.walk()]), 99.5)
    per_tile = sum(map(len, pngs)) / len(pngs)
    h, w = bp.model.input_shape[1:]
    estimate = default_explore_budget((1, h, w), per_tile / (h * w))
    assert default_explore_budget((1, h, w)) == pytest.approx(estimate, rel=0.3) or \
        default_explore_budget((1, h, w)) == estimate == 300
    assert 0.35 < per_tile / (h * w) < 0.75                # the measured 0.54 bytes per pixel
    assert default_explore_budget((3, 224, 224)) == int(EXPLORE_BYTES // (2.3 * 224 * 224))
    assert default_explore_budget((1, 64, 64)) == 300


def test_a_cutting_budget_says_which_budget_covers_it(bp):
    with pytest.warns(EngineWarning) as caught:
        explore(bp, "fc6_245", depth=1, children=3, levels=2, budget=6)
    (message,) = [str(w.message) for w in caught]
    assert message.startswith("explore=2 needs 40 tiles") and "explore_budget=6 made" in message
    assert message.endswith("(set explore_budget=40 to cover it)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", EngineWarning)
        full = explore(bp, "fc6_245", depth=1, children=3, levels=2, budget=40)
    assert "budget" not in full.stops.values() and full.size == 40


def test_the_needed_count_covers_a_layer_skipping_path(bp):
    with pytest.warns(EngineWarning) as caught:
        explore(bp, "fc6_245", depth=2, children=2, path=["conv4_11", "conv1_2"], levels=1, budget=3)
    needed = int(str(caught[0].message).split("needs ")[1].split()[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", EngineWarning)
        tree = explore(bp, "fc6_245", depth=2, children=2, path=["conv4_11", "conv1_2"],
                       levels=1, budget=needed)
    assert "budget" not in tree.stops.values()


def test_the_build_names_the_figure(tmp_path):
    site = tmp_path / "s"
    (site / "posts").mkdir(parents=True)
    (site / "site.toml").write_text('title = "b"\nmodel = "default"\n')
    (site / "sneaker.png").write_bytes(SNEAKER.read_bytes())
    (site / "posts" / "2024-01-01-a.md").write_text(
        "---\ntitle: A\ndate: 2024-01-01\nimage: ../sneaker.png\n---\n\nText.\n\n"
        "<< hierarchy fc6_245 depth=1 children=3 explore=2 explore_budget=6 >>\n")
    result = CliRunner().invoke(main, ["build", str(site)])
    assert result.exit_code == 0, result.output
    lines = [l for l in result.stderr.splitlines() if "explore_budget" in l]
    assert len(lines) == 1 and "2024-01-01-a.md:9:1: explore=2 needs 40 tiles" in lines[0], result.stderr
