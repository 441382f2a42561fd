"""Issue 12, point 2: `featuretree layers` lists a model's named layers (module path, kind,
units, map size, receptive field) and, with --image, each layer's most active units."""
import json
from pathlib import Path

from click.testing import CliRunner

from generator.cli import main

ROOT = Path(__file__).resolve().parents[2]
SNEAKER = ROOT / "content" / "images" / "sneaker_9.png"
BLOCKS = f"{Path(__file__).parent / 'test_functional_relus.py'}:blocks_F_relu"


def run(*args):
    return CliRunner().invoke(main, ["layers", *args])


def test_default_model_table():
    result = run("--model", "default")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("default: input 1x64x64, 8 named layers")
    names = [l.split()[0] for l in lines[2:10]]
    assert names == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    assert lines[2].split() == ["conv1", "features.1", "ReLU", "conv", "32", "32x32", "6x6", "2x2"]
    assert "fc (logits)" in lines[9] and "whole input" in lines[9]


def test_json_with_an_image_lists_the_most_active_units():
    result = run("--model", "default", "--image", str(SNEAKER), "--json", "--top", "3")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["input_shape"] == [1, 64, 64]
    conv2 = doc["layers"][1]
    assert conv2["field"] == {"size": [16, 16], "stride": [4, 4], "global": False}
    assert conv2["map"] == [16, 16] and conv2["units"] == 64
    acts = [u["activation"] for u in conv2["top"]]
    assert len(acts) == 3 and acts == sorted(acts, reverse=True)
    top_class = doc["layers"][-1]["top"][0]
    assert top_class["label"] == "Sneaker" and top_class["unit"] == "fc8_7"


def test_functional_relus_are_listed_by_their_call():
    result = run("--model", BLOCKS, "--json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)["layers"]}
    assert rows["conv3"]["path"] == "relu(bn3)"
    assert rows["conv3"]["module"] == "ReLU call after BatchNorm2d"
    assert rows["conv3"]["field"]["size"] == [9, 9]


def test_a_bad_model_is_one_line():
    result = run("--model", "lenet")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        result.stderr.strip()] and "unknown model 'lenet'" in result.stderr


UPSAMPLING = '''
import torch.nn as nn
import torch.nn.functional as F

INPUT_SHAPE, MEAN, STD, LABELS = (1, 16, 16), (0.5,), (0.5,), ["a", "b"]


class Up(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3)
        self.conv2 = nn.Conv2d(2, 2, 3)
        self.fc = nn.Linear(2 * 26 * 26, 2)

    def forward(self, x):
        x = F.interpolate(F.relu(self.conv1(x)), scale_factor=2)
        return self.fc(F.relu(self.conv2(x)).flatten(1))


def build():
    return Up().eval()
'''


def test_a_model_whose_fields_cannot_be_followed_says_why(tmp_path):
    """The layers are still listed; the one line under the table names the call."""
    (tmp_path / "up.py").write_text(UPSAMPLING)
    result = run("--model", f"{tmp_path / 'up.py'}:build")
    assert result.exit_code == 0, result.output
    note = [l for l in result.stdout.splitlines() if l.startswith("field ?:")]
    assert note == ["field ?: cannot compute receptive fields through Up.forward: interpolate "
                    "changes the map from (14, 14) to (28, 28); supported: conv2d, max/avg "
                    "pooling, adaptive pooling with even bins, pad, calls that keep the map "
                    "size, flatten/linear; patch grids, crops and atlas patches need receptive "
                    "fields"], result.stdout
