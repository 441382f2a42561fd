"""TeX macros for KaTeX: `site.toml [math] macros`, a post's `macros:` front matter, and
the `\\newcommand`s a post's own formulas define (they persist to the end of the post).

pykatex does not implement KaTeX's `macros` option, so a macro reaches KaTeX as a
`\\def` preamble in front of each formula (`tex.render_tex` takes the preamble off
error positions again). This module is light (no pykatex, no Markdown): config and
post loading check the shape of a table here; the TeX itself is checked when a page
is rendered (`check_macros_tex`), naming the key.
"""
from __future__ import annotations

import re

from .errors import BuildError, Pos

_NAME = re.compile(r"\\(?:[A-Za-z]+|[^A-Za-z\s])")
_ARG = re.compile(r"#([1-9])")


def _balanced(value: str) -> bool:
    depth = 0
    for m in re.finditer(r"\\.|[{}]", value):
        if m.group(0) == "{":
            depth += 1
        elif m.group(0) == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def check_macros(table, where: str, pos: Pos | None) -> dict[str, str]:
    """A `{"\\\\RR": "\\\\mathbb{R}"}` table checked for shape; errors name `where` and the key."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise BuildError(f"{where} must be a table of macros, e.g. {{ \"\\\\RR\" = \"\\\\mathbb{{R}}\" }}", pos)
    out = {}
    for key, value in table.items():
        key = str(key)
        name = key if key.startswith("\\") else "\\" + key
        if not _NAME.fullmatch(name):
            raise BuildError(f"{where} '{key}': a macro name is a backslash and letters, e.g. \\RR", pos)
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise BuildError(f"{where} '{key}': the definition must be a string of TeX", pos)
        value = str(value)
        if not _balanced(value):
            raise BuildError(f"{where} '{key}': unbalanced braces in {value!r}", pos)
        out[name] = value
    return out


def preamble(macros: dict[str, str]) -> str:
    """`\\def\\NAME#1#2{BODY}` for each macro (a `#n` in the body makes it take n arguments)."""
    parts = []
    for name, body in macros.items():
        n = max((int(a) for a in _ARG.findall(body)), default=0)
        parts.append(f"\\def{name}{''.join(f'#{i}' for i in range(1, n + 1))}{{{body}}}")
    return "".join(parts)


def arity(body: str) -> int:
    return max((int(a) for a in _ARG.findall(body)), default=0)


def check_macros_tex(macros: dict[str, str], where: str, pos: Pos | None, render) -> None:
    """Use every macro once through `render(tex)` (KaTeX, whose TexError is a ValueError);
    the first failure names its key."""
    pre = ""
    for name, body in macros.items():
        pre += preamble({name: body})
        try:
            render(pre + name + "{x}" * arity(body))
        except ValueError as e:
            raise BuildError(f"{where} '{name}': KaTeX: {e}", pos) from None


_DEFINERS = re.compile(r"\\(?:(?:re|provide)?newcommand\*?|DeclareMathOperator\*?|g?def)(?![A-Za-z])")


def _group(tex: str, i: int) -> int | None:
    """End (exclusive) of the brace group starting at `tex[i] == '{'`."""
    depth = 0
    j = i
    while j < len(tex):
        c = tex[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return None


def definitions(tex: str) -> str:
    """The `\\newcommand`/`\\def`/`\\DeclareMathOperator` definitions in one formula, as
    TeX to put in front of the formulas after it (KaTeX forgets them between calls)."""
    out = []
    for m in _DEFINERS.finditer(tex):
        j = m.end()
        # the name: \foo or {\foo}; then [n] [default] or #1#2 parameter text
        stop = re.compile(r"\s*(\{\\[A-Za-z]+\}|\\[A-Za-z]+)(\s*\[[^\]]*\]){0,2}(#\d)*\s*").match(tex, j)
        if not stop:
            continue
        j = stop.end()
        if j >= len(tex) or tex[j] != "{":
            continue
        end = _group(tex, j)
        if end is None:
            continue
        out.append(tex[m.start():end])
    return "".join(out)
