"""A post without a date (a Jekyll page such as `blog/NAME/index.md` with only `title` and
`published`) takes its file's last git commit date, else its modification time, and the
build says which. Refreshed every build, since neither is in the file's bytes."""
from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from pathlib import Path


def date_of(path: Path) -> tuple[datetime, str]:
    """(when, where from): the last commit touching `path`, else its mtime (UTC)."""
    committed = _git_date(path)
    if committed is not None:
        return committed, "its last git commit"
    mtime = datetime.fromtimestamp(Path(path).stat().st_mtime, timezone.utc)
    return mtime.replace(microsecond=0), "its file modification time"


def _git_date(path: Path) -> datetime | None:
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%cI", "--", Path(path).name],
                             cwd=Path(path).parent, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None   # no git, or too slow: the mtime will do
    text = out.stdout.strip()
    if out.returncode != 0 or not text:
        return None   # not a repository, or the file was never committed
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def note(shown: str, when: datetime, source: str) -> str:
    """The build's one line about an undated post."""
    return f"note: {shown} has no date; using {source}, {when.date().isoformat()}"
