"""Equation numbers across one page, as in a paper.

KaTeX numbers each formula on its own, so two `\\begin{equation}`s on a page would
both read "(1)". Here the page counts: a display formula that has a `\\label{NAME}`
or is an unstarred `equation`/`align`/`gather`/`alignat` environment takes the next
number as its `\\tag` (the environment becomes its starred form, one number per
formula); a formula with its own `\\tag{A}` keeps it, and its label refers to "(A)".
`\\eqref{NAME}` in prose becomes a link reading "(3)", `\\ref{NAME}` one reading "3".
"""
from __future__ import annotations

import html as htmllib
import re

from .errors import BuildError

_LABEL = re.compile(r"\\label\s*\{([^{}]*)\}")
_TAG = re.compile(r"\\tag(\*?)\s*\{([^{}]*)\}")
_NUMBERED_ENV = re.compile(r"\\(begin|end)\{(equation|align|gather|alignat)\}")
_VALID = re.compile(r"[A-Za-z][\w:.\-]*")


class Numbering:
    """Labels and numbers of one page; references are tokens until `resolve`."""

    def __init__(self, salt: str):
        self.salt = salt
        self.count = 0
        self.labels: dict[str, str] = {}  # label -> the number as shown, e.g. "3"
        self.refs: list[tuple[str, str, str]] = []  # (label, kind, source text)

    def number(self, tex: str, ctx) -> tuple[str, str]:
        """(the formula to give KaTeX, its anchor id or '')."""
        labels = _LABEL.findall(tex)
        envs = _NUMBERED_ENV.findall(tex)
        if len(labels) > 1:
            raise BuildError(f"one \\label per display formula (this one has {len(labels)}: "
                             f"{', '.join(labels)})", ctx.pos_of(f"\\label{{{labels[1]}}}"))
        if not labels and not envs:
            return tex, ""
        tex = _LABEL.sub("", tex)
        tag = _TAG.search(tex)
        if tag:
            shown = tag.group(2).strip()
        else:
            self.count += 1
            shown = str(self.count)
            if envs:
                tex = _NUMBERED_ENV.sub(lambda m: f"\\{m.group(1)}{{{m.group(2)}*}}", tex)
                last_end = tex.rfind("\\end{")
                tex = tex[:last_end] + f"\\tag{{{shown}}}" + tex[last_end:]
            else:
                tex = tex + f" \\tag{{{shown}}}"
        if not labels:
            return tex, ""
        label = labels[0].strip()
        pos = lambda: ctx.pos_of(f"\\label{{{labels[0]}}}")  # noqa: E731
        if not _VALID.fullmatch(label):
            raise BuildError(f"label '{label}': write letters, digits and : . - _ (e.g. eq:loss)", pos())
        if label in self.labels:
            first = ctx.pos_of(f"\\label{{{labels[0]}}}")
            second = ctx.source.find(f"\\label{{{labels[0]}}}", ctx.source.find(f"\\label{{{labels[0]}}}") + 1)
            at = ctx.pos_of(f"\\label{{{labels[0]}}}", second) if second >= 0 else first
            raise BuildError(f"duplicate label '{label}' (first at line {first.line})", at)
        self.labels[label] = shown
        return tex, label

    def reference(self, label: str, kind: str, text: str) -> str:
        """A placeholder for `\\eqref{label}` that `resolve` replaces."""
        self.refs.append((label, kind, text))
        return f"fteqref{len(self.refs) - 1}z{self.salt}"

    def resolve(self, html: str, ctx) -> str:
        """Every reference token replaced by its link; an unknown label is an error at the reference."""
        for i, (label, kind, text) in enumerate(self.refs):
            if label not in self.labels:
                import difflib

                close = difflib.get_close_matches(label, self.labels, n=1)
                did = f" (did you mean '{close[0]}'?)" if close else ""
                known = f"; labels on this page: {', '.join(self.labels)}" if self.labels else \
                    "; this page labels no equation (\\label{eq:x} inside display math)"
                raise BuildError(f"unknown equation label '{label}'{did}{known}", ctx.pos_of(text))
            shown = self.labels[label]
            words = f"({shown})" if kind == "eqref" else shown
            link = (f'<a class="eqref" href="#{htmllib.escape(label)}">{htmllib.escape(words)}</a>')
            html = html.replace(f"fteqref{i}z{self.salt}", link)
        return html
