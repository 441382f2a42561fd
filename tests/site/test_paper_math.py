"""Math as in a paper: site and post macros reach every formula, a post's own
\\newcommand lasts to the end of the post, display equations are numbered across the
page, \\eqref/\\ref become links with the right number, and every mistake (unknown
or duplicate label, bad macro) is one line naming file:line:col or the key."""
from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from site_helpers import soup

from generator.cli import main
from generator.site.errors import BuildError
from generator.site.pipeline import build

SITE_TOML = 'title = "T"\n[math]\nmacros = { "\\\\RR" = "\\\\mathbb{R}", "\\\\norm" = "\\\\lVert #1 \\\\rVert" }\n'

POST = r"""---
title: Losses
date: 2024-05-01
macros:
  \loss: \mathcal{L}
---

As \eqref{eq:loss} shows, and by \ref{eq:two}; in code `\eqref{eq:nothing}` stays.

$$
\loss(w) = \norm{w}^2, \quad w \in \RR^n \label{eq:loss}
$$

Defined here $\newcommand{\VV}{\mathbf{v}} \VV$, used later.

\begin{equation}
\VV = \nabla \loss \label{eq:two}
\end{equation}

$$
\begin{equation}
c = d
\end{equation}
$$

A paragraph with \[ x = 1 \] inside it.
"""


def make_site(tmp_path, post: str = POST, toml: str = SITE_TOML):
    site = tmp_path / "site"
    (site / "posts").mkdir(parents=True)
    (site / "site.toml").write_text(toml)
    (site / "posts" / "2024-05-01-losses.md").write_text(post)
    return site


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    site = make_site(tmp_path_factory.mktemp("math"))
    build(site, quiet=True)
    return soup(site / "_site" / "losses" / "index.html")


def tag_of(div) -> str:
    return div.select_one(".katex-html .tag").get_text().strip("\u200b ")


def test_site_and_post_macros_reach_katex(page):
    first = page.select_one("div.math-display#eq\\:loss")
    # \RR became \mathbb{R}, \loss \mathcal{L}, \norm took its argument
    assert first.select(".mathbb") and first.select(".mathcal")
    assert "∥" in first.select_one(".katex-html").get_text()
    # the preamble of \def's is not shown as the formula's TeX
    assert first.select_one("annotation").get_text().startswith(r"\loss(w)")


def test_newcommand_lasts_for_the_rest_of_the_post(page):
    second = page.select_one("div.math-display#eq\\:two")
    assert second.select(".mathbf"), "\\VV from an earlier inline formula was not known here"


def test_display_equations_are_numbered_across_the_page(page):
    tags = [tag_of(d) for d in page.select(".post-body div.math-display") if d.select_one(".tag")]
    # $$..\label$$, \begin{equation}..\label, an unlabelled equation: one count, not (1) three times
    assert tags == ["(1)", "(2)", "(3)"]


def test_eqref_and_ref_become_links_with_the_number(page):
    links = {a["href"]: a.get_text() for a in page.select(".post-body a.eqref")}
    assert links == {"#eq:loss": "(1)", "#eq:two": "2"}
    assert page.find("code").get_text() == r"\eqref{eq:nothing}"


def test_display_math_in_a_paragraph_leaves_the_paragraph(page):
    assert not page.select("p div.math-display")
    texts = [p.get_text() for p in page.select(".post-body > p")]
    assert "A paragraph with " in texts and " inside it." in texts


def error_of(tmp_path, post: str, toml: str = SITE_TOML) -> str:
    with pytest.raises(BuildError) as e:
        build(make_site(tmp_path, post, toml), quiet=True)
    return str(e.value)


HEAD = "---\ntitle: A\ndate: 2024-05-01\n---\n\n"


def test_unknown_label_is_one_line_with_position(tmp_path):
    msg = error_of(tmp_path, HEAD + "$$\na \\label{eq:loss}\n$$\n\nSee \\eqref{eq:los} here.\n")
    assert re.fullmatch(r".*2024-05-01-losses\.md:10:5: unknown equation label 'eq:los' "
                        r"\(did you mean 'eq:loss'\?\).*", msg), msg
    assert "\n" not in msg


def test_duplicate_label_is_an_error_at_the_second(tmp_path):
    msg = error_of(tmp_path, HEAD + "$$\na \\label{eq:x}\n$$\n\n$$\nb \\label{eq:x}\n$$\n")
    assert re.search(r"losses\.md:11:3: duplicate label 'eq:x' \(first at line 7\)", msg), msg


def test_label_in_inline_math_is_an_error(tmp_path):
    msg = error_of(tmp_path, HEAD + "Inline $a \\label{eq:x}$ here.\n")
    assert re.search(r"losses\.md:6:11: \\label works only in display math", msg), msg


def test_bad_site_macro_names_the_key_exit_2(tmp_path):
    site = make_site(tmp_path, HEAD + "$x$\n", 'title = "T"\n[math]\nmacros = { "\\\\bad" = "\\\\frac{1}" }\n')
    r = CliRunner().invoke(main, ["build", str(site), "-q"])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.output
    assert "site.toml [math] macros '\\bad': KaTeX:" in lines[0]


def test_macro_with_unbalanced_braces_is_a_config_error(tmp_path):
    msg = error_of(tmp_path, HEAD + "$x$\n", 'title = "T"\n[math]\nmacros = { "\\\\bad" = "{x" }\n')
    assert re.search(r"site\.toml:3:1: site\.toml \[math\] macros '\\bad': unbalanced braces", msg), msg


def test_bad_front_matter_macro_names_the_key(tmp_path):
    post = "---\ntitle: A\ndate: 2024-05-01\nmacros:\n  \\oops: \\undefinedthing\n---\n\n$\\oops$\n"
    msg = error_of(tmp_path, post)
    assert "front matter macros '\\oops': KaTeX: Undefined control sequence" in msg, msg
