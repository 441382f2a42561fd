"""The feature-visualization figures: `optimize`, `dream` and `optimize=1` on unit figures,
through the directive table, the build and the cache (on the default model)."""
import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from generator.site.directives import DirectiveError, find_directives, validate
from generator.site.pipeline import build
from generator.vis.api import KINDS

ROOT = Path(__file__).resolve().parents[2]
POST = """---
title: What units want
date: 2024-03-01
---
<< optimize conv3_5 conv5_34 >>

<< optimize fc6_12 diversity=2 >>

<< dream conv4 octaves=2 octave_steps=3 >>

<< units conv3_5 conv5_34 optimize=1 >>

<< hierarchy fc7_3 depth=1 children=2 optimize=1 >>
"""


def _values(text):
    return validate(find_directives(text, "p.md")[0])


def test_keys_checked_with_position():
    v = _values("<< optimize conv5_34 lr=0.2 steps=64 param=pixel transforms=off >>")
    assert (v["lr"], v["steps"], v["param"], v["transforms"]) == (0.2, 64, "pixel", "off")
    for text, message in [
        ("<< optimize conv5_34 steps=0 >>", "p.md:1:22: steps=0 is out of range; valid: 1..4096"),
        ("<< optimize conv5_34 lr=fast >>", "p.md:1:22: lr must be a number in 0.0001..10.0, got 'fast'"),
        ("<< optimize conv5_34 lr=nan >>", "lr must be a number"),
        ("<< optimize conv5_34 objective=gram >>", "objective='gram' is not valid"),
        ("<< dream conv5_34 rule=guided >>", "p.md:1:19: 'dream' has no key 'rule'"),
    ]:
        with pytest.raises(DirectiveError) as e:
            _values(text)
        assert message in str(e.value), str(e.value)


def test_a_unit_figure_without_optimize_keeps_its_request():
    """optimize=0 leaves every optimization key out, so existing cache keys hold."""
    plain = KINDS["units"].request_params(_values("<< units conv3_5 steps=64 >>"))
    assert not {"optimize", "steps", "seed", "objective", "lr"} & set(plain)
    on = KINDS["units"].request_params(_values("<< units conv3_5 optimize=1 steps=64 >>"))
    assert on["optimize"] == 1 and on["steps"] == 64 and on["objective"] == "channel"
    assert "steps" not in KINDS["hierarchy"].request_params(_values("<< hierarchy fc7_3 seed=3 >>"))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("fv") / "site"
    (root / "posts").mkdir(parents=True)
    (root / "images").mkdir()
    shutil.copy(ROOT / "content" / "images" / "sneaker_9.png", root / "images")
    (root / "site.toml").write_text('title = "fv"\nimage = "sneaker_9.png"\noutput = "out"\n'
                                    'cache = "cache"\n\n[figures]\nsteps = 12\n')
    (root / "posts" / "2024-03-01-want.md").write_text(POST)
    return root


@pytest.fixture(scope="module")
def built(site):
    import generator.vis.core.featurevis as fv

    calls = []
    real = fv.optimize

    def counting(model, units, **kw):
        calls.append((list(units), kw["diversity"]))
        return real(model, units, **kw)

    fv.optimize = counting
    try:
        result = build(site, quiet=True)
    finally:
        fv.optimize = real
    page = BeautifulSoup((site / "out" / "want" / "index.html").read_text(), "html.parser")
    return result, page.find_all("figure"), calls


def test_figures_render_with_their_pictures(built, site):
    result, figs, _ = built
    assert result.figures["computed"] == 5
    opt, div, dream, units, tree = figs
    assert [c["data-unit"] for c in opt.select(".ft-optimized")] == ["conv3_5", "conv5_34"]
    assert len(div.select(".ft-pictures img")) == 2
    assert len(dream.find_all("img")) == 3 and "conv4" in dream.figcaption.text
    assert len(units.select(".ft-picture")) == 2 and "optimized" in units.figcaption.text
    assert len(tree.select(".ft-node")) == 3 == len(tree.select(".ft-node .ft-picture"))
    for img in BeautifulSoup(str(figs), "html.parser").find_all("img"):
        assert (site / "out" / img["src"].lstrip("/")).is_file(), img["src"]


def test_pictures_are_shared_and_batched_across_the_build(built):
    """conv3_5's picture is one computation, shown by the optimize figure and the units
    figure alike; all diversity-1 pictures known before running go in one batch."""
    _, figs, calls = built
    opt, _, _, units, _ = figs
    by_unit = {c["data-unit"]: c.find("img")["src"] for c in opt.select(".ft-optimized")}
    beside = {c["data-unit"]: c.select_one(".ft-picture")["src"] for c in units.select(".ft-cell")}
    assert by_unit == beside
    singles = [u for u, d in calls if d == 1]
    assert sorted(singles[0]) == ["conv3_5", "conv5_34", "fc7_3"]   # one batch for three figures
    assert [u for u, d in calls if d == 2] == [["fc6_12"]]


def test_rebuild_reuses_every_figure(built, site):
    again = build(site, quiet=True)
    assert again.figures["computed"] == 0 and again.figures["reused"] == 5


def test_bad_unit_is_one_line_with_position(tmp_path, site):
    from generator.site.errors import BuildError

    bad = tmp_path / "bad"
    shutil.copytree(site, bad, ignore=shutil.ignore_patterns("out*", "cache*"))
    post = bad / "posts" / "2024-03-01-want.md"
    post.write_text(POST.replace("<< optimize fc6_12", "<< optimize fc6_999999"))
    with pytest.raises(BuildError) as e:
        build(bad, quiet=True)
    assert "2024-03-01-want.md:7:1" in str(e.value) and "fc6" in str(e.value)
    assert not (bad / "out").exists()


def test_progress_follows_the_optimization_steps():
    from generator.vis import api

    params = KINDS["optimize"].request_params(_values("<< optimize conv3_5 conv5_34 steps=5 >>"))
    seen = []
    api.compute([api.FigureRequest("optimize", "default", None, [], params)],
                on_steps=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (10, 10) and [d for d, _ in seen] == sorted(d for d, _ in seen)
