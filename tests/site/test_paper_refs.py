"""Figures numbered and referred to, and citations, as in a paper: directive `id=` and
markdown `{#fig-cat}` figures numbered in page order, `@fig-/@sec-/@eq-` links, pandoc
citations against BibTeX (numeric and author-year) with a bibliography at the end, and
every mistake one line at file:line:col. The .bib bytes are part of the page's key."""
from __future__ import annotations

import shutil

import pytest
from PIL import Image
from site_helpers import FakeStage, soup

from generator.site.errors import BuildError
from generator.site.pipeline import build
from generator.vis.api import KINDS

POST = r"""---
title: Refs
date: 2024-05-01
bibliography: refs.bib
---

## Method {#sec-method}

See @fig-tree, @fig-cat and @sec-method; @eq-loss holds. Write to me@fig-tree.com.
Code keeps `@fig-nowhere` and `[@nokey]` as they are.
Units [@zeiler2014, p. 3; @springenberg2015] and again [see -@zeiler2014].

<< unit conv1_3 >>

<< hierarchy fc6_3 id=fig-tree caption="A tree" >>

![A cat on a mat](cat.png){#fig-cat}

$$ L = x^2 \label{eq-loss} $$

```
@fig-in-a-fence [@fence]
```
"""

BIB = r"""@inproceedings{zeiler2014,
  author = {Zeiler, Matthew D. and Fergus, Rob},
  title = {Visualizing and Understanding Convolutional Networks},
  booktitle = {Computer Vision -- {ECCV} 2014}, pages = {818--833}, year = {2014}}
@article{springenberg2015,
  author = {Springenberg, Jost Tobias and Dosovitskiy, Alexey and Brox, Thomas and Riedmiller, Martin},
  title = {Striving for Simplicity: The All Convolutional Net},
  journal = {ICLR (workshop track)}, year = {2015}}
"""


def make_site(root, post=POST, bib=BIB, toml='title = "T"\n'):
    site = root / "site"
    (site / "posts").mkdir(parents=True)
    (site / "site.toml").write_text(toml)
    (site / "posts" / "2024-05-01-refs.md").write_text(post)
    if bib is not None:
        (site / "posts" / "refs.bib").write_text(bib)
    Image.new("RGB", (8, 8), (90, 90, 90)).save(site / "posts" / "cat.png")
    return site


def built(site, **kw):
    build(site, stage_factory=FakeStage, quiet=True, **kw)
    return soup(site / "_site" / "refs" / "index.html")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    return built(make_site(tmp_path_factory.mktemp("refs")))


def test_every_kind_takes_an_id_that_is_a_show_key():
    for kind in KINDS.values():
        assert kind.keys["id"].role == "show", kind.name
        assert "id" not in kind.request_params({"id": "fig-x", **{k: v.default for k, v in kind.keys.items()},
                                                 **({kind.arg: "conv1_1"} if kind.arg else {})})


def test_figures_are_numbered_in_page_order(page):
    figs = page.select(".post-body figure")
    labels = [f.select_one(".fig-label").get_text() for f in figs]
    assert labels == ["Figure 1.", "Figure 2.", "Figure 3."]
    assert [f.get("id") for f in figs] == ["figure-1", "fig-tree", "fig-cat"]
    assert figs[1].figcaption.get_text(" ", strip=True) == "Figure 2. A tree"
    cat = figs[2]
    assert "md-figure" in cat["class"] and cat.img["alt"] == "A cat on a mat"
    assert cat.figcaption.get_text(" ", strip=True) == "Figure 3. A cat on a mat"


def test_references_link_to_figures_headings_and_equations(page):
    links = {a.get_text(): a["href"] for a in page.select("a.xref")}
    assert links == {"Figure 2": "#fig-tree", "Figure 3": "#fig-cat", "Method": "#sec-method",
                     "Equation (1)": "#eq-loss"}
    text = page.select_one(".post-body").get_text()
    assert "me@fig-tree.com" in text
    codes = [c.get_text() for c in page.select("code")]
    assert "@fig-nowhere" in codes and "[@nokey]" in codes
    assert any("@fig-in-a-fence [@fence]" in c for c in codes)


