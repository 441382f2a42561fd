"""The KaTeX stylesheet and fonts served with the site come from the npm `katex`
package at exactly the version of the KaTeX that pykatex runs at build time."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pykatex
import pytest

ROOT = Path(__file__).resolve().parents[2]


def pinned() -> str:
    pkg = json.loads((ROOT / "package.json").read_text())["dependencies"]["katex"]
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]["node_modules/katex"]["version"]
    assert pkg == lock, "package.json and package-lock.json disagree"
    assert pkg[0].isdigit(), "pin an exact version, not a range"
    return pkg


def test_pin_matches_the_katex_inside_pykatex():
    version = pinned()
    blob = Path(pykatex.__file__).read_bytes()
    # pykatex embeds KaTeX as QuickJS bytecode; in its string table KaTeX's version
    # literal follows the quirks-mode warning ("...a suitable doctype.").
    i = blob.find(b"suitable doctype.")
    assert i > 0
    m = re.search(rb"(\d+\.\d+\.\d+)", blob[i:i + 40])
    assert m and m.group(1).decode() == version


def test_rendering_equals_the_npm_package_when_node_is_present():
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "katex").is_dir():
        pytest.skip("node and node_modules/katex (npm ci) needed for the cross-check")
    tex = r"\left\{\begin{array}{lr} W_i & \text{if } h>0 \\ 0 & \text{else}\end{array}\right."
    js = ("const k=require('katex');process.stdout.write(k.version+'\\n'+"
          "k.renderToString(process.argv[1],{displayMode:true}))")
    out = subprocess.run([node, "-e", js, tex], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    version, html = out.split("\n", 1)
    assert version == pinned()
    assert html == pykatex.renderToString(tex, displayMode=True)


@pytest.mark.parametrize("shipped, package", [
    ("site_src/vendor/katex/katex.min.css", "node_modules/katex/dist/katex.min.css"),
    ("site_src/vendor/minisearch/minisearch.js", "node_modules/minisearch/dist/umd/index.js"),
])
def test_shipped_copies_equal_the_npm_packages(shipped, package):
    """The repository ships copies (a git install has no npm step); they are the pinned
    packages' files byte for byte (`make katex minisearch` refreshes them)."""
    if not (ROOT / package).is_file():
        pytest.skip(f"{package} missing (npm ci) for the cross-check")
    assert (ROOT / shipped).read_bytes() == (ROOT / package).read_bytes()
    if "katex" in shipped:
        fonts = sorted(p.name for p in (ROOT / "site_src/vendor/katex/fonts").iterdir())
        assert fonts == sorted(p.name for p in (ROOT / "node_modules/katex/dist/fonts").iterdir())
