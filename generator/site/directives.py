"""Figure directives in posts: `<< NAME ARGS >>`, found with exact positions and
checked against a spec table before anything is computed.

A directive stands alone on its line (a block figure) or inside a paragraph
(inline). ARGS are positional unit references and `key=value` pairs; a value may be
quoted ("..." or '...', backslash escapes the quote). `\\<<` writes a literal `<<`.
Text inside code spans and fenced code is never a directive.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from generator.vis.api import KINDS, Key, Kind

from .errors import BuildError, Pos
from .textscan import CodeRegions

__all__ = ["Pos", "Directive", "DirectiveError", "DirectiveSpec", "Key", "SPECS",
           "find_directives", "validate", "parse_unit", "spec_table_markdown"]


@dataclass(frozen=True)
class Directive:
    """One directive as written: raw strings, in order, and where it is."""

    name: str
    args: tuple[str, ...]
    kwargs: tuple[tuple[str, str], ...]
    pos: Pos
    raw: str
    block: bool

    def get(self, key: str, default: str | None = None) -> str | None:
        """The last value given for `key` (validation rejects repeats)."""
        for k, v in reversed(self.kwargs):
            if k == key:
                return v
        return default


class DirectiveError(BuildError):
    """A malformed or invalid directive; `str(e)` is `path:line:col: message`."""

    def __init__(self, message: str, pos: Pos):
        super().__init__(message, pos)


# --------------------------------------------------------------------------- spec table

# The figure kinds are the directives: each kind's definition (`vis/kinds/<kind>.py`)
# gives its positional arguments and keys; this module only reads them.
SPECS: dict[str, Kind] = KINDS
DirectiveSpec = Kind
SIZES = ("small", "medium", "large", "full")

# --------------------------------------------------------------------------- finding

_OPEN = re.compile(r"(?<!\\)<<")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_NAME = re.compile(r"[ \t]*([A-Za-z_][\w-]*)")
_UNIT = re.compile(r"^([A-Za-z_][\w.]*?)[_:](\d+)$")
_LAYER = re.compile(r"^[A-Za-z_][\w.]*$")


def find_directives(text: str, path: str, line_offset: int = 0) -> list[Directive]:
    """Every `<< NAME ARGS >>` outside code in `text`, in order.

    `line_offset` is added to line numbers (the body of a post starts after its
    front matter). Raises DirectiveError for an unterminated directive whose name
    is (close to) a known one; other stray `<<` in prose are left alone.
    """
    comments = [(c.start(), c.end()) for c in _HTML_COMMENT.finditer(text)]
    code = _code_regions(text, comments)
    found = []
    for m in _OPEN.finditer(text):
        start = m.start()
        if start in code or any(a <= start < b for a, b in comments):
            continue
        name_m = _NAME.match(text, m.end())
        if not name_m:
            continue
        name = name_m.group(1)
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", start)
        line_end = len(text) if line_end < 0 else line_end
        pos = Pos(path, text.count("\n", 0, start) + 1 + line_offset, start - line_start + 1)
        try:
            tokens, end = _tokenize(text, name_m.end(), line_end)
        except _Unterminated as e:
            if name in SPECS or difflib.get_close_matches(name, SPECS, n=1):
                raise DirectiveError(
                    f"unterminated directive '<< {name}': {e.why} (write `<< {name} ... >>` on one line)",
                    Pos(path, pos.line, e.col)) from None
            continue
        if code.overlaps(start, end):
            continue
        raw = text[start:end]
        block = text[line_start:line_end].strip() == raw
        args = tuple(t.value for t in tokens if t.key is None)
        kwargs = tuple((t.key, t.value) for t in tokens if t.key is not None)
        found.append(Directive(name, args, kwargs, pos, raw, block))
    return found


def _code_regions(text: str, comments) -> CodeRegions:
    """Code in `text`, not counting backticks inside directives' quoted values.

    `caption="Two `conv2` units"` must not read as a code span that hides its own
    directive, so those backticks are blanked and the code found again, until the
    directives found no longer change (each round can only uncover more of them)."""
    code, masked = CodeRegions(text), set()
    while True:
        spans = set()
        for m in _OPEN.finditer(text):
            start = m.start()
            name_m = _NAME.match(text, m.end())
            if not name_m or start in code or any(a <= start < b for a, b in comments):
                continue
            line_end = text.find("\n", start)
            try:
                tokens, _ = _tokenize(text, name_m.end(), len(text) if line_end < 0 else line_end)
            except _Unterminated:
                continue
            spans.update(t.quoted for t in tokens if t.quoted and "`" in text[slice(*t.quoted)])
        if spans <= masked:
            return code
        masked |= spans
        chars = list(text)
        for a, b in masked:
            chars[a:b] = [" " if c == "`" else c for c in chars[a:b]]
        code = CodeRegions("".join(chars))


@dataclass(frozen=True)
class _Token:
    key: str | None
    value: str
    col: int  # 1-based column of the token's first character
    quoted: tuple[int, int] | None = None  # offsets of a quoted value's text, quotes excluded


class _Unterminated(Exception):
    def __init__(self, why: str, col: int):
        self.why, self.col = why, col


_KEY = re.compile(r"([A-Za-z_][\w-]*)=")


def _tokenize(text: str, i: int, end: int) -> tuple[list[_Token], int]:
    """Split ARGS from offset `i` up to `>>` on the same line (`end`: the line's end).

    Returns the tokens and the offset just past `>>`.
    """
    tokens = []
    while True:
        while i < end and text[i] in " \t":
            i += 1
        if i >= end:
            raise _Unterminated("missing '>>'", _col(text, i))
        if text.startswith(">>", i):
            return tokens, i + 2
        tok_start = i
        key = None
        km = _KEY.match(text, i, end)
        if km:
            key = km.group(1)
            i = km.end()
        quoted = None
        if i < end and text[i] in "\"'":
            quote = text[i]
            i += 1
            quoted_start = i
            buf = []
            while i < end and text[i] != quote:
                if text[i] == "\\" and i + 1 < end:
                    i += 1
                buf.append(text[i])
                i += 1
            if i >= end:
                raise _Unterminated(f"unclosed {quote}", _col(text, tok_start))
            quoted = (quoted_start, i)
            i += 1
            value = "".join(buf)
        else:
            j = i
            while j < end and text[j] not in " \t" and not text.startswith(">>", j):
                j += 1
            value = text[i:j]
            i = j
        tokens.append(_Token(key, value, _col(text, tok_start), quoted))


def _col(text: str, i: int) -> int:
    return i - (text.rfind("\n", 0, i) + 1) + 1


# --------------------------------------------------------------------------- validating

def parse_unit(ref: str) -> tuple[str, int]:
    """`fc6_1068` -> ('fc6', 1068); `layer4.1:17` -> ('layer4.1', 17). ValueError if malformed."""
    m = _UNIT.match(ref)
    if not m:
        raise ValueError(f"not a unit reference: {ref!r}")
    return m.group(1), int(m.group(2))


def _hint(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def validate(d: Directive, defaults: dict | None = None) -> dict:
    """Check `d` against SPECS; return its parameters typed, defaults applied, keys sorted.

    A key the directive leaves out takes its value from `defaults` (the post's front
    matter `figures:` over site.toml's `[figures]`, already checked by `check_defaults`),
    else the spec's default: one order for every key. Positional arguments are stored
    under the spec's `arg` name (e.g. `root` for a hierarchy). `image`/`model` default to
    None: the figures stage falls back to the post's front matter and site.toml. Raises
    DirectiveError at the offending token.
    """
    defaults = defaults or {}
    spec = SPECS.get(d.name)
    if spec is None:
        raise DirectiveError(f"unknown directive '{d.name}'{_hint(d.name, SPECS)}; "
                             f"valid: {', '.join(sorted(SPECS))}",
                             Pos(d.pos.path, d.pos.line, d.pos.col))
    tokens = _tokens_of(d)
    positional = [t for t in tokens if t.key is None]
    params: dict = {}
    if not (spec.nmin <= len(positional) <= spec.nmax):
        at = positional[spec.nmax] if len(positional) > spec.nmax else None
        want = _count_words(spec)
        raise DirectiveError(f"'{d.name}' takes {want}, got {len(positional)}; e.g. {spec.example}",
                             _at(d, at))
    values = []
    for t in positional:
        values.append(_check_positional(d, spec, t))
    if spec.arg:
        params[spec.arg] = values if spec.nmax > 1 else values[0]
    seen: set[str] = set()
    for t in tokens:
        if t.key is None:
            continue
        if t.key not in spec.keys:
            raise DirectiveError(f"'{d.name}' has no key '{t.key}'{_hint(t.key, spec.keys)}; "
                                 f"valid: {', '.join(sorted(spec.keys))}", _at(d, t))
        if t.key in seen:
            raise DirectiveError(f"'{t.key}' given twice", _at(d, t))
        seen.add(t.key)
        params[t.key] = _convert(d, t, spec.keys[t.key])
    for name, key in spec.keys.items():
        if name not in params:
            if key.required:
                raise DirectiveError(f"'{d.name}' needs {name}=... ({key.doc}); e.g. {spec.example}",
                                     d.pos)
            value = defaults.get(name, key.default)
            params[name] = list(value) if isinstance(value, list) else value
    clash = spec.check_values(params)
    if clash is not None:
        key, message = clash
        raise DirectiveError(message, _at(d, next((t for t in tokens if t.key == key), None)))
    return dict(sorted(params.items()))


def _count_words(spec: DirectiveSpec) -> str:
    if spec.nmax == 0:
        return "no positional arguments"
    what = "unit reference" if spec.positional == "unit" else "layer name"
    if spec.nmin == spec.nmax == 1:
        return f"one {what}"
    return f"{spec.nmin} to {spec.nmax} {what}s"


def _tokens_of(d: Directive) -> list[_Token]:
    """Re-split the raw text to recover each token's column."""
    name_m = _NAME.match(d.raw, 2)
    tokens, _ = _tokenize(d.raw, name_m.end(), len(d.raw))
    # _col() counted from the raw string's start; shift to the line's columns.
    return [_Token(t.key, t.value, t.col + d.pos.col - 1) for t in tokens]


def _at(d: Directive, t: _Token | None) -> Pos:
    return Pos(d.pos.path, d.pos.line, t.col if t else d.pos.col)


def _check_positional(d: Directive, spec: DirectiveSpec, t: _Token) -> str:
    if spec.positional == "target":
        if not (_UNIT.match(t.value) or _LAYER.match(t.value)):
            raise DirectiveError(
                f"'{t.value}' is neither a unit reference (conv5_243, layer4.1:17) nor a "
                f"layer name (conv5)", _at(d, t))
    elif spec.positional == "unit":
        if not _UNIT.match(t.value):
            raise DirectiveError(
                f"'{t.value}' is not a unit reference; write LAYER_INDEX or LAYER:INDEX "
                f"(e.g. conv5_243, layer4.1:17)", _at(d, t))
    elif not _LAYER.match(t.value):
        raise DirectiveError(f"'{t.value}' is not a layer name (e.g. conv1, layer4.1)", _at(d, t))
    return t.value


def _convert(d: Directive, t: _Token, key: Key):
    v, kind = t.value, key.kind
    if kind == "int":
        rng = f"{key.lo}..{key.hi}"
        if not re.fullmatch(r"[+-]?\d+", v):
            raise DirectiveError(f"{t.key} must be an integer in {rng}, got '{v}'", _at(d, t))
        n = int(v)
        if not key.lo <= n <= key.hi:
            raise DirectiveError(f"{t.key}={n} is out of range; valid: {rng}", _at(d, t))
        return n
    if kind == "float":
        rng = f"{key.lo}..{key.hi}"
        try:
            x = float(v)
        except ValueError:
            x = None
        if x is None or x != x:
            raise DirectiveError(f"{t.key} must be a number in {rng}, got '{v}'", _at(d, t))
        if not key.lo <= x <= key.hi:
            raise DirectiveError(f"{t.key}={v} is out of range; valid: {rng}", _at(d, t))
        return x
    if kind == "choice":
        if v not in key.choices:
            raise DirectiveError(f"{t.key}='{v}' is not valid{_hint(v, key.choices)}; "
                                 f"valid: {' | '.join(key.choices)}", _at(d, t))
        return v
    if kind == "text":
        return v
    if kind in ("file", "name"):
        ok = r"[^\s,]+" if kind == "file" else r"[\w.\-/:]+"
        if not re.fullmatch(ok, v):
            what = ("a file or name without spaces or commas" if kind == "file" else
                    "a name or KIND:PATH (letters, digits, . - _ / :), e.g. imagefolder:data/cats")
            raise DirectiveError(f"{t.key} must be {what}, got '{v}'", _at(d, t))
        return v
    if kind in ("units", "files"):
        items = v.split(",")
        if any(not s for s in items):
            raise DirectiveError(f"{t.key} must be a comma list without empty items, got '{v}'", _at(d, t))
        for s in items:
            if kind == "units" and not _UNIT.match(s):
                raise DirectiveError(f"'{s}' in {t.key} is not a unit reference; write LAYER_INDEX "
                                     f"or LAYER:INDEX (e.g. conv4_371)", _at(d, t))
            if kind == "files" and re.search(r"\s", s):
                raise DirectiveError(f"'{s}' in {t.key} is not a file name", _at(d, t))
        if key.hi is not None and len(items) > key.hi:
            raise DirectiveError(f"{t.key} lists {len(items)} items; at most {key.hi}", _at(d, t))
        return items
    if kind == "size":
        s = v.lower()
        if s in SIZES or re.fullmatch(r"[1-9]\d{0,3}px", s):
            return s
        m = re.fullmatch(r"(\d{1,3}(?:\.\d+)?)%", s)
        if m and 0 < float(m.group(1)) <= 100:
            return s
        raise DirectiveError(f"size='{v}' is not valid{_hint(s, SIZES)}; valid: "
                             f"{' | '.join(SIZES)} or a width like 480px or 60%", _at(d, t))
    if kind == "norm":
        if not re.fullmatch(r"[A-Za-z][\w-]*(?::[^\s:,]+)?", v):
            raise DirectiveError(f"norm='{v}' is not valid; write NAME or NAME:PARAM "
                                 f"(e.g. percentile:99.5)", _at(d, t))
        return v
    raise AssertionError(kind)


# Keys of `[figures]` / front matter `figures:` that are not directive keys.
SITE_ONLY_KEYS = {"models": "per-model weights and layer maps ([figures.models.\"NAME\"])",
                  "architecture": "the architecture a bare weights file `model=FILE` loads into"}


# Keys that belong to one figure: as a default they would repeat on every figure.
ONE_FIGURE_KEYS = {"id"}


def check_defaults(values, where: str, pos_of) -> dict:
    """Check site-wide or per-post figure defaults exactly as directive values are checked.

    `values` is site.toml's `[figures]` table or a post's `figures:` map; `where` names
    it in messages; `pos_of(key)` gives the `Pos` of a key. Returns the directive keys,
    converted; an unknown key or a bad value raises DirectiveError naming the key.
    """
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise DirectiveError(f"{where} must be a table of figure settings", pos_of(None))
    every = {}
    for spec in SPECS.values():
        for name, key in spec.keys.items():
            every.setdefault(name, key)
    out = {}
    for name, value in values.items():
        if name in SITE_ONLY_KEYS:
            continue
        pos = pos_of(name)
        if name not in every:
            raise DirectiveError(f"{where} has no figure setting '{name}'"
                                 f"{_hint(name, [*every, *SITE_ONLY_KEYS])}; valid: "
                                 f"{', '.join(sorted([*every, *SITE_ONLY_KEYS]))}", pos)
        if name in ONE_FIGURE_KEYS:
            raise DirectiveError(f"{where}: {name} names one figure; set it on the directive",
                                 pos)
        key = every[name]
        if isinstance(value, bool) or not isinstance(value, (str, int, float, list)):
            raise DirectiveError(f"{where}: {name} must be {_what(key)}, got {value!r}", pos)
        if isinstance(value, list):
            if key.kind not in ("units", "files") or not all(isinstance(v, str) for v in value):
                raise DirectiveError(f"{where}: {name} must be {_what(key)}, got {value!r}", pos)
            value = ",".join(value)
        d = Directive("defaults", (), (), Pos(pos.path, pos.line, pos.col), "", False)
        try:
            out[name] = _convert(d, _Token(name, str(value), pos.col), key)
        except DirectiveError as e:
            raise DirectiveError(f"{where}: {e.message}", pos) from None
    return out


def _what(key: Key) -> str:
    if key.kind == "int":
        return f"an integer in {key.lo}..{key.hi}"
    if key.kind == "float":
        return f"a number in {key.lo}..{key.hi}"
    if key.kind == "choice":
        return "one of " + " | ".join(key.choices)
    if key.kind in ("units", "files"):
        return "a list or comma list of names"
    return "a string"


def spec_table_markdown() -> str:
    """The spec table as Markdown, for the README (generated, so it cannot drift)."""
    rows = ["| directive | positional | keys (default, range) |", "|---|---|---|"]
    for spec in SPECS.values():
        pos = "—" if not spec.arg else f"`{spec.arg}`" + (f" ×{spec.nmin}..{spec.nmax}" if spec.nmax > 1 else "")
        keys = []
        for name, k in spec.keys.items():
            bits = []
            if k.required:
                bits.append("required")
            elif k.default not in (None, [], ()):
                bits.append(f"default {k.default}")
            if k.kind in ("int", "float"):
                bits.append(f"{k.lo}..{k.hi}")
            if k.kind == "choice":
                bits.append(" / ".join(k.choices))  # a bare | would split the table cell
            keys.append(f"`{name}`" + (f" ({', '.join(bits)})" if bits else ""))
        rows.append(f"| `{spec.example}` — {spec.doc} | {pos} | {', '.join(keys)} |")
    return "\n".join(rows)
