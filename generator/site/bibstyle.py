"""How citations and the bibliography read: labels (numeric or author-year) and the
entries formatted by pybtex's `unsrt` style into HTML."""
from __future__ import annotations

import html as htmllib


def _names(entry) -> list[str]:
    from pybtex.richtext import Text

    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [" ".join(t.render_as("text") for t in p.rich_last_names) for p in people]
    if not names and "organization" in entry.fields:
        names = [Text.from_latex(entry.fields["organization"]).render_as("text")]
    return names


def author_label(entry) -> str:
    """'Zeiler', 'Zeiler and Fergus', 'Springenberg et al.' (from the last names)."""
    names = _names(entry) or ["Anonymous"]
    if len(names) == 1:
        return names[0]
    return f"{names[0]} and {names[1]}" if len(names) == 2 else f"{names[0]} et al."


def year_of(entry) -> str:
    return entry.fields.get("year", "n.d.").strip() or "n.d."


class Bibliography:
    """The cited entries of one page, in the order the style lists them."""

    def __init__(self, entries: dict, order: list[str], style: str):
        self.entries = {k: entries[k][0] for k in order}
        self.numeric = style == "numeric"
        if self.numeric:
            self.keys = list(order)
            self.labels = {k: str(i + 1) for i, k in enumerate(order)}
            return
        self.keys = sorted(order, key=lambda k: (author_label(self.entries[k]).lower(),
                                                 year_of(self.entries[k]), k))
        self.labels = {k: year_of(self.entries[k]) for k in self.keys}
        seen: dict[tuple, list[str]] = {}
        for k in self.keys:  # Zeiler 2014a, 2014b
            seen.setdefault((author_label(self.entries[k]), self.labels[k]), []).append(k)
        for same in seen.values():
            if len(same) > 1:
                for i, k in enumerate(same):
                    self.labels[k] += "abcdefghijklmnopqrstuvwxyz"[i % 26]

    def cite(self, items) -> str:
        """One citation group: `[1, p. 3; 2]` or `(Zeiler and Fergus, 2014, p. 3)`."""
        parts = []
        for prefix, key, suppress, locator in items:
            label = self.labels[key]
            if not self.numeric and not suppress:
                label = f"{author_label(self.entries[key])}, {label}"
            text = htmllib.escape(label) + (f", {htmllib.escape(locator)}" if locator else "")
            link = f'<a href="#ref-{htmllib.escape(key)}" role="doc-biblioref">{text}</a>'
            parts.append((htmllib.escape(prefix) + " " if prefix else "") + link)
        open_, close = ("[", "]") if self.numeric else ("(", ")")
        return f'<span class="citation">{open_}{"; ".join(parts)}{close}</span>'

    def html(self, error) -> str:
        """The bibliography section; `error(key, exc)` makes the BuildError for an entry
        pybtex cannot format (a required field missing)."""
        from pybtex.exceptions import PybtexError
        from pybtex.plugin import find_plugin

        style = find_plugin("pybtex.style.formatting", "unsrt")()
        backend = find_plugin("pybtex.backends", "html")()
        items = []
        for key in self.keys:
            try:
                text = next(iter(style.format_entries([self.entries[key]]))).text.render(backend)
            except PybtexError as e:
                raise error(key, e) from None
            label = f"[{self.labels[key]}]" if self.numeric else ""
            span = f'<span class="ref-label">{label}</span> ' if label else ""
            items.append(f'<li id="ref-{htmllib.escape(key)}">{span}{text}</li>')
        kind = "numeric" if self.numeric else "author-year"
        return (f'\n<section class="bibliography" id="references" role="doc-bibliography">\n'
                f'<h2>References</h2>\n<ol class="references {kind}">\n' + "\n".join(items) +
                "\n</ol>\n</section>\n")
