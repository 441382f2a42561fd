"""Kramdown-isms of existing Jekyll posts, rewritten into what Python-Markdown reads.

Two passes over the source (code spans and fenced code untouched):

- `blank_extensions`: `{::comment}...{:/comment}` and `{::options .../}` become
  spaces (newlines kept), so every later position still matches the file.
- `rewrite_ials`: block IALs (`{:.zoom_img}` on the line after `</figure>`, or
  before a block) move onto the block they name, and chained span IALs
  (`{:.center}{: style="width: 50%"}`) merge into one attr_list. After a table, a
  list, where attr_list cannot reach, the IAL becomes a marker
  paragraph that `markup.BlockIalExtension` moves onto the element before it.
"""
from __future__ import annotations

import re
import shlex

from .textscan import CodeRegions

_EXTENSION = re.compile(r"\{::comment\}.*?\{:/comment\}|\{::comment\s*/\}|\{::options\b[^}]*/\}", re.S)
_BLOCK_IAL = re.compile(r"^[ \t]*\{:(?![a-zA-Z][\w-]*:)[ \t]*([^}\n]*)\}[ \t]*$")
_CHAINED_IAL = re.compile(r"\{:([^}\n]*)\}\{:([^}\n]*)\}")
_CLOSE_TAG = re.compile(r"</([A-Za-z][\w-]*)>\s*$")
_OPEN_TAG_LINE = re.compile(r"^[ \t]*<([A-Za-z][\w-]*)\b")
# Blocks whose last line attr_list does not read: a table row, a list item.
_OPAQUE_BLOCK_END = re.compile(r"^[ \t]*(\|.*|.*\|[ \t]*|([-*+]|\d+\.)[ \t].*)$")
MARKER = re.compile(r"^ftial-([0-9a-f]+)$")  # read back by markup.BlockIalExtension

# HTML elements that form blocks (an IAL after their closing tag names the element).
BLOCK_TAGS = {"figure", "div", "section", "aside", "table", "blockquote", "details", "p",
              "ul", "ol", "dl", "pre", "article", "header", "footer", "nav", "center"}


def _blank(match: re.Match) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def blank_extensions(text: str) -> str:
    """Replace kramdown comments and options with whitespace of the same shape."""
    code = CodeRegions(text)
    out, last = [], 0
    for m in _EXTENSION.finditer(text):
        if m.start() in code:
            continue
        out.append(text[last:m.start()])
        out.append(_blank(m))
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def parse_ial(body: str) -> list[tuple[str, str]]:
    """`.a #b key="v w"` -> [('class','a'), ('id','b'), ('key','v w')]."""
    try:
        parts = shlex.split(body)
    except ValueError:
        parts = body.split()
    attrs = []
    for part in parts:
        if part.startswith("."):
            attrs.append(("class", part[1:]))
        elif part.startswith("#"):
            attrs.append(("id", part[1:]))
        elif "=" in part:
            k, v = part.split("=", 1)
            attrs.append((k, v))
    return attrs


def merge_into_tag(tag: str, attrs: list[tuple[str, str]]) -> str:
    """Add IAL attributes to an opening tag string such as `<figure markdown="1">`."""
    from html import escape

    m = re.match(r"(<.*?)(\s*/?>)$", tag.strip(), re.S)
    head, tail = m.group(1), m.group(2)
    for key, value in attrs:
        m = re.search(rf'\s{re.escape(key)}\s*=\s*("([^"]*)"|\'([^\']*)\')', head)
        if key == "class" and m:
            old = m.group(2) if m.group(2) is not None else m.group(3)
            if value not in old.split():
                head = head[:m.start()] + f' class="{escape(old + " " + value)}"' + head[m.end():]
        elif m:
            head = head[:m.start()] + f' {key}="{escape(value)}"' + head[m.end():]
        else:
            head += f' {key}="{escape(value)}"'
    return head + tail


def _opening_line(lines: list[str], close_idx: int, tag: str) -> int | None:
    """Index of the line holding the `<tag ...>` that the `</tag>` on `close_idx` closes."""
    depth = 0
    open_re = re.compile(rf"<{tag}\b", re.I)
    close_re = re.compile(rf"</{tag}\s*>", re.I)
    for i in range(close_idx, -1, -1):
        line = lines[i]
        depth += len(close_re.findall(line))
        depth -= len(open_re.findall(line))
        if depth <= 0:
            return i
    return None


def _merge_on_line(line: str, tag: str, attrs) -> str:
    m = re.search(rf"<{tag}\b[^>]*>", line, re.I)
    if not m:
        return line
    return line[:m.start()] + merge_into_tag(m.group(0), attrs) + line[m.end():]


def rewrite_ials(text: str) -> str:
    """Move block IALs onto their blocks and merge chained span IALs (see module doc)."""
    code = CodeRegions(text)
    lines = text.split("\n")
    offsets, off = [], 0
    for line in lines:
        offsets.append(off)
        off += len(line) + 1
    for i, line in enumerate(lines):
        m = _BLOCK_IAL.match(line)
        if not m or offsets[i] in code:
            continue
        attrs = parse_ial(m.group(1))
        prev = lines[i - 1] if i > 0 else ""
        if prev.strip():
            if _OPAQUE_BLOCK_END.match(prev) and offsets[i - 1] not in code:
                # a blank line ends the block; the marker paragraph carries the IAL
                lines[i] = "\nftial-" + m.group(1).encode().hex()
                continue
            close = _CLOSE_TAG.search(prev)
            if close and close.group(1).lower() in BLOCK_TAGS:
                j = _opening_line(lines, i - 1, close.group(1))
                if j is not None:
                    lines[j] = _merge_on_line(lines[j], close.group(1), attrs)
                    lines[i] = ""
            continue  # after a paragraph or header: attr_list applies it as is
        # Preceded by a blank line: kramdown applies it to the next block.
        k = i + 1
        if k >= len(lines) or not lines[k].strip():
            continue
        opening = _OPEN_TAG_LINE.match(lines[k])
        if opening and opening.group(1).lower() in BLOCK_TAGS:
            lines[k] = _merge_on_line(lines[k], opening.group(1), attrs)
            lines[i] = ""
            continue
        while k + 1 < len(lines) and lines[k + 1].strip():
            k += 1
        lines[i] = ""
        lines[k] = lines[k] + "\n" + line.strip()
    text = "\n".join(lines)
    return _merge_chained(text)


def _merge_chained(text: str) -> str:
    code = CodeRegions(text)
    while True:
        changed = False
        out, last = [], 0
        for m in _CHAINED_IAL.finditer(text):
            if m.start() in code:
                continue
            out.append(text[last:m.start()])
            out.append("{: " + m.group(1).strip() + " " + m.group(2).strip() + "}")
            last = m.end()
            changed = True
        if not changed:
            return text
        out.append(text[last:])
        text = "".join(out)
        code = CodeRegions(text)
