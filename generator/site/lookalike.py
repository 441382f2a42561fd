"""Directives written with look-alike characters (`<‹ ünit conv1_1 >>`, `«unit x»`).

Pasted from a word processor or typed on another keyboard, such a directive is not a
directive, so the build printed it as text and said nothing. When the name, with accents
and compatibility forms taken off, is a figure kind, the build stops with a hint.
"""
from __future__ import annotations

import re
import unicodedata

from .errors import BuildError, offset_to_pos

_OPENERS = "<‹«＜﹤〈⟨"
_LOOKS = re.compile(rf"(?P<open>[{_OPENERS}]{{1,2}})[ \t]*(?P<name>[^\W\d][\w-]*)"
                    r"(?P<args>[^\n]*?)(?:>>|[>›»＞〉⟩]{1,2})")


def _plain(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def check_lookalikes(text: str, shown: str, line_offset: int, names) -> None:
    """Refuse the first look-alike directive outside code whose name means one of `names`."""
    from .textscan import CodeRegions

    code = None
    for m in _LOOKS.finditer(text):
        opener, name = m.group("open"), m.group("name")
        if opener == "<<" and name.isascii():
            continue                      # a real directive (or prose): not ours to judge
        if len(opener) == 1 and (opener != "«" or not m.group("args").strip()):
            continue                      # `<b>`, `‹x›`, a quoted «Word»: prose, not ours
        if _plain(name) not in names:
            continue
        code = CodeRegions(text) if code is None else code
        if m.start() in code:
            continue
        odd = [c for c in opener + name if not c.isascii()]
        shown_chars = ", ".join(f"'{c}' U+{ord(c):04X}" for c in dict.fromkeys(odd))
        raise BuildError(f"'{text[m.start():m.end('name')]}' looks like a directive but uses look-alike "
                         f"characters ({shown_chars}); write << {_plain(name)} ... >>",
                         offset_to_pos(text, m.start(), shown, line_offset))
