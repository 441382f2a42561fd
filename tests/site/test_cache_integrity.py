"""Issue 13, finding 3: every cache kind is checked before use. A damaged entry (random
bytes, truncated, emptied) of post bodies, figure HTML, figure data, tiles, explorer data
or a mining index is recomputed and reported once, never published: the output equals a
clean build's, and the build after that reports nothing."""
from __future__ import annotations

import random
import shutil

import pytest

from generator.site.pipeline import build
from test_figures_support import make_site

POST = """---
title: Cached
date: 2024-01-01
---
Prose with $x^2$ math.

<< unit conv1_4 >>

<< hierarchy conv3_1 depth=1 children=2 explore=1 >>

<< patches conv2_3 k=4 >>
"""

KINDS = {
    "post body": "cache/site/bodies/*.json",
    "figure HTML": "cache/figures/html/*.html",
    "figure data": "cache/figures/entries/*.json",
    "figure tile": "cache/figures/tiles/*.png",
    "explorer data": "cache/figures/explore/*.json",
    "top-K index": "cache/index/*.safetensors",
}
DAMAGES = ("random bytes", "truncated", "emptied")


def tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A built site and a pristine copy of it (output and cache); each test puts the copy
    back at the site's own path, so every cache entry is one the build will read."""
    work = tmp_path_factory.mktemp("integrity")
    root = make_site(work / "site")
    for p in (root / "posts").glob("*.md"):
        p.unlink()
    (root / "posts" / "2024-01-01-cached.md").write_text(POST)
    build(root, quiet=True)
    shutil.copytree(root, work / "pristine", ignore=shutil.ignore_patterns("*.old-*"))
    return root, work / "pristine", tree(root / "out")


def damage(path, how: str, rng: random.Random) -> None:
    data = path.read_bytes()
    path.unlink()       # a new inode: the published copy (a hard link) stays as it was
    if how == "random bytes":
        path.write_bytes(bytes(rng.randrange(256) for _ in range(max(len(data), 64))))
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"")


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_damaged_entry_is_recomputed_reported_once_never_published(clean, capsys, kind, how):
    site, pristine, expected = clean
    while site.exists():                        # a previous tree may be vanishing meanwhile
        shutil.rmtree(site, ignore_errors=True)
    shutil.copytree(pristine, site)
    files = sorted(site.glob(KINDS[kind]))
    assert files, f"the build made no {kind}"
    rng = random.Random(f"{kind}/{how}")
    victim = rng.choice(files)
    damage(victim, how, rng)
    shutil.rmtree(site / "out")                 # every page is rendered: each entry is read
    if kind == "top-K index":                   # read only when a patch grid is computed
        shutil.rmtree(site / "cache" / "figures")
    capsys.readouterr()
    build(site)
    err = capsys.readouterr().err
    reports = [line for line in err.splitlines() if "damaged" in line]
    assert len(reports) == 1 and kind in reports[0], err
    assert "Traceback" not in err
    assert tree(site / "out") == expected
    build(site)
    assert "damaged" not in capsys.readouterr().err
    assert tree(site / "out") == expected
