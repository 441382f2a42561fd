"""What the pipeline calls: load (or compute) the atlas, link posts to it, write pages."""
from __future__ import annotations

from generator.files import json_digest

from . import pages as atlas_pages
from .links import UnitLinker
from .store import AtlasStore


class AtlasStage:
    """The atlas of `[atlas]`: loaded once per build, before any page is written."""

    def __init__(self, config, quiet: bool = False):
        self.config, self.quiet = config, quiet
        self.store = AtlasStore(config, config.atlas, quiet)
        self.atlas = self.store.load()
        self.linker = UnitLinker(self.atlas, config.abs_url)

    @property
    def link_key(self) -> str:
        """What linking depends on: part of every page's key."""
        return json_digest(["atlas-links", self.atlas.config.model, self.linker.sizes,
                            self.atlas.base])

    def _links_post(self, post) -> bool:
        model = (post.page_meta or {}).get("model") or self.config.model or "default"
        return str(model) == self.atlas.config.model

    def link(self, post, html: str) -> str:
        """The post's HTML with the atlas model's unit names linked."""
        return self.linker.link(html)[0] if self._links_post(post) else html

    def mentions(self, posts, html_of) -> dict[str, list[tuple[str, str]]]:
        """unit -> [(post title, post path)] of the posts whose HTML names it."""
        out: dict[str, list[tuple[str, str]]] = {}
        for post in posts:
            if self._links_post(post):
                for unit in self.linker.link(html_of(post))[1]:
                    out.setdefault(unit, []).append((post.title, post.url_path))
        return out

    def watch_paths(self) -> list:
        return self.store.watch_paths()

    def urls(self) -> list[str]:
        return atlas_pages.urls(self.atlas)

    def files(self) -> dict:
        return atlas_pages.files(self.atlas)

    def write(self, pages, site_key: str, mentions: dict) -> None:
        from .progress import PhaseBar

        with PhaseBar(self.quiet or not self.atlas.computed) as bar:   # quiet when nothing new
            atlas_pages.write(pages, self.atlas, site_key, mentions, bar.update)
