"""generator.vis.api: torch-free keying, checked-before-computed requests, grouped forwards,
and results that match the engine called directly."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from generator.vis import api

REPO = Path(__file__).resolve().parents[2]

NET = '''
from torch import nn
INPUT_SHAPE = (1, 16, 16)


def build():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 8 * 8, 5))
'''


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    from PIL import Image
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("apinet")
    (d / "net.py").write_text(NET)
    scope = {}
    exec(NET, scope)
    torch.manual_seed(0)
    save_file(scope["build"]().state_dict(), str(d / "w.safetensors"))
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(d / f"{name}.png")
    (d / "bad.png").write_text("not an image")
    return d


def _req(net, kind, params, images=("a.png",), ref=None):
    return api.FigureRequest(kind=kind, model=f"{net / 'net.py'}:build",
                             weights=str(net / "w.safetensors"),
                             images=[str(net / i) for i in images], params=params, ref=ref)


def test_import_and_model_spec_do_not_import_torch(net):
    code = ("import sys; from generator.vis import api; "
            f"s = api.model_spec('net.py:build', 'w.safetensors', base_dirs=[{str(net)!r}]); "
            "api.engine_version(); api.display_params({'name': 'percentile', 'param': '99'}); "
            "print(len(s.files), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["2", "False"]


def test_model_spec_identity_ignores_location(net, tmp_path):
    import shutil

    shutil.copytree(net, tmp_path / "moved")
    a = api.model_spec("net.py:build", "w.safetensors", base_dirs=[net])
    b = api.model_spec("net.py:build", "w.safetensors", base_dirs=[tmp_path / "moved"])
    assert a.identity == b.identity and a.files != b.files
    with pytest.raises(api.RequestError, match="unknown model"):
        api.model_spec("nosuchnet")
    with pytest.raises(api.RequestError, match="not found"):
        api.model_spec("net.py:build", "missing.safetensors", base_dirs=[net])


def test_display_params_are_explicit_and_checked():
    assert api.display_params({}) == {"name": "percentile", "percentile": 99.5}
    assert api.display_params({"name": "percentile", "param": "98"})["percentile"] == 98.0
    for bad in ({"name": "log"}, {"name": "percentile", "param": "0"},
                {"name": "percentile", "param": "x"}):
        with pytest.raises(api.RequestError):
            api.display_params(bad)


def test_results_match_the_engine(net):
    from generator.vis.render import display
    from generator.vis.core.backprop import Backprop
    from generator.vis.core.hierarchy import hierarchy
    from generator.vis.core.inputs import load_input
    from generator.vis.core.models import load_model

    reqs = [_req(net, "units", {"units": ["conv1_1", "conv2_3"], "rule": "guided", "display": {}}),
            _req(net, "hierarchy", {"root": "fc3_2", "depth": 2, "children": 2, "path": [],
                                    "rule": "deconv", "display": {}})]
    units, tree = api.compute(reqs, device="cpu")
    model = load_model(f"{net / 'net.py'}:build", str(net / "w.safetensors"), device="cpu")
    x = load_input(net / "a.png", model)
    bp = Backprop(model, x, "guided")
    grads = bp.unit_images([model.parse_unit("conv1_1"), model.parse_unit("conv2_3")])
    for u, g in zip(units.data["units"], grads):
        want = np.asarray(display.tile(g, 99.5))
        got = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(
            __import__("io").BytesIO(units.tiles[u["tile"]])))
        assert np.array_equal(got, want)
        assert u["activation"] == pytest.approx(bp.activation(*model.parse_unit(u["unit"])))
    ref = hierarchy(Backprop(model, x, "deconv"), "fc3_2", depth=2, children=2).to_dict()

    def strip(node):
        return {k: (v if k != "children" else [strip(c) for c in v])
                for k, v in node.items() if k != "tile"}
    assert strip(tree.data["tree"]) == ref
    for name, png in {**units.tiles, **tree.tiles}.items():
        assert name == hashlib.sha256(png).hexdigest()[:24] + ".png"
    assert sorted(tree.tiles) == tree.data["tiles"]
    json.dumps([units.data, tree.data])  # JSON-able


def test_one_forward_per_model_image_rule(net, monkeypatch):
    from generator.vis.core import backprop

    made = []
    original = backprop.Backprop.__init__

    def counting(self, model, x, rule="guided", *a, **k):
        made.append(rule)
        original(self, model, x, rule, *a, **k)
    monkeypatch.setattr(backprop.Backprop, "__init__", counting)
    g = {"rule": "guided", "display": {}}
    reqs = [_req(net, "unit", {"units": ["conv1_0"], **g}),
            _req(net, "predictions", {"k": 3}),
            _req(net, "unit", {"units": ["conv2_1"], **g}, images=("b.png",)),
            _req(net, "featuremaps", {"layer": "conv1", "max": 4}),
            _req(net, "hierarchy", {"root": "conv2_0", "depth": 1, "children": 2, "path": [], **g})]
    results = api.compute(reqs, device="cpu")
    assert len(made) == 2                          # image a and image b, rule guided
    assert [p["label"] for p in results[1].data["predictions"]] and len(results[3].data["maps"]) == 4


def test_bad_request_fails_before_anything_is_computed(net):
    seen = []
    good = _req(net, "unit", {"units": ["conv1_0"], "rule": "guided", "display": {}}, ref="good")
    cases = [
        (_req(net, "unit", {"units": ["conv1_9"], "rule": "guided", "display": {}}, ref="r"),
         "conv1_9: conv1 has 4 channels"),
        (_req(net, "featuremaps", {"layer": "fc3", "max": 4}, ref="r"), "fully connected"),
        (_req(net, "unit", {"units": ["conv1_0"], "rule": "guided", "display": {}},
              images=("bad.png",), ref="r"), "not a readable image"),
        (_req(net, "hierarchy", {"root": "conv1_0", "depth": 1, "children": 2,
                                 "path": ["conv2_1"], "rule": "guided", "display": {}}, ref="r"),
         "not below conv1"),
    ]
    for bad, message in cases:
        with pytest.raises(api.RequestError) as err:
            api.compute([good, bad], device="cpu", on_result=lambda i, r: seen.append(i))
        assert err.value.ref == "r" and message in err.value.message
    assert seen == []


def test_torch_free_paths_match_the_default_model():
    """api keys the default model and its sample without importing default_model (torch)."""
    from generator.vis.default import model as default_model

    assert api.DEFAULT_WEIGHTS == default_model.WEIGHTS_PATH
    assert api.SAMPLE_PATH == default_model.SAMPLE_PATH


def test_imagenet_hub_file_names_match_torchvision_and_join_the_identity(tmp_path, monkeypatch):
    import torchvision
    for name, filename in api.IMAGENET_FILES.items():
        enum = torchvision.models.get_model_weights(name).IMAGENET1K_V1
        assert enum.url.rsplit("/", 1)[-1] == filename
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert api.model_spec("alexnet", "imagenet").files == ()
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / api.IMAGENET_FILES["alexnet"]).write_bytes(b"weights")
    assert api.model_spec("alexnet", "imagenet").files == (hub / api.IMAGENET_FILES["alexnet"],)
