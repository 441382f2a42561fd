"""Issue 13, findings 2 and 8: a model file is the user's code. Whatever it does (raise,
`sys.exit(0)`, a bad INPUT_SHAPE or LABELS, a failing preprocess(), NaN weights) the
build ends with one line naming the file, exit 2, and the previous site intact."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from generator.cli import main

NET = '''from torch import nn
INPUT_SHAPE = (1, 12, 12)
def build():
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(2 * 12 * 12, 3))
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("models") / "site"
    (root / "posts").mkdir(parents=True)
    (root / "images").mkdir()
    Image.new("L", (12, 12), 90).save(root / "images" / "one.png")
    (root / "net.py").write_text(NET)
    (root / "site.toml").write_text('title = "m"\nimage = "one.png"\nmodel = "net.py:build"\n')
    (root / "posts" / "2024-01-01-a.md").write_text(
        "---\ntitle: A\ndate: 2024-01-01\n---\n\n<< unit conv1_1 >>\n")
    result = CliRunner().invoke(main, ["build", str(root), "-q"])
    assert result.exit_code == 0, result.output
    return root


def tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_line(root, net_py: str, at: str = "2024-01-01-a.md:6:1: ") -> str:
    before = tree(root / "_site")
    (root / "net.py").write_text(net_py)
    try:
        result = CliRunner().invoke(main, ["build", str(root), "-q"])
    finally:
        (root / "net.py").write_text(NET)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    assert tree(root / "_site") == before
    assert at in lines[0], lines[0]
    return lines[0]

# A forward that passes the zero-input probe and fails on a real image (line 10 of net.py).
PICKY = """_b = build
class Picky(nn.Sequential):
    def forward(self, x):
        if x.abs().sum() > 0:
            {call}
        return super().forward(x)
def build():
    return Picky(*_b())"""

CASES = [
    ("INPUT_SHAPE = 'abc'", "net.py: INPUT_SHAPE must be (C, H, W)"),
    ("INPUT_SHAPE = (1, 12)", "net.py: INPUT_SHAPE must be (C, H, W)"),
    ("INPUT_SHAPE = (1, -12, 12)", "net.py: INPUT_SHAPE must be (C, H, W)"),
    ("LABELS = 5", "net.py: LABELS must be a list"),
    ("LABELS = 'abc'", "net.py: LABELS must be a list"),
    ("LABELS = ['a', 'b']", "LABELS has 2 names but the last layer fc2 has 3 units"),
    ("MEAN = 'x'", "net.py: MEAN must be 1 finite numbers"),
    ("STD = (0,)", "net.py: STD must be 1 finite numbers (none zero)"),
    ("def preprocess(image):\n    raise ValueError('boom')", "net.py: preprocess() failed (ValueError: boom)"),
    ("def preprocess(image):\n    return 3", "net.py: preprocess() returned int, not a tensor"),
    ("import sys\nsys.exit(0)", "net.py: importing it called sys.exit(0)"),
    ("raise RuntimeError('top level')", "net.py: importing it failed (RuntimeError: top level)"),
    ("_b = build\ndef build():\n    import sys; sys.exit(0)", "net.py:build: the factory called sys.exit(0)"),
    ("def build():\n    raise SystemExit(3)", "net.py:build: the factory called sys.exit(3)"),
    ("def build():\n    raise KeyError('k')", "net.py:build: the factory failed (KeyError: 'k')"),
    ("def build():\n    return 7", "the factory returned int, not an nn.Module"),
    (PICKY.format(call="raise ValueError('only zeros')"),
     "net.py:10: the model's code failed (ValueError: only zeros)"),
    (PICKY.format(call="import sys; sys.exit(0)"), "net.py:10: the model's code failed (sys.exit(0))"),
    ("_b = build\ndef build():\n    m = _b()\n    m[0].weight.data[0, 0, 0, 0] = float('nan')\n    return m",
     "initial weights: tensor 0.weight holds NaN or infinite values"),
]


@pytest.mark.parametrize("extra, message", CASES)
def test_bad_model_file_is_one_line_naming_the_file(site, extra, message):
    line = one_line(site, NET + extra + "\n")
    assert message in line, line


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_inf_weights_are_refused_on_load(site, bad):
    import torch
    from safetensors.torch import save_file

    scope: dict = {}
    exec(NET, scope)
    state = scope["build"]().state_dict()
    state["3.bias"][1] = bad
    save_file(state, str(site / "w.safetensors"))
    torch.save(state, site / "w.pt")
    toml, post = (site / "site.toml").read_text(), site / "posts" / "2024-01-01-a.md"
    text = post.read_text()
    try:
        (site / "site.toml").write_text(toml + '\n[figures]\narchitecture = "net.py:build"\n')
        for name in ("w.safetensors", "w.pt"):
            post.write_text(text.replace("conv1_1 >>", f"conv1_1 model={name} >>"))
            line = one_line(site, NET)
            assert f"{name}: tensor 3.bias holds NaN or infinite values" in line, line
    finally:
        (site / "site.toml").write_text(toml)
        post.write_text(text)


def test_a_good_model_file_still_builds(site):
    result = CliRunner().invoke(main, ["build", str(site), "-q"])
    assert result.exit_code == 0, result.output


def test_figure_template_runtime_error_is_one_line_at_the_template(site):
    own = site / "templates" / "figures"
    own.mkdir(parents=True)
    (own / "units.html").write_text("<figure>\n{{ 1 // 0 }}\n</figure>\n")
    try:
        line = one_line(site, NET, at="templates/figures/units.html:2:1: ")
    finally:
        (own / "units.html").unlink()
        own.rmdir()
        (site / "templates").rmdir()
    assert "templates/figures/units.html:2:1: template error: ZeroDivisionError" in line, line
