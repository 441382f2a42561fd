"""The unit atlas's site part (issue 16): `[atlas]` settings, per-unit results cached by
content, model, layer and unit pages, and links from posts to unit pages. Reaches the
engine only through `generator.vis.api` (torch only when a unit is missing)."""
