"""Content digests of input files (images, model weights), remembered by file stat.

A figure's cache key includes the bytes of its image and its model's weights. Hashing a
few MB of weights on every build would cost more than a no-op build is allowed, so a
digest is reused while the file's size and modification time are unchanged; replacing
or touching the file makes it hashed again.
"""
from __future__ import annotations

import json
from pathlib import Path

from generator.files import sha256_file, write_atomic


class Digests:
    """File path -> sha256, memoised on disk by (size, mtime_ns)."""

    def __init__(self, store: Path):
        self.store = Path(store)
        try:
            self._memo = json.loads(self.store.read_text())
            if not isinstance(self._memo, dict):
                self._memo = {}
        except (OSError, ValueError):
            self._memo = {}
        self._dirty = False

    def __call__(self, path: Path) -> str:
        path = Path(path).resolve()
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns]
        known = self._memo.get(str(path))
        if isinstance(known, list) and len(known) == 2 and known[0] == stamp:
            return known[1]
        digest = sha256_file(path)
        self._memo[str(path)] = [stamp, digest]
        self._dirty = True
        return digest

    def save(self) -> None:
        if self._dirty:
            write_atomic(self.store, json.dumps(self._memo, sort_keys=True).encode())
            self._dirty = False
