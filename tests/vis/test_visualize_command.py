"""`build.py visualize` end to end: JSON, arrays, PNGs, and one-line errors (exit 2)."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from generator.cli import main
from generator.vis.core.models import load_model
from generator.vis.core.objectives import capturing


def run(*args):
    return CliRunner().invoke(main, ["visualize", *map(str, args)])


@pytest.fixture(scope="module")
def model():
    return load_model("default", device="cpu")


def test_json_arrays_and_pngs(model, tmp_path):
    arrays, out, doc_path = tmp_path / "arrays", tmp_path / "png", tmp_path / "doc.json"
    r = run("--model", "default", "--units", "conv4_2,fc8_7", "--steps", 12, "--seed", 1,
            "--json", doc_path, "--arrays", arrays, "--out", out)
    assert r.exit_code == 0, r.output
    doc = json.loads(doc_path.read_text())
    assert doc["model"] == "default"
    assert [u["unit"] for u in doc["units"]] == ["conv4_2", "fc8_7"]
    assert all(set(u) == {"unit", "activation", "steps"} and u["steps"] == 12 for u in doc["units"])
    xs = [np.load(arrays / f"{u}.npy") for u in ("conv4_2", "fc8_7")]
    assert all(x.shape == (1, 64, 64) and x.dtype == np.float32 for x in xs)
    # the arrays are the model's input as its forward takes it: they reach the reported activations
    with torch.no_grad(), capturing(model, [model.layer("conv4"), model.layer("fc8")]) as forward:
        hs = forward(torch.from_numpy(np.stack(xs)))[0]
    assert hs["conv4"][0, 2, 4, 4].item() == pytest.approx(doc["units"][0]["activation"], rel=1e-4, abs=1e-5)
    assert hs["fc8"][1, 7].item() == pytest.approx(doc["units"][1]["activation"], rel=1e-4, abs=1e-5)
    with Image.open(out / "fc8_7.png") as png:
        assert png.size == (64, 64) and png.mode == "L"


def test_json_to_stdout_is_reproducible():
    a = run("--model", "default", "--units", "fc7_3", "--steps", 5, "--json", "-")
    b = run("--model", "default", "--units", "fc7_3", "--steps", 5, "--json", "-")
    assert a.exit_code == 0, a.output
    assert json.loads(a.stdout) == json.loads(b.stdout)


@pytest.mark.parametrize("args, message", [
    (["--units", "conv9_1"], "no layer"),
    (["--units", "fc8_99"], "fc8 has 10 units"),
    (["--units", "fc8_1", "--steps", 0], "steps"),
    (["--units", "fc8_1", "--steps", 10001], "steps"),
    (["--units", "fc8_1", "--objective", "gram"], "objective"),
    (["--units", "fc8_1", "--lr", "-1"], "lr"),
    (["--units", "fc8_1", "--param", "cppn"], "parametrization"),
])
def test_bad_input_is_one_line_exit_2(args, message, tmp_path):
    r = run("--model", "default", *args, "--arrays", tmp_path / "a")
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert not (tmp_path / "a").exists()
