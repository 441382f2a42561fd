"""Bad input through the real command line: one line `path:line:col: message`,
exit status 2, no traceback, and the previous site left exactly as it was."""
from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from generator.cli import main

GOOD = """---
title: Fine
date: 2024-05-01
---

Some text with $x^2$.
"""


def site_with(tmp_path, post: str, extra: dict | None = None):
    site = tmp_path / "site"
    (site / "posts").mkdir(parents=True)
    (site / "site.toml").write_text('title = "T"\nbase_url = "/b/"\n')
    (site / "posts" / "2024-05-01-p.md").write_text(GOOD)
    for rel, text in (extra or {}).items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    return site, post


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def snapshot(out):
    return {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}


CASES = [
    # (name, post text, extra files, expected "line:col", message fragment)
    ("front matter", "---\ntitle: [unclosed\ndate: 2024-05-01\n---\nx\n", {}, r"3:\d+", "malformed front matter"),
    ("front matter key", "---\ntitel: A\ndate: 2024-05-01\n---\nx\n", {}, "2:1", "did you mean 'title'"),
    ("missing image", "---\ntitle: A\ndate: 2024-05-01\n---\n\nText\n\nSee ![cat](imgs/nope.png) here.\n",
     {}, "8:12", "missing file 'imgs/nope.png'"),
    ("directive name", "---\ntitle: A\ndate: 2024-05-01\n---\n\n<< hierachy fc6_1 >>\n", {}, "6:1",
     "did you mean 'hierarchy'"),
    ("directive value", "---\ntitle: A\ndate: 2024-05-01\n---\n\nx\n\n  << hierarchy fc6_1 depth=99 >>\n",
     {}, "8:22", "depth=99 is out of range; valid: 0..8"),
    ("tex", "---\ntitle: A\ndate: 2024-05-01\n---\n\nBad: $x + \\foo$ here.\n", {}, "6:11",
     "KaTeX: Undefined control sequence"),
    ("tex display", "---\ntitle: A\ndate: 2024-05-01\n---\n\n$$\n\\frac{a\n$$\n", {}, "7:1", "KaTeX:"),
    ("template", GOOD.replace("Fine", "Other"), {"templates/post.html": "<p>\n{% if %}\n"}, "2:1",
     "template error"),
    ("date", "---\ntitle: A\ndate: 31/12/2024\n---\nx\n", {}, "3:1", "is not a date"),
    ("no title", "---\ndate: 2024-05-01\n---\nx\n", {}, "1:1", "no title"),
    ("config", GOOD.replace("Fine", "Other"), {"site.toml": 'title = "T"\nbase_ulr = "/x/"\n'}, "2:1",
     "did you mean 'base_url'"),
]


@pytest.mark.parametrize("name,post,extra,where,fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_keeps_the_old_site(tmp_path, name, post, extra, where, fragment):
    site, _ = site_with(tmp_path, post)
    first = run("build", site, "--quiet")
    assert first.exit_code == 0, first.output
    out = site / "_site"
    before = snapshot(out)
    assert before

    bad = site / "posts" / "2024-05-02-bad.md"
    bad.write_text(post)
    for rel, text in extra.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    result = run("build", site)

    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(rf"error: \S+:{where}: .+", lines[0]), lines[0]
    assert fragment in lines[0]
    assert "Traceback" not in result.output
    assert snapshot(out) == before
    assert not list(site.glob("_site.tmp-*")), "temporary build directory left behind"


def test_unterminated_directive_points_at_the_line_end(tmp_path):
    site, post = site_with(tmp_path, "---\ntitle: A\ndate: 2024-05-01\n---\n\n<< unit conv1_4\n")
    (site / "posts" / "2024-05-02-bad.md").write_text(post)
    result = run("build", site)
    assert result.exit_code == 2
    assert re.search(r"2024-05-02-bad\.md:6:16: unterminated directive", result.stderr)


def test_missing_site_dir_is_a_usage_error(tmp_path):
    result = run("build", tmp_path / "nope")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
