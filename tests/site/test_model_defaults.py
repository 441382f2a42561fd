"""Issue 12, point 5: a model file without INPUT_SHAPE, MEAN/STD or LABELS builds, and the
build says once which defaults it used (one warning line naming the directive)."""
from __future__ import annotations

from click.testing import CliRunner
from PIL import Image

from generator.cli import main

BARE = '''from torch import nn
def build():
    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(16, 3))
'''
FULL = BARE + "INPUT_SHAPE = (3, 32, 32)\nMEAN = (0.5, 0.5, 0.5)\nSTD = (0.25, 0.25, 0.25)\nLABELS = ['a', 'b', 'c']\n"


def site(root, net_py):
    (root / "posts").mkdir(parents=True)
    (root / "images").mkdir()
    Image.new("RGB", (40, 30), (90, 20, 200)).save(root / "images" / "one.png")
    (root / "net.py").write_text(net_py)
    (root / "site.toml").write_text('title = "m"\nimage = "one.png"\nmodel = "net.py:build"\n')
    for n in (1, 2):
        (root / "posts" / f"2024-01-0{n}-p{n}.md").write_text(
            f"---\ntitle: P{n}\ndate: 2024-01-0{n}\n---\n\n<< unit conv1_{n} >>\n\n<< predictions >>\n")
    return root


def test_defaults_are_said_once(tmp_path):
    root = site(tmp_path / "s", BARE)
    result = CliRunner().invoke(main, ["build", str(root)])
    assert result.exit_code == 0, result.output
    lines = [l for l in result.stderr.splitlines() if "sets no" in l]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("warning: ") and "net.py sets no INPUT_SHAPE, MEAN, STD, LABELS" in line
    assert "INPUT_SHAPE = (3, 224, 224)" in line and "(0.485, 0.456, 0.406) (ImageNet's)" in line
    assert "'0', '1'" in line


def test_a_complete_model_file_says_nothing(tmp_path):
    root = site(tmp_path / "s", FULL)
    result = CliRunner().invoke(main, ["build", str(root)])
    assert result.exit_code == 0, result.output
    assert "sets no" not in result.stderr
