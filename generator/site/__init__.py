"""The site pipeline: content/ (posts, config, assets) -> a static site.

Nothing here imports torch at import time; figures are produced by the lazily
imported `generator.site.figures` stage, so a text-only rebuild stays light.
"""