def test_numeric_citations_and_bibliography(page):
    cites = [c.get_text() for c in page.select(".citation")]
    assert cites == ["[1, p. 3; 2]", "[see 1]"]
    assert page.select_one(".citation a")["href"] == "#ref-zeiler2014"
    refs = page.select("#references li")
    assert [li["id"] for li in refs] == ["ref-zeiler2014", "ref-springenberg2015"]
    assert refs[0].select_one(".ref-label").get_text() == "[1]"
    assert "Visualizing and understanding convolutional networks" in refs[0].get_text()
    assert page.select(".post-body > *")[-1].get("id") == "references"


def test_author_year_citations(tmp_path):
    page = built(make_site(tmp_path, toml='title = "T"\ncitation_style = "author-year"\n'))
    cites = [c.get_text() for c in page.select(".citation")]
    assert cites == ["(Zeiler and Fergus, 2014, p. 3; Springenberg et al., 2015)", "(see 2014)"]
    assert [li["id"] for li in page.select("#references li")] == ["ref-springenberg2015", "ref-zeiler2014"]


def test_site_default_bibliography(tmp_path):
    post = POST.replace("bibliography: refs.bib\n", "")
    site = make_site(tmp_path, post=post, toml='title = "T"\nbibliography = "posts/refs.bib"\n')
    assert len(built(site).select("#references li")) == 2


def test_bib_bytes_are_part_of_the_page_key(tmp_path):
    site = make_site(tmp_path)
    built(site)
    bib = site / "posts" / "refs.bib"
    bib.write_text(BIB.replace("Striving for Simplicity", "Striving for Plainness"))
    assert "striving for plainness" in built(site).select_one("#ref-springenberg2015").get_text().lower()


@pytest.mark.parametrize("old,new,bib,message", [
    ("@fig-tree,", "@fig-tre,", BIB, "refs.md:9:5: unknown reference '@fig-tre' (did you mean '@fig-tree'?)"),
    ("@sec-method;", "@sec-methods;", BIB, "refs.md:9:29: unknown reference '@sec-methods'"),
    ("@eq-loss holds", "@eq-lost holds", BIB, "refs.md:9:42: unknown reference '@eq-lost'"),
    ("@springenberg2015]", "@springenberg2016]", BIB,
     "refs.md:11:27: unknown citation key '@springenberg2016' (did you mean '@springenberg2015'?)"),
    ("id=fig-tree", "id=tree", BIB, "refs.md:15:20: figure id 'tree': start it with fig-"),
    ("{#fig-cat}", "{#fig-tree}", BIB, "duplicate figure id 'fig-tree'"),
    (None, None, None, "refs.md:4:1: bibliography file "),
    (None, None, "@article{a, title={x}\n@book{b,", "refs.bib:2:"),
    (None, None, BIB + BIB.split("\n@article")[0], "refs.bib:9:16: BibTeX: repeated bibliography entry: zeiler2014"),
])
def test_mistakes_are_one_line_with_position(tmp_path, old, new, bib, message):
    post = POST.replace(old, new) if old else POST
    site = make_site(tmp_path, post=post, bib=bib)
    with pytest.raises(BuildError) as e:
        built(site)
    text = str(e.value)
    assert "\n" not in text and message in text, text


def test_citation_without_bibliography_names_the_citation(tmp_path):
    site = make_site(tmp_path, post=POST.replace("bibliography: refs.bib\n", ""))
    with pytest.raises(BuildError, match=r"refs.md:10:8: citation '@zeiler2014' but no bibliography"):
        built(site)


def test_a_citation_may_carry_a_footnote_but_a_link_is_no_citation(tmp_path):
    post = POST + "\nData [@zeiler2014][^n] and [@springenberg2015](http://x.org) and [a@b.org].\n\n[^n]: A note.\n"
    page = built(make_site(tmp_path, post=post))
    assert [c.get_text() for c in page.select(".citation")][-1] == "[1]"
    assert page.select_one('a[href="http://x.org"]').get_text() == "@springenberg2015"
    assert "[a@b.org]" in page.get_text()
