"""Issue 12, point 7: `index` run in a site folder mines under the key the build uses, so
the next build mines nothing."""
from click.testing import CliRunner
from PIL import Image

from generator.cli import main

NET = '''from torch import nn
INPUT_SHAPE = (1, 28, 28)
LABELS = list("abc")
MEAN, STD = (0.5,), (0.5,)
def build():
    return nn.Sequential(nn.Conv2d(1, 4, 5, stride=2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 12 * 12, 3))
'''


def test_index_then_build_mines_nothing(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "posts").mkdir(parents=True)
    (site / "models").mkdir()
    Image.new("L", (28, 28), 120).save(site / "one.png")
    (site / "models" / "net.py").write_text(NET)
    (site / "site.toml").write_text('title = "i"\nimage = "one.png"\nmodel = "models/net.py:build"\n'
                                    '[figures]\ndataset = "fashion-sample"\n')
    (site / "posts" / "2024-01-01-a.md").write_text(
        "---\ntitle: A\ndate: 2024-01-01\n---\n\n<< patches conv1_2 k=4 >>\n")
    monkeypatch.chdir(site)
    indexed = CliRunner().invoke(main, ["index", "--model", "models/net.py:build",
                                        "--dataset", "fashion-sample", "--quiet"])
    assert indexed.exit_code == 0, indexed.output
    assert "indexed 2000 images" in indexed.stdout and ".cache/index" in indexed.stdout

    from generator.vis.data import mining

    def no_mining(*args, **kwargs):
        raise AssertionError("the build mined again")

    monkeypatch.setattr(mining, "mine", no_mining)
    built = CliRunner().invoke(main, ["build", "-q"])
    assert built.exit_code == 0, built.output
    assert "ft-patches" in next((site / "_site").glob("a/index.html")).read_text()
