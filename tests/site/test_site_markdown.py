"""A kramdown-style fixture post, built with a stand-in figures stage, checked on
the parsed HTML: every construct of the seed posts must come out right."""
from __future__ import annotations

import re

import pytest
from site_helpers import FakeStage, copy_site, soup

from generator.site.pipeline import build


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    site = copy_site("kramdown_site", tmp_path_factory.mktemp("s") / "site")
    FakeStage.made.clear()
    result = build(site, stage_factory=FakeStage, quiet=True)
    page = soup(site / "_site" / "edges-between-units" / "index.html")
    return site, FakeStage.made[-1], page


def body(page):
    return page.select_one(".post-body")


def test_title_from_front_matter_and_no_duplicate_h1(built):
    _, _, page = built
    assert page.title.get_text() == "Edges between units · Fixture <site>"
    h1s = page.find_all("h1")
    assert [h.get_text(strip=True).rstrip("#") for h in h1s] == ["Edges between units"]
    assert h1s[0].find_parent("header", class_="post-header") is not None  # shown once, on top


def test_headings_get_kramdown_ids(built):
    b = body(built[2])
    ids = [h.get("id") for h in built[2].select("article h1, article h2")]
    assert ids == ["edges-between-units", "a-section-with-math", "convolutional-nets----layers"]
    assert b.find("a", href="#a-section-with-math") is not None
    toc = built[2].select_one("nav.toc-box")
    assert toc is not None and toc.find("a", href="#convolutional-nets----layers")


def test_kramdown_comment_and_options_dropped(built):
    text = built[2].get_text()
    assert "This remark must not appear" not in text
    assert "{::" not in text and "{:/" not in text and "parse_block_html" not in text
    assert all(d.args != ("conv9_1",) for d, _, _ in built[1].planned)


def test_span_ials_and_block_ial_after_figure(built):
    b = body(built[2])
    first = b.find("img", alt="A kitten")
    assert "center" in first["class"]
    small = b.find("img", alt="small kitten")
    assert "center" in small["class"] and small["style"] == "width: 50%"
    zoomed = b.find("img", alt="zoomed kitten")
    fig = zoomed.find_parent("figure")
    assert "zoom_img" in fig["class"]
    assert "{:" not in b.get_text()


def test_figures_with_markdown_inside(built):
    b = body(built[2])
    fig = b.find("img", alt="zoomed kitten").find_parent("figure")
    cap = fig.find("figcaption")
    assert cap.find("em").get_text() == "zoomable"
    assert not b.find_all(attrs={"markdown": True})


def test_indented_figure_in_list_item(built):
    b = body(built[2])
    li = b.find("ol").find("li")
    fig = li.find("figure")
    assert fig is not None and fig.parent.name == "li"
    cap = fig.find("figcaption")
    assert cap.find("a", href="https://example.org/") and cap.find("code").get_text() == "code"


def test_math_inline_display_and_array(built):
    b = body(built[2])
    annotations = [a.get_text() for a in b.select(".katex annotation")]
    displays = b.select(".math-display")
    display_tex = [d.select_one("annotation").get_text() for d in displays]
    assert any("\\begin{array}{lr}" in t for t in display_tex)
    assert any("E = mc^2" in t for t in display_tex)
    inline = [a for a in annotations if a not in display_tex]
    for tex in ("h^7 \\in \\mathbb{R}^{d_7}", "a_i", "b^2", "x^2"):
        assert tex in inline
    # $$..$$ inside a sentence stays inline: its paragraph keeps the text around it.
    para = b.find(string=re.compile("Inline kramdown math")).find_parent("p")
    assert para.select_one(".katex") and not para.select_one(".math-display")
    prices = b.find(string=re.compile("Prices like")).find_parent("p")
    assert prices.select_one(".katex") is None and "$5 and $10" in prices.get_text()


