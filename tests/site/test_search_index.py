"""The search index is kept with each post's cached body: a one-post edit reads one
post's HTML for it, not every post's, and the index says the same as one built afresh."""
import json
import shutil

from generator.site import search
from generator.site.pipeline import build


def make(root, n=6):
    (root / "posts").mkdir(parents=True)
    (root / "site.toml").write_text('title = "S"\n')
    for i in range(n):
        (root / "posts" / f"2024-01-0{i + 1}-p{i}.md").write_text(
            f"---\ntitle: Post {i}\n---\n\nWords of post {i}, and $x_{i}$ in TeX.\n")
    return root


def test_one_post_edit_reads_one_post_for_the_index(tmp_path, monkeypatch):
    site = make(tmp_path / "s")
    build(site, quiet=True)
    calls = []
    real = search.page_text
    monkeypatch.setattr(search, "page_text", lambda html: calls.append(1) or real(html))
    post = site / "posts" / "2024-01-03-p2.md"
    post.write_text(post.read_text() + "\nA new sentence about gratings.\n")
    build(site, quiet=True)
    assert len(calls) == 1
    index = json.loads((site / "_site" / "search.json").read_text())
    texts = {d["title"]: d["text"] for d in index["documents"]}
    assert "gratings" in texts["Post 2"] and "x_2" in texts["Post 2"]
    # the same as an index built with no cache at all
    fresh = tmp_path / "fresh"
    shutil.copytree(site / "posts", fresh / "posts")
    (fresh / "site.toml").write_text((site / "site.toml").read_text())
    build(fresh, quiet=True)
    assert (fresh / "_site" / "search.json").read_text() == (site / "_site" / "search.json").read_text()
