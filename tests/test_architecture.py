"""The layering of `generator/`: import-linter's contracts (pyproject.toml) and no cycles."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
grimp = pytest.importorskip("grimp")


def test_import_linter_contracts_hold():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, env=env, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "BROKEN" not in run.stdout


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter[0]; counter[0] += 1
        stack.append(start); on.add(start)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in graph.modules:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]; counter[0] += 1
                    stack.append(nxt); on.add(nxt)
                    work.append((nxt, iter(sorted(graph.find_modules_directly_imported_by(nxt)))))
                    break
                if nxt in on:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop(); on.discard(m); comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_cycles():
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph("generator", cache_dir=None)
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    """The checker itself can fail: a two-module loop is reported."""
    class G:
        modules = {"a", "b", "c"}
        def find_modules_directly_imported_by(self, m):
            return {"a": {"b"}, "b": {"a"}, "c": {"a"}}[m]
    assert _cycles(G()) == [["a", "b"]]


def test_engine_version_sees_subfolders_and_skips_training(tmp_path):
    """Code moved into a subfolder still keys figures; retraining code does not."""
    from generator.files import sources_digest

    (tmp_path / "core").mkdir()
    (tmp_path / "default").mkdir()
    (tmp_path / "core" / "a.py").write_text("x = 1\n")
    (tmp_path / "default" / "train.py").write_text("epochs = 4\n")
    before = sources_digest(tmp_path, True, ("default/train.py",))
    (tmp_path / "default" / "train.py").write_text("epochs = 5\n")
    assert sources_digest(tmp_path, True, ("default/train.py",)) == before
    (tmp_path / "core" / "a.py").write_text("x = 2\n")
    assert sources_digest(tmp_path, True, ("default/train.py",)) != before
