"""Issue 13, finding 5: builds of one site at the same time. The site's lock (held around
cache writes and the swap) serializes them and every temporary name is unique, so both
succeed (the second waits, saying so in one line) and the output equals a clean build."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator.site import guard
from generator.site.errors import BuildError
from generator.site.pipeline import build

REPO = Path(__file__).resolve().parents[2]


def make_site(root: Path, posts: int = 40) -> Path:
    (root / "posts").mkdir(parents=True)
    (root / "site.toml").write_text('title = "Busy"\n')
    for i in range(posts):
        (root / "posts" / f"2024-01-{i % 28 + 1:02d}-post-{i}.md").write_text(
            f"---\ntitle: Post {i}\ntags: [t{i % 5}]\n---\n\n# Heading {i}\n\n"
            + "Some *words* and `code`.\n\n" * 30 + "```python\nprint(1)\n```\n")
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def start(site: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "build.py", "build", str(site)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_builds_at_once_both_succeed_and_equal_a_clean_build(tmp_path):
    reference = make_site(tmp_path / "reference")
    build(reference, quiet=True)
    expected = tree(reference / "_site")
    site = make_site(tmp_path / "site")
    for trial in range(4):
        if trial % 2:   # half the pairs start from an empty cache, half rebuild a changed post
            shutil.rmtree(site / ".cache", ignore_errors=True)
        else:
            (site / "posts" / "2024-01-01-post-0.md").touch()
        procs = [start(site), start(site)]
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            assert "Traceback" not in err
            waits = [line for line in err.splitlines() if "another build" in line]
            assert len(waits) <= 1, err
        assert tree(site / "_site") == expected
        assert not [p.name for p in site.iterdir() if ".tmp-" in p.name]
        leftovers = [p for p in (site / ".cache").rglob("*.tmp")]
        assert leftovers == []


def test_a_second_build_that_cannot_wait_says_so_in_one_line(tmp_path, monkeypatch):
    site = make_site(tmp_path / "site", posts=2)
    build(site, quiet=True)
    before = tree(site / "_site")
    lock = guard.try_lock(site / ".cache")       # another build holds the site's lock
    try:
        monkeypatch.setattr(guard, "LOCK_WAIT_S", 0.2)
        with pytest.raises(BuildError) as e:
            build(site, quiet=True)
        assert "another build of" in str(e.value) and "is running" in str(e.value)
        assert "\n" not in str(e.value)
        with pytest.raises(BuildError, match="a build of this site is running"):
            guard.try_lock(site / ".cache")       # `clean` refuses too
    finally:
        lock.release()
    assert tree(site / "_site") == before
    build(site, quiet=True)
    assert tree(site / "_site") == before


def test_cache_and_output_temporary_names_are_unique(tmp_path, monkeypatch):
    """Two writers of one cache file never share a temporary name (the bodies/<key>.json.tmp
    of the report): write_atomic and the output tree take names from mkstemp/mkdtemp."""
    from generator.files import write_atomic
    from generator.site.output import OutputTree

    target = tmp_path / "c" / "entry.json"
    seen = set()
    real_replace = os.replace

    def spy(src, dst):
        seen.add(Path(src).name)
        real_replace(src, dst)

    import generator.files as files
    monkeypatch.setattr(files.os, "replace", spy)
    for _ in range(5):
        write_atomic(target, b"x")
    monkeypatch.undo()
    assert len(seen) == 5
    a, b = OutputTree(tmp_path / "out", {}), OutputTree(tmp_path / "out", {})
    assert a.tmp != b.tmp
    a.abort()
    b.abort()
