"""`new "Title"`: a post skeleton with front matter, named YYYY-MM-DD-slug.md."""
from __future__ import annotations

from datetime import date
from pathlib import Path

from .config import load_config
from .errors import BuildError, display_path
from .posts import file_slug, post_files
from .slug import url_slug

SKELETON = """---
{front}---

Write the post here. Math works inline, $h_L[c]$, and as a block:

$$
w_c = \\left| \\operatorname{{mean}}_{{r,s}}\\, h_B[c] \\odot G_B[c] \\right|
$$

{{::comment}}
Figures are directives on a line of their own, for example

    << unit conv1_4 >>
    << hierarchy fc6_1068 depth=3 children=5 >>

They use the post's `model` and `image` unless a directive names its own.
{{:/comment}}
"""


def new_post(site_dir: str | Path, title: str, when: date | None = None) -> Path:
    """Create the skeleton and return its path; never overwrites an existing post."""
    import yaml

    title = title.strip()
    slug = url_slug(title)
    if not slug:
        raise BuildError("TITLE must contain letters or digits (it names the file and URL)")
    config = load_config(site_dir)
    when = when or date.today()
    path = config.posts_dir / f"{when.isoformat()}-{slug}.md"
    for existing in post_files(config):
        if existing == path or file_slug(existing) == slug:
            raise BuildError(f"{display_path(existing)} already exists with this title's slug '{slug}'; "
                             f"choose another title")
    front = yaml.safe_dump({"title": title, "date": when, "description": "", "tags": [], "draft": True},
                           sort_keys=False, allow_unicode=True)
    config.posts_dir.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="utf-8") as f:
        f.write(SKELETON.format(front=front))
    return path
