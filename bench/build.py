#!/usr/bin/env python3
"""Build times of the example site with its figures, side by side in one run.

Each scenario is a new `build.py build` process, as a user runs it, on a private copy of
content/ (so the repository's own cache and output are untouched):

  cold          empty cache and output: every figure computed
  no-op         nothing changed                         target <= 1 s
  prose edit    one sentence appended to one post       target <= 1.5 s
  weights swap  the model's weights file replaced: that model's figures recomputed

The copy names the default model's weights file explicitly in site.toml
(`[figures.models.default] weights = ...`, a copy of the shipped checkpoint), so that
the swap can replace it without touching the package. Target for cold: <= 60 s on the
2-core CPU machine.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator.vis.api import DEFAULT_WEIGHTS  # noqa: E402  (torch-free)

TARGETS = {"cold": 60.0, "no-op": 1.0, "prose edit": 1.5, "weights swap": None}


def prepare(src: Path, dst: Path, swap: str | None) -> Path:
    """Copy the site; send output and cache into the copy; pin the weights to a site file
    (unless `swap` already names a weights file of the site)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("_site", ".cache", "out", "cache"))
    toml = (dst / "site.toml").read_text()
    toml = re.sub(r"(?m)^(output|cache)\s*=.*$", "", toml)
    head, sep, rest = toml.partition("\n[")
    toml = head.rstrip() + '\noutput = "_site"\ncache = ".cache"\n' + (sep + rest if sep else "")
    if swap:
        (dst / "site.toml").write_text(toml)
        return dst
    if not DEFAULT_WEIGHTS.is_file():
        sys.exit(f"bench: {DEFAULT_WEIGHTS} is missing; run `python build.py train-default`")
    (dst / "models").mkdir(exist_ok=True)
    shutil.copy2(DEFAULT_WEIGHTS, dst / "models" / "default.safetensors")
    if re.search(r"(?m)^\[figures\]", toml):
        toml = re.sub(r"(?m)^\[figures\]\s*$", "[figures]\nmodels = { default = { weights = "
                      '"models/default.safetensors" } }', toml, count=1)
    else:
        toml += '\n[figures]\nmodels = { default = { weights = "models/default.safetensors" } }\n'
    (dst / "site.toml").write_text(toml)
    return dst


def run(site: Path) -> dict:
    """One build process: wall time and the summary it prints."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, str(ROOT / "build.py"), "build", str(site)],
                         capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    if out.returncode:
        sys.exit(f"bench: build failed:\n{out.stderr.strip()}")
    text = out.stdout + out.stderr
    figures = re.search(r"figures: (\d+) computed, (\d+) reused", text)
    pages = re.search(r"(\d+) pages rendered", text)
    return {"wall": wall, "computed": int(figures.group(1)) if figures else 0,
            "reused": int(figures.group(2)) if figures else 0,
            "pages": int(pages.group(1)) if pages else -1}


def edit_prose(site: Path) -> None:
    post = sorted((site / "posts").rglob("*.md"))[0]
    post.write_text(post.read_text() + "\nOne more sentence of prose for the benchmark.\n")


def swap_weights(path: Path) -> None:
    """Replace the weights file by a slightly different one (every tensor scaled by 1.01)."""
    from safetensors.numpy import load_file, save_file

    save_file({k: v * v.dtype.type(1.01) for k, v in load_file(str(path)).items()}, str(path))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", type=Path, default=ROOT / "content", help="site to copy (content/)")
    ap.add_argument("--swap", metavar="FILE", help="weights file of the site to replace "
                    "(default: a site copy of the default model's checkpoint)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ft-bench-build-") as tmp:
        site = prepare(args.site, Path(tmp) / "site", args.swap)
        rows = [("cold", run(site)), ("no-op", run(site))]
        edit_prose(site)
        rows.append(("prose edit", run(site)))
        swap_weights(site / (args.swap or "models/default.safetensors"))
        rows.append(("weights swap", run(site)))
    cold = rows[0][1]["wall"]
    print(f"example site: {args.site}")
    print(f"{'scenario':<14}{'wall s':>9}{'x cold':>9}{'figures computed':>18}{'reused':>8}"
          f"{'pages':>7}{'target':>9}")
    for name, r in rows:
        target = TARGETS[name]
        verdict = "" if target is None else f"<= {target:g}s " + ("ok" if r["wall"] <= target else "MISSED")
        print(f"{name:<14}{r['wall']:>9.2f}{r['wall'] / cold:>9.3f}{r['computed']:>18}"
              f"{r['reused']:>8}{r['pages']:>7}  {verdict}")


if __name__ == "__main__":
    main()
