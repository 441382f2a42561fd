#!/usr/bin/env python3
"""Site build times on a generated site of 200 text-only posts, side by side in one run.

Prints, for `build.py build` as a user runs it (new process each time) and for the
pipeline's own clock: cold build (empty cache and output), no-op rebuild, and a
rebuild after a one-post prose edit. Target: no-op rebuild <= 1 s.
"""
from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PARAGRAPH = ("Unit {u} of layer conv{l} responds to {what}; its edge weight to the layer above "
             "is $w_{{{u}}} = |\\bar{{h}}_{{{u}}} \\, G_{{{u}}}|$, and it shows up in {n} of the "
             "images we tried.[^n{i}]")
WHATS = ["oriented edges", "fur texture", "eyes", "wheels", "grids", "colour blobs", "faces"]


def make_site(root: Path, n: int) -> Path:
    rng = random.Random(0)
    (root / "posts").mkdir(parents=True)
    (root / "site.toml").write_text('title = "Bench"\nbase_url = "/bench/"\nurl = "https://example.test"\n')
    for i in range(n):
        paras = "\n\n".join(PARAGRAPH.format(u=rng.randrange(384), l=rng.randrange(1, 6),
                                             what=rng.choice(WHATS), n=rng.randrange(100), i=j)
                            for j in range(6))
        notes = "\n".join(f"[^n{j}]: A note on paragraph {j}." for j in range(6))
        (root / "posts" / f"2020-01-{i % 28 + 1:02d}-post-{i:03d}.md").write_text(
            f"---\ntitle: Post {i}\ndate: 2020-{i % 12 + 1:02d}-{i % 28 + 1:02d}\n"
            f"description: Generated post {i}.\ntags: [t{i % 7}, bench]\n---\n\n"
            f"## Section\n\n{paras}\n\n$$\n\\sum_{{c}} w_c = {i}\n$$\n\n"
            f"```python\nprint({i})\n```\n\n| a | b |\n|---|---|\n| {i} | {i * 2} |\n\n{notes}\n")
    return root


def run_cli(site: Path) -> tuple[float, float, str]:
    """Wall time of one `build.py build` process, the pipeline's own time, its summary."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, str(ROOT / "build.py"), "build", str(site)],
                         capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    if out.returncode:
        sys.exit(out.stderr)
    m = re.search(r"in (\d+\.\d+)s", out.stdout)
    return wall, float(m.group(1)), out.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ft-bench-") as tmp:
        site = make_site(Path(tmp) / "site", args.posts)
        rows = [("cold build", *run_cli(site)), ("no-op rebuild", *run_cli(site))]
        post = sorted((site / "posts").iterdir())[args.posts // 2]
        post.write_text(post.read_text().replace("## Section", "## Section\n\nOne new sentence."))
        rows.append(("one-post edit", *run_cli(site)))
    cold = rows[0][1]
    print(f"{args.posts} text-only posts; `build.py build` per row (process wall time incl. start-up)")
    print(f"{'':16}{'wall s':>9}{'pipeline s':>12}{'vs cold':>9}  summary")
    for name, wall, inner, summary in rows:
        m = re.search(r"\((.*)\) in", summary)
        print(f"{name:16}{wall:9.2f}{inner:12.2f}{wall / cold:9.3f}  {m.group(1) if m else summary}")
    noop = rows[1][1]
    print(f"no-op rebuild target <= 1 s: {'met' if noop <= 1.0 else 'MISSED'} ({noop:.2f} s)")


if __name__ == "__main__":
    main()
