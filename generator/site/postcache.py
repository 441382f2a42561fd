"""Parsed posts remembered between builds (JSON in the cache dir), keyed by the
file's hash: an unchanged post skips YAML, kramdown blanking and directive
scanning, which is most of a no-op rebuild's CPU time."""
from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path

from generator.files import write_atomic

from .directives import Directive
from .errors import Pos

VERSION = 1


def _enc(v):
    if isinstance(v, datetime):
        return {"__datetime__": v.isoformat()}
    if isinstance(v, date):
        return {"__date__": v.isoformat()}
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise TypeError("non-string key")
        return {k: _enc(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_enc(x) for x in v]
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    raise TypeError(type(v).__name__)


def _dec(v):
    if isinstance(v, dict):
        if "__datetime__" in v:
            return datetime.fromisoformat(v["__datetime__"])
        if "__date__" in v:
            return date.fromisoformat(v["__date__"])
        return {k: _dec(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_dec(x) for x in v]
    return v


def to_json(post) -> dict:
    return {
        "shown": post.shown, "slug": post.slug, "title": post.title, "date": post.date.isoformat(),
        "description": post.description, "tags": list(post.tags), "draft": post.draft,
        "meta": _enc(post.meta), "body": post.body, "body_line": post.body_line, "digest": post.digest,
        "directives": [[d.name, list(d.args), [list(kv) for kv in d.kwargs], [d.pos.path, d.pos.line, d.pos.col],
                        d.raw, d.block] for d in post.directives],
        "params": post.params,
    }


def from_json(source: Path, d: dict):
    from .posts import Post

    return Post(
        source=source, shown=d["shown"], slug=d["slug"], title=d["title"],
        date=datetime.fromisoformat(d["date"]), description=d["description"], tags=tuple(d["tags"]),
        draft=d["draft"], meta=_dec(d["meta"]), body=d["body"], body_line=d["body_line"], digest=d["digest"],
        directives=[Directive(n, tuple(a), tuple(tuple(kv) for kv in kw), Pos(*p), raw, block)
                    for n, a, kw, p, raw, block in d["directives"]],
        params=d["params"],
    )


class PostCache:
    """{source path: parsed post} valid for one code version and working directory."""

    def __init__(self, path: Path, code_key: str):
        self.path = path
        self.key = f"{VERSION}:{code_key}:{os.getcwd()}"
        self.entries: dict[str, dict] = {}
        self.fresh: dict[str, dict] = {}
        try:
            data = json.loads(path.read_text())
            if data.get("key") == self.key:
                self.entries = data["posts"]
        except (OSError, ValueError, KeyError, AttributeError):
            pass

    def get(self, source: Path, digest: str):
        entry = self.entries.get(str(source))
        if entry is None or entry.get("digest") != digest:
            return None
        try:
            post = from_json(source, entry)
        except (KeyError, TypeError, ValueError):
            return None
        self.fresh[str(source)] = entry
        return post

    def put(self, post) -> None:
        try:
            self.fresh[str(post.source)] = to_json(post)
        except TypeError:
            pass  # front matter with values JSON cannot hold: parsed again next time

    def save(self) -> None:
        if self.fresh == self.entries:
            return
        write_atomic(self.path, json.dumps({"key": self.key, "posts": self.fresh}).encode())
