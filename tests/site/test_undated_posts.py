"""Issue 12, point 6: a post without a date takes its last git commit date, else its file's
modification time, and the build notes it; wrong dates stay one-line errors."""
from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from generator.cli import main

JEKYLL = "---\nlayout: post\ntitle: Kept from Jekyll\npublished: true\n---\n\nOld words.\n"


def make_site(root):
    (root / "blog" / "old-page").mkdir(parents=True)
    (root / "site.toml").write_text('title = "u"\nposts = "blog"\n')
    page = root / "blog" / "old-page" / "index.md"
    page.write_text(JEKYLL)
    return page


def build(root):
    result = CliRunner().invoke(main, ["build", str(root)])
    assert result.exit_code == 0, result.output
    return result


def shown_date(root) -> str:
    return (root / "_site" / "old-page" / "index.html").read_text()


def git(root, *args, when=None):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    if when:
        env.update(GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when)
    subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)


def test_an_undated_page_takes_its_mtime_then_its_commit_date(tmp_path):
    page = make_site(tmp_path)
    stamp = datetime(2021, 7, 9, 12, 0, tzinfo=timezone.utc).timestamp()
    os.utime(page, (stamp, stamp))
    result = build(tmp_path)
    notes = [l for l in result.stderr.splitlines() if l.startswith("note:") and "no date" in l]
    assert notes == [f"note: {page} has no date; using its file modification time, 2021-07-09"]
    assert "2021-07-09" in shown_date(tmp_path)

    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "blog")
    git(tmp_path, "commit", "-q", "-m", "page", when="2019-03-04T10:00:00+00:00")
    result = build(tmp_path)   # same bytes (cached parse): the date is still refreshed
    assert "using its last git commit, 2019-03-04" in result.stderr
    assert "2019-03-04" in shown_date(tmp_path) and "2021-07-09" not in shown_date(tmp_path)


def test_a_dated_post_says_nothing(tmp_path):
    page = make_site(tmp_path)
    page.write_text(JEKYLL.replace("published: true", "date: 2020-01-02"))
    assert "no date" not in build(tmp_path).stderr


@pytest.mark.parametrize("name, front", [
    ("index.md", "date: 2024-13-45"), ("index.md", "date: 2024-02-30"),
    ("2024-02-30-x.md", "published: true")])
def test_wrong_dates_are_one_line_errors(tmp_path, name, front):
    make_site(tmp_path)
    bad = tmp_path / "blog" / ("bad/index.md" if name == "index.md" else name)
    bad.parent.mkdir(exist_ok=True)
    bad.write_text(f"---\ntitle: Bad\n{front}\n---\n\nx\n")
    result = CliRunner().invoke(main, ["build", str(tmp_path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a date" in lines[0] and str(bad) in lines[0]
