"""The engine's one exception type.

Every failure a user can cause (unknown model, layer or unit, unreadable image, weights
that do not fit, an unsupported model shape) is an `EngineError` whose `str()` is one line
that names the problem and what would be valid. Callers (the CLI, the site build) print it
as is; they never need a traceback.
"""
from __future__ import annotations


class EngineError(Exception):
    """A user-facing failure of the visualization engine; `str(e)` is one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class EngineWarning(UserWarning):
    """Something the user should know but that does not stop the work (e.g. random weights)."""
