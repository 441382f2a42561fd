"""Figure directives the parser used to get wrong: backticks inside a quoted value (the
directive was dropped and its raw text published) and `dataset=KIND:PATH`."""
from dataclasses import dataclass
from pathlib import Path

import pytest

from generator.site.directives import DirectiveError, find_directives, validate
from generator.site.figures import FigureStage
from generator.site.pipeline import build
from site_helpers import FakeStage, soup

TEXT = '''Intro with `code` first.

<< units conv2_1 conv2_5 caption="Two `conv2` units" size=small >>

Inline << unit conv1_1 caption='a `b` and `c`' >> then `<< unit conv1_9 >>` stays code,
and a lone << unit conv1_2 caption="tick ` here" >> before `more code`.
'''


def test_backticks_in_quoted_values_are_parsed():
    found = find_directives(TEXT, "post.md")
    assert [(d.name, d.pos.line, d.pos.col) for d in found] == [
        ("units", 3, 1), ("unit", 5, 8), ("unit", 6, 12)]
    assert [validate(d)["caption"] for d in found] == [
        "Two `conv2` units", "a `b` and `c`", "tick ` here"]
    assert validate(found[0])["size"] == "small"


def test_a_directive_inside_code_is_still_code():
    assert find_directives('See ``<< unit conv1_1 caption="x `y` z" >>`` here.\n', "p") == []
    assert find_directives("```\n<< unit conv1_1 caption=\"`a`\" >>\n```\n", "p") == []


def test_backtick_caption_reaches_the_page_and_no_raw_directive(tmp_path):
    root = tmp_path / "site"
    (root / "posts").mkdir(parents=True)
    (root / "site.toml").write_text('title = "t"\noutput = "out"\ncache = "cache"\n')
    (root / "posts" / "2024-01-01-a.md").write_text("---\ntitle: A\ndate: 2024-01-01\n---\n" + TEXT)
    FakeStage.made.clear()
    build(root, quiet=True, stage_factory=FakeStage)
    stage = FakeStage.made[-1]
    assert [d.get("caption") for d, _, _ in stage.planned] == [
        "Two `conv2` units", "a `b` and `c`", "tick ` here"]
    page = soup(root / "out" / "a" / "index.html")
    main = page.find("main")
    # the prose's own code spans are still code
    assert [c.text for c in main.find_all("code")] == ["code", "<< unit conv1_9 >>", "more code"]
    for c in main.find_all("code"):
        c.decompose()
    text = main.get_text()
    assert "<<" not in text and "caption=" not in text
    assert [c.text for c in page.find_all("figcaption")] == [  # numbered in page order
        "Figure 1. Two `conv2` units", "Figure 2. a `b` and `c`", "Figure 3. tick ` here"]


def test_unterminated_quote_with_backtick_is_positioned():
    with pytest.raises(DirectiveError) as err:
        find_directives('x\n<< unit conv1_1 caption="a `b >>\n', "p.md")
    assert str(err.value).startswith("p.md:2:17: unterminated directive")


@dataclass
class Site:
    site_dir: Path
    base_url: str = "/"
    model: str = "net.py:build"
    image: str = "one.png"
    figures: dict = None


def test_dataset_takes_kind_colon_path(tmp_path):
    d = find_directives("<< patches conv2_3 dataset=imagefolder:data/cats k=4 >>", "p")[0]
    assert validate(d)["dataset"] == "imagefolder:data/cats"
    assert validate(find_directives("<< patches conv2_3 dataset=fashion-mnist:test >>", "p")[0])[
        "dataset"] == "fashion-mnist:test"
    with pytest.raises(DirectiveError, match=r"dataset must be a name or KIND:PATH"):
        validate(find_directives("<< patches conv2_3 dataset=a,b >>", "p")[0])
    # and the planner resolves it to that folder, inside the site
    root = tmp_path / "site"
    (root / "data" / "cats").mkdir(parents=True)
    (root / "net.py").write_text("def build(): ...\n")
    (root / "images").mkdir()
    (root / "images" / "one.png").write_bytes(b"png")
    stage = FigureStage(Site(root, figures={}), tmp_path / "cache", quiet=True)
    stage.plan(d, validate(d), {"post_dir": root})
    plan = stage._plans[d.pos]
    assert plan.request.params["dataset"] == f"imagefolder:{(root / 'data' / 'cats').resolve()}"