def test_footnote_with_two_paragraphs(built):
    b = body(built[2])
    note = b.select_one("div.footnote li")
    paras = note.find_all("p")
    assert len(paras) == 2 and "second paragraph" in paras[1].get_text()
    assert paras[1].select_one(".katex")
    ref = b.select_one("sup a.footnote-ref")
    assert ref["href"] == "#" + note["id"]


def test_table_and_highlighted_code(built):
    b = body(built[2])
    rows = b.find("table").find_all("tr")
    assert [c.get_text() for c in rows[2].find_all("td")] == ["fc6", "4096"]
    code = b.select_one("div.highlight pre code")
    assert code is not None and code.find("span", class_="k")  # pygments token spans
    assert "<< unit conv1_1 >>" in code.get_text()


def test_directives_become_figures_and_code_stays_code(built):
    b = body(built[2])
    stage = built[1]
    assert stage.ran
    assert [(d.name, d.args, d.block) for d, _, _ in stage.planned] == [
        ("unit", ("conv1_4",), False), ("hierarchy", ("fc6_1068",), True)]
    _, params, meta = stage.planned[1]
    assert params["depth"] == 2 and params["children"] == 5 and meta["image"] == "imgs/kitten.png"
    assert meta["post_dir"].name == "posts"
    figs = b.select("figure.ft-figure")
    assert [f["class"][1] for f in figs] == ["ft-unit", "ft-hierarchy"]
    assert all(f.parent.name != "p" for f in figs)
    inline_fig = figs[0]
    assert "A unit inline" in inline_fig.find_previous_sibling("p").get_text()
    assert "inside a paragraph" in inline_fig.find_next_sibling("p").get_text()
    assert "<< unit conv1_65 >>" in [c.get_text() for c in b.find_all("code")]
    assert "code, and << unit conv1_2 >> stays text" in b.get_text()


def test_captions_and_titles_are_escaped(built):
    site, _, page = built
    assert not [s for s in page.find_all("script") if "alert" in s.get_text()]
    assert page.select_one("figure.ft-hierarchy figcaption").get_text() == "Figure 2. <script>alert(1)</script>"
    older = soup(site / "_site" / "first-light" / "index.html")
    assert older.select_one("h1.post-title").get_text() == 'First light <script>alert("t")</script>'
    assert not [s for s in older.find_all("script") if "alert" in s.get_text()]


def test_inline_style_kept(built):
    styles = [s.get_text() for s in body(built[2]).find_all("style")]
    assert any(".kitten-note" in s for s in styles)


def test_links_and_images_resolved_under_base_url(built):
    site, _, page = built
    b = body(page)
    assert b.find("img", alt="A kitten")["src"] == "/REPO/posts/imgs/kitten.png"
    assert (site / "_site" / "posts" / "imgs" / "kitten.png").is_file()
    assert b.find("a", string="the other post")["href"] == "/REPO/first-light/"
    older = soup(site / "_site" / "first-light" / "index.html")
    assert older.find("a", string="an image")["href"] == "/REPO/images/banner.png"
    assert (site / "_site" / "images" / "banner.png").is_file()


def test_block_ials_after_tables_and_lists_land_on_them():
    import markdown
    from bs4 import BeautifulSoup

    from generator.site.kramdown import rewrite_ials
    from generator.site.markup import BlockIalExtension

    md = markdown.Markdown(extensions=["tables", "attr_list", BlockIalExtension()])
    src = ("| a | b |\n|---|---|\n| 1 | 2 |\n{: style=\"width: 50%\" .wide}\n\n"
           "* one\n* two\n{:.compact}\n\nText | with a bar\n{:.center}\n")
    page = BeautifulSoup(md.convert(rewrite_ials(src)), "html.parser")
    table = page.find("table")
    assert table["class"] == ["wide"] and table["style"] == "width: 50%"
    assert len(table.find_all("tr")) == 2  # the IAL is not a row
    assert page.find("ul")["class"] == ["compact"]
    assert page.find("p")["class"] == ["center"]
    assert "ftial" not in str(page) and "{:" not in page.get_text()
