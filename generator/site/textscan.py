"""Where the code is in a markdown source: fenced and indented blocks, and code spans.

Directives, kramdown extensions and math are recognised only outside code, so a
post can show `<< unit conv1_4 >>` or `{::comment}` literally inside backticks.
"""
from __future__ import annotations

import bisect
import re

_FENCE_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})(.*)$")
_BACKTICKS = re.compile(r"(?<!\\)`+")
_RUN = re.compile(r"`+")
# a list item or footnote definition: its indented lines after a blank are continuation, not code
_LIST_ITEM = re.compile(r"^ {0,3}([-*+]|\d{1,9}[.)]|\[\^[^\]]+\]:)([ \t]|$)")


def _indented(line: str) -> bool:
    return line.startswith(("    ", "\t", " \t", "  \t", "   \t"))


class CodeRegions:
    """Sorted, disjoint [start, end) character ranges of code in a text."""

    def __init__(self, text: str):
        self.spans: list[tuple[int, int]] = []
        self._scan(text)
        self._starts = [s for s, _ in self.spans]

    def __contains__(self, offset: int) -> bool:
        i = bisect.bisect_right(self._starts, offset) - 1
        return i >= 0 and offset < self.spans[i][1]

    def overlaps(self, start: int, end: int) -> bool:
        """Whether [start, end) touches any code range."""
        i = bisect.bisect_right(self._starts, end - 1) - 1
        return i >= 0 and self.spans[i][1] > start

    def _scan(self, text: str) -> None:
        lines = text.splitlines(keepends=True)
        offset = 0
        chunk_start = None  # start offset of the current run of non-blank prose lines
        fence = None  # (char, length, start offset)
        prev_blank = True  # the previous line was blank (or there was none)
        in_list = False  # the last non-blank block is a list item or footnote (or its continuation)
        indented = None  # [start, end) of the current indented code block
        for line in lines:
            end = offset + len(line)
            if indented is not None:
                if not line.strip() or _indented(line):
                    if line.strip():
                        indented[1] = end
                    prev_blank = not line.strip()
                    offset = end
                    continue
                self.spans.append(tuple(indented))
                indented = None
            if fence is not None:
                char, n, start = fence
                stripped = line.strip()
                if stripped and set(stripped) == {char} and len(stripped) >= n:
                    self.spans.append((start, end))
                    fence = None
            else:
                m = _FENCE_OPEN.match(line.rstrip("\r\n"))
                if line.strip() and prev_blank and not in_list and _indented(line):
                    if chunk_start is not None:
                        self._spans_in(text, chunk_start, offset)
                        chunk_start = None
                    indented = [offset, end]
                elif m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                    if chunk_start is not None:
                        self._spans_in(text, chunk_start, offset)
                        chunk_start = None
                    fence = (m.group(1)[0], len(m.group(1)), offset)
                    in_list = False
                elif not line.strip():
                    if chunk_start is not None:
                        self._spans_in(text, chunk_start, offset)
                        chunk_start = None
                else:
                    if _LIST_ITEM.match(line):
                        in_list = True
                    elif prev_blank and not (in_list and _indented(line)):
                        in_list = False
                    if chunk_start is None:
                        chunk_start = offset
            prev_blank = not line.strip()
            offset = end
        if indented is not None:
            self.spans.append(tuple(indented))
        if fence is not None:
            self.spans.append((fence[2], len(text)))
        elif chunk_start is not None:
            self._spans_in(text, chunk_start, len(text))
        self.spans.sort()

    def _spans_in(self, text: str, start: int, end: int) -> None:
        """Code spans of one paragraph: a run of N backticks up to the next run of exactly N."""
        pos = start
        while True:
            m = _BACKTICKS.search(text, pos, end)
            if not m:
                return
            n = len(m.group(0))
            close = m.end()
            while True:
                c = _RUN.search(text, close, end)
                if not c:
                    break
                if len(c.group(0)) == n:
                    self.spans.append((m.start(), c.end()))
                    break
                close = c.end()
            pos = c.end() if c else m.end()


def first_outside_code(text: str, pattern) -> int:
    """Offset of the first match of `pattern` (a compiled regex) outside code, or -1:
    where an error about a reference or citation points."""
    code = CodeRegions(text)
    for m in pattern.finditer(text):
        if m.start() not in code:
            return m.start()
    return -1
