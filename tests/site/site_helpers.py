"""Helpers for the site tests: fixture sites copied into tmp dirs, a stand-in figures
stage (so these tests never compute figures), and HTML parsing."""
from __future__ import annotations

import html
import shutil
from pathlib import Path

from bs4 import BeautifulSoup
from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"
IMAGES = ("posts/imgs/kitten.png", "images/banner.png")


def copy_site(name: str, dest: Path) -> Path:
    """Copy fixtures/NAME to dest and add the small images its posts reference."""
    shutil.copytree(FIXTURES / name, dest)
    for rel in IMAGES:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (24, 16), (200, 120, 40)).save(dest / rel)
    return dest


class FakeStage:
    """The figures stage's interface, rendering a bare <figure> per directive."""

    made: list["FakeStage"] = []

    def __init__(self, site, cache_dir, quiet=False):
        self.planned, self.ran = [], False
        self.counters = {"computed": 0, "reused": 0}
        FakeStage.made.append(self)

    def plan(self, directive, params, page_meta):
        self.planned.append((directive, params, page_meta))

    def run(self):
        self.ran = True

    def render(self, directive):
        caption = html.escape(directive.get("caption") or directive.name)
        return (f'<figure class="ft-figure ft-{directive.name}" data-line="{directive.pos.line}">'
                f"<figcaption>{caption}</figcaption></figure>")

    def files(self):
        return {}

    def watch_paths(self):
        return []


def soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(Path(path).read_text(encoding="utf-8"), "html.parser")
