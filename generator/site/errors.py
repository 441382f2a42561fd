"""Build errors that point at the offending input (`path:line:col: message`)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pos:
    """A 1-based position in a source file."""

    path: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


class BuildError(Exception):
    """Bad input found while building; printed as one line, no traceback.

    With a position the message reads `path:line:col: message`, so editors can jump
    to it; without one (e.g. a missing site directory) it is the bare message.
    """

    def __init__(self, message: str, pos: Pos | None = None):
        message = " ".join(str(message).splitlines())  # one line, even for KaTeX's context
        super().__init__(message)
        self.message = message
        self.pos = pos

    def __str__(self) -> str:
        return f"{self.pos}: {self.message}" if self.pos else self.message


def offset_to_pos(text: str, offset: int, path: str, line_offset: int = 0) -> Pos:
    """The 1-based line/column of character `offset` in `text`."""
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return Pos(path, line + 1 + line_offset, offset - start + 1)


def display_path(path) -> str:
    """A path as the user should see it: relative to the working directory when inside it."""
    import os

    p = os.path.abspath(str(path))
    rel = os.path.relpath(p)
    return p if rel.startswith("..") else rel
