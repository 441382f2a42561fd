"""The site commands: new, clean, --help, and serve (rebuild on change, live reload
only in served pages)."""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.site.posts import load_post

ROOT = Path(__file__).resolve().parents[2]


def make_site(tmp_path):
    site = tmp_path / "site"
    (site / "posts").mkdir(parents=True)
    (site / "site.toml").write_text('title = "Served"\nbase_url = "/b/"\n')
    (site / "posts" / "2024-05-01-hello.md").write_text(
        "---\ntitle: Hello\ndate: 2024-05-01\n---\n\nFirst words.\n")
    (site / "posts" / "2024-05-02-draft.md").write_text(
        "---\ntitle: Draft\ndate: 2024-05-02\ndraft: true\n---\n\nA draft.\n")
    return site


def _next_event(stream) -> list[bytes]:
    """The next server-sent event's lines (comments and keep-alives skipped)."""
    lines: list[bytes] = []
    while True:
        line = stream.readline()
        assert line, "event stream closed"
        line = line.rstrip(b"\n")
        if line and not line.startswith(b":"):
            lines.append(line)
        elif not line and lines:
            return lines


@pytest.mark.parametrize("cmd", ["build", "serve", "new", "clean"])
def test_help(cmd):
    result = CliRunner().invoke(main, [cmd, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_new_creates_a_draft_skeleton_and_refuses_to_overwrite(tmp_path):
    site = make_site(tmp_path)
    first = CliRunner().invoke(main, ["new", 'Units: "what" they <see>', str(site)])
    assert first.exit_code == 0, first.output
    [path] = [p for p in (site / "posts").iterdir() if "units" in p.name]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-units-what-they-see\.md", path.name)
    from generator.site.config import load_config

    post = load_post(path, load_config(site))
    assert post.title == 'Units: "what" they <see>' and post.draft and post.directives == []
    text = path.read_text()
    again = CliRunner().invoke(main, ["new", 'Units: "what" they <see>', str(site)])
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert path.read_text() == text
    built = CliRunner().invoke(main, ["build", str(site), "--drafts", "--quiet"])
    assert built.exit_code == 0, built.output
    assert (site / "_site" / "units-what-they-see" / "index.html").is_file()


def test_clean_removes_output_and_cache(tmp_path):
    site = make_site(tmp_path)
    assert CliRunner().invoke(main, ["build", str(site), "-q"]).exit_code == 0
    assert (site / "_site").is_dir() and (site / ".cache").is_dir()
    result = CliRunner().invoke(main, ["clean", str(site)])
    assert result.exit_code == 0
    assert not (site / "_site").exists() and not (site / ".cache").exists()
    assert (site / "posts" / "2024-05-01-hello.md").is_file()


def _get(port, path, host=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Host": host} if host else {})
    resp = conn.getresponse()
    return resp.status, resp.read().decode()


def test_serve_rebuilds_on_change_and_reloads_the_page(tmp_path):
    site = make_site(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "build.py"), "serve", str(site), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        port = None
        for line in proc.stdout:
            m = re.search(r"at http://127\.0\.0\.1:(\d+)/b/", line)
            if m:
                port = int(m.group(1))
                break
        assert port, "serve did not start"
        status, page = _get(port, "/b/hello/")
        assert status == 200 and "First words." in page and "EventSource" in page
        # the preview is built apart, drafts included; the published output is untouched
        on_disk = (site / "_site.preview" / "hello" / "index.html").read_text()
        assert "EventSource" not in on_disk  # live reload exists only in served pages
        assert not (site / "_site").exists()
        assert "A draft." in _get(port, "/b/draft/")[1]
        assert _get(port, "/b/nowhere/")[0] == 404
        # DNS rebinding: a page from elsewhere that resolves its name to 127.0.0.1 is refused
        assert _get(port, "/b/hello/", host=f"evil.example:{port}")[0] == 421
        assert _get(port, "/b/hello/", host=f"localhost:{port}")[0] == 200

        events = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        events.request("GET", "/__featuretree_reload")
        stream = events.getresponse()
        assert stream.getheader("Content-Type") == "text/event-stream"
        assert stream.readline().startswith(b": connected")
        post = site / "posts" / "2024-05-01-hello.md"
        post.write_text(post.read_text().replace("First words.", "Second words."))
        while True:
            line = stream.readline()
            assert line, "event stream closed before a reload"
            if line.startswith(b"data: reload"):
                break
        assert "Second words." in _get(port, "/b/hello/")[1]

        # a failed rebuild: every open page gets its one-line error (shown as an overlay),
        # a page opened meanwhile gets it on connecting, and the next good build reloads
        good = post.read_text()
        post.write_text(good.replace("date: 2024-05-01", "date: 2024-13-45"))
        error = _next_event(stream)
        assert error[0] == b"event: builderror"
        message = json.loads(error[1].removeprefix(b"data: "))
        assert "2024-05-01-hello.md:3:" in message and "is not a date" in message
        assert "\n" not in message
        late = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        late.request("GET", "/__featuretree_reload")
        late_stream = late.getresponse()
        assert late_stream.readline().startswith(b": connected")
        late_stream.readline()
        assert _next_event(late_stream)[0] == b"event: builderror"
        assert "Second words." in _get(port, "/b/hello/")[1]   # the last good build stays
        assert "builderror" in _get(port, "/b/hello/")[1]      # the overlay's handler
        post.write_text(good)
        assert _next_event(stream) == [b"data: reload"]
        assert _next_event(late_stream) == [b"data: reload"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_url_makes_sitemap_and_feed_absolute_and_is_checked(tmp_path):
    site = make_site(tmp_path)
    out = tmp_path / "out"
    built = CliRunner().invoke(main, ["build", str(site), "--out", str(out),
                                      "--base-url", "/repo/", "--url", "https://me.github.io"])
    assert built.exit_code == 0, built.output
    locs = re.findall(r"<loc>([^<]+)</loc>", (out / "sitemap.xml").read_text())
    assert locs and all(loc.startswith("https://me.github.io/repo/") for loc in locs)
    unset = CliRunner().invoke(main, ["build", str(site), "--out", str(out)])
    assert unset.exit_code == 0 and "no `url`" in unset.output
    bad = CliRunner().invoke(main, ["build", str(site), "--out", str(out),
                                    "--url", "me.github.io/repo"])
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines() == [
        "error: --url 'me.github.io/repo' must be a scheme and host such as "
        "https://you.github.io (the path belongs in base_url)"]


def test_preview_host_check():
    """Only localhost names or the bound address, with no port or the served one."""
    from generator.site.serve import host_status

    for ok in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"):
        assert host_status(ok, "127.0.0.1", 8000) == 200, ok
    assert host_status("192.168.1.5:8000", "192.168.1.5", 8000) == 200
    for bad in ("evil.example", "evil.example:8000", "localhost:9000", "127.0.0.1.evil.example"):
        assert host_status(bad, "127.0.0.1", 8000) == 421, bad
    for broken in (None, "", "a b:c:d]"):
        assert host_status(broken, "127.0.0.1", 8000) == 400, broken
