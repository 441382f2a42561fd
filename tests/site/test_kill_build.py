"""Issue 13: `kill -9` at random moments (seeded). After every kill the output is a whole
site, the previous one or the new one byte for byte (the swap is one rename), and the
next build equals a clean build, leaving no temporary trees behind."""
from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from generator.site.pipeline import build

REPO = Path(__file__).resolve().parents[2]
TRIALS = 5
SEED = 13


def make_site(root: Path, version: int, posts: int = 30) -> Path:
    """A text-only site; `version` changes every post's words (so every page changes)."""
    (root / "posts").mkdir(parents=True, exist_ok=True)
    (root / "site.toml").write_text('title = "Killed"\n')
    for i in range(posts):
        (root / "posts" / f"2024-02-{i % 28 + 1:02d}-p{i}.md").write_text(
            f"---\ntitle: Post {i}\ntags: [k{i % 4}]\n---\n\nVersion {version} of post {i}.\n\n"
            + "Words with $x_{i}^2$ math and `code`.\n\n" * 20)
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_kill_9_at_random_moments_never_loses_the_site(tmp_path):
    rng = random.Random(SEED)
    clean = {v: tree(build(make_site(tmp_path / f"ref{v}", v), quiet=True).out_dir) for v in (0, 1)}
    assert clean[0] != clean[1]
    site = make_site(tmp_path / "site", 0)
    build(site, quiet=True)
    survived, states = 0, []
    for trial in range(TRIALS):
        old = trial % 2           # the site as built now; the killed build makes the other
        make_site(site, 1 - old)
        if trial == 2:            # one trial from an empty cache: bodies are being written
            shutil.rmtree(site / ".cache")
        proc = subprocess.Popen([sys.executable, "build.py", "build", str(site), "-q"], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = tree(site / "_site")
        assert now in (clean[old], clean[1 - old]), f"trial {trial}: the output is neither site"
        states.append("new" if now == clean[1 - old] else "old")
        build(site, quiet=True)
        assert tree(site / "_site") == clean[1 - old], f"trial {trial}: next build differs"
        assert not [p.name for p in site.iterdir() if ".tmp-" in p.name]
        survived += 1
    print(f"\nkill trials survived: {survived}/{TRIALS} (output after the kill: {states})")
    assert survived == TRIALS
