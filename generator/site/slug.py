"""Names made from text: URL slugs for posts and tags, kramdown-style heading ids."""
from __future__ import annotations

import re
import unicodedata


def url_slug(text: str) -> str:
    """'Why is this a cat?' -> 'why-is-this-a-cat' (ASCII, lowercase, hyphens)."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def kramdown_id(text: str, separator: str = "-") -> str:
    """Heading id as kramdown makes it, so links like `#some-features-in-a-hierarchy`
    written for a Jekyll site keep working: drop leading non-letters, keep letters,
    digits, spaces and hyphens, spaces become hyphens, lowercase."""
    text = re.sub(r"^[^a-zA-Z]+", "", text)
    text = re.sub(r"[^a-zA-Z0-9 -]", "", text)
    return text.replace(" ", separator).lower() or "section"
