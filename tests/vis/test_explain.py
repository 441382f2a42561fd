"""`build.py explain` end to end: JSON schema, arrays, PNGs, and one-line errors (exit 2)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import vis_reference as ref
from generator.cli import main
from generator.vis.core.models import load_model

ROOT = Path(__file__).resolve().parents[2]
MODEL = f"{Path(__file__).parent / 'vis_tiny_models.py'}:chain"


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("in") / "x.npy"
    np.save(path, torch.randn(3, 40, 40, generator=torch.Generator().manual_seed(5)).numpy())
    return path


def run(*args):
    return CliRunner().invoke(main, ["explain", *map(str, args)])


def test_json_arrays_and_pngs(image, tmp_path):
    arrays, out = tmp_path / "arrays", tmp_path / "png"
    r = run("--model", MODEL, "--image", image, "--root", "conv4_3", "--depth", 2,
            "--children", 3, "--rule", "deconv", "--json", "-", "--arrays", arrays, "--out", out)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) == {"model", "rule", "predictions", "tree"}
    assert doc["model"] == MODEL and doc["rule"] == "deconv"
    assert len(doc["predictions"]) == 5 and set(doc["predictions"][0]) == {"index", "label", "prob"}
    probs = [p["prob"] for p in doc["predictions"]]
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0)
    tree = doc["tree"]
    assert tree["unit"] == "conv4_3" and tree["weight"] is None and tree["path"] == "conv4_3"
    nodes = []

    def walk(node, parent_path):
        assert set(node) == {"unit", "layer", "index", "activation", "weight", "path", "children"}
        assert node["unit"] == f"{node['layer']}_{node['index']}"
        assert node["path"] == (f"{parent_path}-{node['unit']}" if parent_path else node["unit"])
        weights = [c["weight"] for c in node["children"]]
        assert weights == sorted(weights, reverse=True)
        assert sum(1 for c in node["children"] if c["children"]) <= 1  # only one is followed
        nodes.append(node)
        for c in node["children"]:
            walk(c, node["path"])

    walk(tree, "")
    assert len(nodes) == 1 + 3 + 3
    assert [n["layer"] for n in nodes[:3]] == ["conv4", "conv3", "conv2"]
    model = load_model(MODEL, device="cpu")
    x = torch.from_numpy(np.load(image))
    for node in nodes:
        arr = np.load(arrays / f"{node['path']}.npy")
        assert arr.dtype == np.float32 and arr.shape == (3, 40, 40)
        expected, _ = ref.walk(model, x, "deconv", node["path"].split("-"))
        np.testing.assert_allclose(arr, expected.numpy(), rtol=1e-4,
                                   atol=1e-4 * float(expected.abs().max()) + 1e-12)
        assert Image.open(out / f"{node['path']}.png").size == (40, 40)
    assert Image.open(out / "hierarchy.png").width > 3 * 40
    root_act = float(load_model(MODEL, device="cpu").module.features[:9](x[None])[0, 3].max())
    assert tree["activation"] == pytest.approx(root_act, rel=1e-5)


def test_explicit_path_and_json_file(image, tmp_path):
    r = run("--model", MODEL, "--image", image, "--root", "fc6_0", "--path", "conv4_1,conv2_5",
            "--children", 2, "--json", tmp_path / "t.json")
    assert r.exit_code == 0, r.output
    tree = json.loads((tmp_path / "t.json").read_text())["tree"]
    level1 = tree["children"]
    followed = [c for c in level1 if c["children"]]
    assert [c["unit"] for c in followed] == ["conv4_1"]
    assert "conv2_5" in [c["unit"] for c in followed[0]["children"]]
    assert followed[0]["children"][0]["layer"] == "conv2"


@pytest.mark.parametrize("args, message", [
    (["--root", "fc6_99"], "error: fc6_99: fc6 has 12 units (0..11)"),
    (["--root", "conv9_1"], "has no layer 'conv9'; its layers are conv1, conv2"),
    (["--root", "conv3_1", "--path", "fc5_1"], "is not below conv3"),
    (["--root", "conv3_1", "--weights", "/nonexistent.pt"], "weights file /nonexistent.pt not found"),
])
def test_bad_input_is_one_line_and_exit_2(image, args, message):
    r = run("--model", MODEL, "--image", image, *args)
    assert r.exit_code == 2
    assert message in r.output
    assert "Traceback" not in r.output and r.output.strip().count("\n") == 0


def test_bad_images(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not a png")
    np.save(tmp_path / "wrong.npy", np.zeros((3, 32, 32), np.float32))
    for name, message in [("junk.png", "not a readable image"),
                          ("wrong.npy", "array has shape (3, 32, 32); the model takes the "
                                        "preprocessed input (C, H, W) = (3, 40, 40)"),
                          ("absent.jpg", "not found")]:
        r = run("--model", MODEL, "--image", tmp_path / name, "--root", "conv3_1")
        assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_image_file_input_is_preprocessed(tmp_path):
    Image.new("RGB", (60, 50), (200, 30, 90)).save(tmp_path / "a.png")
    r = run("--model", MODEL, "--image", tmp_path / "a.png", "--root", "fc6_1", "--depth", 1,
            "--json", "-")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tree"]["unit"] == "fc6_1"


def test_subprocess_exit_code_and_stderr(image):
    p = subprocess.run([sys.executable, "build.py", "explain", "--model", "lenet", "--image",
                        str(image), "--root", "fc6_1"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip().startswith("error: unknown model 'lenet': use one of alexnet")
    assert p.stdout == ""
