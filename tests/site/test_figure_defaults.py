"""One order for every figure key: the directive, then the post's front matter `figures:`,
then site.toml's `[figures]`, then the kind's default; the latter two checked like
directive values."""
import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from generator.site.errors import BuildError
from generator.site.pipeline import build

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "content" / "images" / "sneaker_9.png"
POST = """---
title: {title}
date: 2024-01-0{n}
image: sneaker_9.png
{fm}---

<< hierarchy fc6_3{h} >>

<< units conv2_3 conv3_1{u} >>

<< predictions{p} >>

<< patches conv2_5{k} >>
"""


def _site(root: Path, figures: str, posts: dict[str, tuple[str, ...]]) -> Path:
    (root / "posts").mkdir(parents=True)
    (root / "images").mkdir()
    shutil.copy(IMAGE, root / "images" / IMAGE.name)
    (root / "site.toml").write_text(f'title = "t"\noutput = "out"\n\n[figures]\n{figures}')
    for n, (slug, spec) in enumerate(posts.items(), 1):
        fm, h, u, p, k = spec
        (root / "posts" / f"2024-01-0{n}-{slug}.md").write_text(
            POST.format(title=slug, n=n, fm=fm, h=h, u=u, p=p, k=k))
    return root


def _figures(root: Path, slug: str) -> list[str]:
    page = BeautifulSoup((root / "out" / slug / "index.html").read_text(), "html.parser")
    return [str(f) for f in page.select("figure.ft-figure")]


SITE_DEFAULTS = 'depth = 1\nchildren = 2\nrule = "deconv"\nk = 3\nnorm = "percentile:99"\n'


@pytest.mark.slow
def test_site_and_front_matter_defaults_equal_explicit_directives(tmp_path):
    implicit = _site(tmp_path / "a", SITE_DEFAULTS, {
        "site": ("", "", "", "", ""),
        "post": ("figures:\n  children: 3\n", "", "", "", ""),
    })
    explicit = _site(tmp_path / "b", "", {
        "site": ("", " depth=1 children=2 rule=deconv norm=percentile:99",
                 " rule=deconv norm=percentile:99", " k=3", " k=3 rule=deconv norm=percentile:99"),
        "post": ("", " depth=1 children=3 rule=deconv norm=percentile:99",
                 " rule=deconv norm=percentile:99", " k=3", " k=3 rule=deconv norm=percentile:99"),
    })
    build(implicit, quiet=True)
    build(explicit, quiet=True)
    for slug in ("site", "post"):
        got, want = _figures(implicit, slug), _figures(explicit, slug)
        assert len(got) == 4 and got == want, slug
    tree = BeautifulSoup(_figures(implicit, "post")[0], "html.parser")
    assert "deconv" in tree.get_text()


@pytest.mark.parametrize("figures, message", [
    ('depth = "abc"\n', "site.toml [figures]: depth must be an integer in 0..8, got 'abc'"),
    ("children = -5\n", "children=-5 is out of range; valid: 1..16"),
    ('rule = "decon"\n', "(did you mean 'deconv'?)"),
    ("dept = 3\n", "has no figure setting 'dept' (did you mean 'depth'?)"),
    ("depth = true\n", "depth must be an integer in 0..8, got True"),
    ('id = "fig-a"\n', "site.toml [figures]: id names one figure; set it on the directive"),
    ("lr = 0\n", "lr=0 is out of range; valid: 0.0001..10.0"),
])
def test_bad_site_defaults_are_one_line_errors(tmp_path, figures, message):
    root = _site(tmp_path / "s", figures, {"one": ("", "", "", "", "")})
    with pytest.raises(BuildError) as e:
        build(root, quiet=True)
    text = str(e.value)
    assert message in text and "\n" not in text
    assert text.startswith(str(root / "site.toml") + ":")
    assert ":5:" in text  # the key's line in site.toml


def test_bad_front_matter_defaults_name_the_post(tmp_path):
    root = _site(tmp_path / "s", "", {"one": ("figures:\n  depth: 99\n", "", "", "", "")})
    with pytest.raises(BuildError, match=r"2024-01-01-one\.md:\d+:\d+: front matter figures: "
                                         r"depth=99 is out of range"):
        build(root, quiet=True)


def test_site_figure_template_overrides_theme_and_keys_the_html(tmp_path):
    """A site's own templates/figures/ partial wins over the theme's, and editing it
    changes the published figure on the next build (it is part of the HTML's key)."""
    root = _site(tmp_path / "s", "", {"one": ("", "", "", "", "")})
    own = root / "templates" / "figures"
    own.mkdir(parents=True)
    theme = REPO / "templates" / "figures" / "predictions.html"
    (own / "predictions.html").write_text(
        theme.read_text().replace("<div class=\"ft-predictions-body\"", "<div data-own=\"v1\" class=\"ft-predictions-body\"", 1))
    build(root, quiet=True)
    assert 'data-own="v1"' in (root / "out" / "one" / "index.html").read_text()
    (own / "predictions.html").write_text(
        theme.read_text().replace("<div class=\"ft-predictions-body\"", "<div data-own=\"v2\" class=\"ft-predictions-body\"", 1))
    build(root, quiet=True)
    page = (root / "out" / "one" / "index.html").read_text()
    assert 'data-own="v2"' in page and 'data-own="v1"' not in page
