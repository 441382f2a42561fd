"""Size limits on what a post may ask the build to do, each a one-line error past it.

KaTeX's time grows faster than a formula's length (a 20,000-term formula took 26 s),
and a directive's values end up in cache keys, file names and figure requests; without
bounds one hostile or mistaken post stalls every build. The limits are generous for real
posts and documented in the README ("Limits").
"""
from __future__ import annotations

from .errors import BuildError

MAX_FORMULA = 4000        # characters of one formula ($...$, $$...$$, \[...\], environments)
MAX_DIRECTIVE = 4000      # characters of one directive, `<<` to `>>`
MAX_VALUE = 1000          # characters of one positional argument or key's value
MAX_ITEMS = 64            # comma-separated items in one value (units=, images=, ...)
MAX_DIRECTIVES = 200      # directives in one post


def check_directives(directives: list) -> None:
    """Refuse a post's directives past the limits, at the offending directive."""
    if len(directives) > MAX_DIRECTIVES:
        raise BuildError(f"{len(directives)} directives in one post; the limit is "
                         f"{MAX_DIRECTIVES} (split the post)", directives[MAX_DIRECTIVES].pos)
    for d in directives:
        if len(d.raw) > MAX_DIRECTIVE:
            raise BuildError(f"directive {d.name} is {len(d.raw)} characters long; the limit "
                             f"is {MAX_DIRECTIVE}", d.pos)
        named = [(f"argument {i + 1}", v) for i, v in enumerate(d.args)]
        named += [(f"{k}=", v) for k, v in d.kwargs]
        for what, value in named:
            if len(value) > MAX_VALUE:
                raise BuildError(f"{d.name} {what} is {len(value)} characters long; the limit "
                                 f"is {MAX_VALUE}", d.pos)
            if value.count(",") >= MAX_ITEMS:
                raise BuildError(f"{d.name} {what} lists {value.count(',') + 1} items; the "
                                 f"limit is {MAX_ITEMS}", d.pos)


def check_formula(tex: str, pos_of) -> None:
    """Refuse a formula longer than MAX_FORMULA before KaTeX sees it; `pos_of(tex)` places it."""
    if len(tex) > MAX_FORMULA:
        raise BuildError(f"formula of {len(tex)} characters; the limit is {MAX_FORMULA} "
                         "(split it, or show it as an image)", pos_of(tex))
