"""Issue 12, point 8, in Chromium: a failed rebuild under `serve` shows its one-line error
as an overlay in every open page, and the overlay is gone once the build is fixed."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from browser_support import needs_chromium

pytestmark = needs_chromium
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(tmp_path):
    site = tmp_path / "site"
    (site / "posts").mkdir(parents=True)
    (site / "site.toml").write_text('title = "Served"\n')
    for slug in ("one", "two"):
        (site / "posts" / f"2024-05-01-{slug}.md").write_text(
            f"---\ntitle: {slug}\ndate: 2024-05-01\n---\n\nWords of {slug}.\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "build.py"), "serve", str(site), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        for line in proc.stdout:
            m = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
            if m:
                yield site, m.group(1)
                break
        else:
            pytest.fail("serve did not start")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_failed_rebuild_shows_in_every_open_page_until_fixed(served, browser):
    site, origin = served
    pages = []
    for slug in ("one", "two"):
        page = browser.new_page()
        page.goto(f"{origin}{slug}/", wait_until="load")
        pages.append(page)
    post = site / "posts" / "2024-05-01-one.md"
    good = post.read_text()
    post.write_text(good.replace("date: 2024-05-01", "date: 2024-02-30"))
    for page in pages:
        overlay = page.wait_for_selector("#ft-build-error", timeout=30000)
        text = overlay.inner_text()
        assert "2024-05-01-one.md:3:" in text and "is not a date" in text
    assert "Words of two." in pages[1].inner_text("body")    # the last good page stays
    post.write_text(good)
    for page in pages:
        page.wait_for_selector("#ft-build-error", state="detached", timeout=30000)
    assert "Words of one." in pages[0].inner_text("body")
