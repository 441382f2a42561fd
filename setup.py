"""Packaging glue that pyproject.toml cannot say declaratively: the theme (`templates/`,
`site_src/`) lives at the repository root, and an installed featuretree carries it inside
the package as `generator/_theme/` (found by `generator.site.theme`). Everything else is
in pyproject.toml."""
from setuptools import find_packages, setup

THEME = {"generator._theme.templates": "templates", "generator._theme.site_src": "site_src"}

setup(
    packages=find_packages(include=["generator", "generator.*"]) + list(THEME),
    package_dir=THEME,
    package_data={
        "generator.vis.default": ["assets/*"],
        "generator.site": ["new_site/**/*"],
        **{package: ["**/*"] for package in THEME},
    },
)
