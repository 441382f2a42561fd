"""Issue 13, findings 2 and 9 (text-only): template runtime errors, KaTeX messages,
look-alike directives and the size limits each end in one line naming file:line:col,
exit 2, with the previous site intact."""
from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.site import limits

POST = "---\ntitle: Hello\ndate: 2024-05-01\n---\n\n{body}\n"


def make_site(tmp_path):
    site = tmp_path / "site"
    (site / "posts").mkdir(parents=True)
    (site / "site.toml").write_text('title = "Hostile"\n')
    (site / "posts" / "2024-05-01-hello.md").write_text(POST.format(body="First words."))
    assert CliRunner().invoke(main, ["build", str(site), "-q"]).exit_code == 0
    return site


def tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_line(site) -> str:
    before = tree(site / "_site")
    result = CliRunner().invoke(main, ["build", str(site), "-q"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    assert tree(site / "_site") == before
    return lines[0]


def bad_post(site, body: str) -> None:
    (site / "posts" / "2024-06-01-bad.md").write_text(POST.format(body=body))


@pytest.mark.parametrize("expr, error", [
    ("{{ 1 // 0 }}", "ZeroDivisionError"),
    ("{{ 1.5 % 0 }}", "ZeroDivisionError"),
    ("{{ 'abc'.index('z') }}", "ValueError: substring not found"),
    ("{{ {}['k'] }}", "template error"),
])
def test_template_runtime_error_is_one_line_at_the_template(tmp_path, expr, error):
    site = make_site(tmp_path)
    (site / "templates").mkdir()
    (site / "templates" / "404.html").write_text(f'{{% extends "base.html" %}}\n{{% block content %}}\n{expr}\n{{% endblock %}}\n')
    (site / "posts" / "2024-05-01-hello.md").write_text(POST.format(body="Changed."))
    line = one_line(site)
    assert "templates/404.html:3:1: template error" in line and error in line, line


def test_katex_error_is_one_line(tmp_path):
    site = make_site(tmp_path)
    bad_post(site, "Before.\n\n$$\na +\n}b\n$$\n")
    line = one_line(site)
    assert "2024-06-01-bad.md:" in line and "KaTeX" in line


@pytest.mark.parametrize("body, shown", [
    ("See <‹ ünit conv1_1 >> here.", "'<‹ ünit'"),
    ("See << ünit conv1_1 >> here.", "'<< ünit'"),
    ("See ‹‹ hierarchy fc6_1 ›› here.", "'‹‹ hierarchy'"),
    ("See «units conv1_1 conv1_2» here.", "'«units'"),
])
def test_lookalike_directive_gets_a_hint(tmp_path, body, shown):
    site = make_site(tmp_path)
    bad_post(site, body)
    line = one_line(site)
    assert f"2024-06-01-bad.md:6:5: {shown} looks like a directive" in line, line
    assert "write << " in line


def test_lookalike_check_leaves_prose_and_code_alone(tmp_path):
    site = make_site(tmp_path)
    bad_post(site, "A «Unit» test, x < unit > y, `<‹ ünit conv1_1 >>` and\n\n    <‹ ünit conv1_1 >>\n")
    assert CliRunner().invoke(main, ["build", str(site), "-q"]).exit_code == 0


def test_formula_past_the_limit_is_refused_quickly(tmp_path):
    site = make_site(tmp_path)
    terms = "+".join(["x"] * 20000)
    bad_post(site, f"Text.\n\n$${terms}$$\n")
    t0 = time.perf_counter()
    line = one_line(site)
    assert time.perf_counter() - t0 < 10
    assert f"formula of {len(terms)} characters; the limit is {limits.MAX_FORMULA}" in line
    assert "2024-06-01-bad.md:8:3:" in line, line
    bad_post(site, f"Inline ${'+'.join(['y'] * 3000)}$ math.\n")
    assert "the limit is 4000" in one_line(site)


def test_formula_at_the_limit_builds(tmp_path):
    site = make_site(tmp_path)
    tex = ("x+" * (limits.MAX_FORMULA // 2))[: limits.MAX_FORMULA - 1] + "x"
    assert len(tex) == limits.MAX_FORMULA
    bad_post(site, f"Text.\n\n$${tex}$$\n")
    assert CliRunner().invoke(main, ["build", str(site), "-q"]).exit_code == 0


@pytest.mark.parametrize("directive, message", [
    ("<< unit " + "a" * 1200 + " >>", "unit argument 1 is 1200 characters long; the limit is 1000"),
    ('<< unit conv1_1 caption="' + "c" * 1001 + '" >>', "unit caption= is 1001 characters long"),
    ("<< units " + ",".join(["conv1_1"] * 70) + " >>", "units argument 1 lists 70 items; the limit is 64"),
    ("<< unit conv1_1 " + " ".join(f'caption="{"w" * 900}"' for _ in range(5)) + " >>",
     "characters long; the limit is 4000"),
])
def test_directive_argument_sizes_are_limited(tmp_path, directive, message):
    site = make_site(tmp_path)
    bad_post(site, f"Text.\n\n{directive}\n")
    line = one_line(site)
    assert "2024-06-01-bad.md:8:1: " in line and message in line, line


def test_directive_count_is_limited(tmp_path):
    site = make_site(tmp_path)
    bad_post(site, "\n\n".join(["<< unit conv1_1 >>"] * (limits.MAX_DIRECTIVES + 1)))
    line = one_line(site)
    assert f"the limit is {limits.MAX_DIRECTIVES}" in line
