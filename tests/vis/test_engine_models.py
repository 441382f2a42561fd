"""The model registry: names, layer maps, weights, errors."""
import hashlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import vis_tiny_models as tiny
from generator.vis.errors import EngineError, EngineWarning
from generator.vis.core.models import Resize, load_model, model_names

HERE = Path(__file__).parent
TINY = f"{HERE / 'vis_tiny_models.py'}"


def tiny_model(name, **kw):
    return load_model(f"{TINY}:{name}", device="cpu", **kw)


@pytest.fixture(scope="module")
def alexnet():
    return tiny.alexnet_random()


def test_names():
    assert model_names() == ["alexnet", "vgg16", "resnet18", "default"]


def test_alexnet_layers_are_the_caffe_names(alexnet):
    got = [(l.name, l.path, l.kind, l.size, l.relu) for l in alexnet.layers]
    assert got == [
        ("conv1", "features.1", "conv", 64, True), ("conv2", "features.4", "conv", 192, True),
        ("conv3", "features.7", "conv", 384, True), ("conv4", "features.9", "conv", 256, True),
        ("conv5", "features.11", "conv", 256, True), ("fc6", "classifier.2", "fc", 4096, True),
        ("fc7", "classifier.5", "fc", 4096, True), ("fc8", "classifier.6", "fc", 1000, False)]
    assert alexnet.input_shape == (3, 224, 224)
    assert alexnet.labels[:2] == ["tench", "goldfish"] and len(alexnet.labels) == 1000
    assert alexnet.layer("conv5").shape == (256, 13, 13)


def test_random_weights_warn_and_are_seeded():
    with pytest.warns(EngineWarning, match="random weights"):
        a = load_model("resnet18", device="cpu")
    with pytest.warns(EngineWarning):
        b = load_model("resnet18", device="cpu")
    assert a.weights_digest == b.weights_digest
    assert [l.name for l in a.layers] == ["relu", "layer1.0", "layer1.1", "layer2.0", "layer2.1",
                                          "layer3.0", "layer3.1", "layer4.0", "layer4.1", "fc"]
    assert a.layer("layer4.1").shape == (512, 7, 7) and not a.layer("fc").relu


@pytest.mark.parametrize("ref, expected", [
    ("fc6_1068", ("fc6", 1068)), ("conv5:243", ("conv5", 243)), ("conv5_0", ("conv5", 0))])
def test_parse_unit(alexnet, ref, expected):
    layer, index = alexnet.parse_unit(ref)
    assert (layer.name, index) == expected


@pytest.mark.parametrize("ref, message", [
    ("fc6_9999", "fc6_9999: fc6 has 4096 units (0..4095)"),
    ("conv5_256", "conv5_256: conv5 has 256 channels (0..255)"),
    ("conv9_1", "alexnet has no layer 'conv9'; its layers are conv1, conv2, conv3, conv4, conv5, fc6, fc7, fc8"),
    ("fc6", "'fc6' is not a unit: write LAYER_INDEX or LAYER:INDEX"),
    ("fc6_x", "'fc6_x' is not a unit"),
])
def test_parse_unit_errors(alexnet, ref, message):
    with pytest.raises(EngineError) as e:
        alexnet.parse_unit(ref)
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)


def test_automatic_layer_names_for_a_chain():
    m = tiny_model("chain")
    assert [(l.name, l.path, l.relu) for l in m.layers] == [
        ("conv1", "features.1", True), ("conv2", "features.4", True),
        ("conv3", "features.6", True), ("conv4", "features.8", True),
        ("fc5", "classifier.2", True), ("fc6", "classifier.5", True),
        ("fc7", "classifier.6", False)]
    assert m.labels == ["0", "1", "2", "3", "4"]
    assert m.input_shape == (3, 40, 40)


def test_automatic_names_allow_batchnorm_between_conv_and_relu():
    m = tiny_model("chain_batchnorm")
    assert m.layer("conv2").path == "features.5"


def test_given_layer_map_and_relu_detection():
    m = tiny_model("functional", layers=tiny.FUNCTIONAL_LAYERS)
    assert [l.name for l in m.layers] == ["c1", "c2", "c3", "f4", "logits"]
    assert [l.relu for l in m.layers] == [True, True, True, True, False]
    assert m.layer("c2").shape == (8, 10, 10)


@pytest.mark.parametrize("name, layers, message", [
    ("reused_relu", None, "runs 2 times per forward"),
    ("chain", {"x": "features.99"}, "layer x names module 'features.99', which does not exist"),
    ("residual", {"r": "block1.relu"}, "runs 2 times per forward"),
    ("not_a_module", None, "returned int, not an nn.Module"),
    ("missing", None, "has no factory 'missing'"),
])
def test_model_errors(name, layers, message):
    with pytest.raises(EngineError, match=message):
        tiny_model(name, layers=layers)


def test_unknown_model_lists_the_names():
    with pytest.raises(EngineError, match="unknown model 'lenet': use one of alexnet, vgg16, resnet18, default"):
        load_model("lenet")


def test_model_file_not_found(tmp_path):
    with pytest.raises(EngineError, match="not found"):
        load_model(f"{tmp_path}/nope.py:f")


def test_weights_roundtrip_safetensors_and_torch_save(tmp_path):
    source = tiny_model("chain")
    torch.manual_seed(3)
    state = {k: torch.randn_like(v) for k, v in source.module.state_dict().items()}
    st, pt = tmp_path / "w.safetensors", tmp_path / "w.pt"
    save_file(state, str(st))
    torch.save(state, pt)
    for path in (st, pt):
        m = tiny_model("chain", weights=str(path))
        for k, v in m.module.state_dict().items():
            assert torch.equal(v, state[k])
        assert m.weights_digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_weights_that_do_not_fit(tmp_path):
    state = tiny_model("chain").module.state_dict()
    wrong = dict(state)
    wrong["features.0.weight"] = torch.zeros(6, 3, 3, 3)
    torch.save(wrong, tmp_path / "shape.pt")
    with pytest.raises(EngineError, match=r"shape.pt does not fit .*features.0.weight has shape "
                                          r"\(6, 3, 3, 3\), the model needs \(6, 3, 5, 5\)"):
        tiny_model("chain", weights=str(tmp_path / "shape.pt"))
    missing = {k: v for k, v in state.items() if k != "classifier.6.bias"}
    torch.save(missing, tmp_path / "missing.pt")
    with pytest.raises(EngineError, match="missing tensor classifier.6.bias"):
        tiny_model("chain", weights=str(tmp_path / "missing.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(EngineError, match="junk.pt: not a state_dict saved with torch.save"):
        tiny_model("chain", weights=str(tmp_path / "junk.pt"))
    (tmp_path / "junk.safetensors").write_bytes(b"nope")
    with pytest.raises(EngineError, match="not a readable safetensors file"):
        tiny_model("chain", weights=str(tmp_path / "junk.safetensors"))
    with pytest.raises(EngineError, match="weights file .*absent.pt not found"):
        tiny_model("chain", weights=str(tmp_path / "absent.pt"))


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"w": object()}, tmp_path / "evil.pt")
    with pytest.raises(EngineError, match="not a state_dict saved with torch.save"):
        tiny_model("chain", weights=str(tmp_path / "evil.pt"))


def test_imagenet_download_failure_says_how_to_provide_the_file(monkeypatch, tmp_path):
    from torchvision.models._api import WeightsEnum

    def offline(self, *a, **k):
        raise OSError("network unreachable")
    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(EngineError) as e:
        load_model("alexnet", weights="imagenet", device="cpu")
    msg = str(e.value)
    assert "could not be downloaded" in msg and "alexnet-owt-7be5be79.pth" in msg
    assert str(tmp_path / "checkpoints") in msg and "--weights PATH" in msg


def test_default_model_without_its_module_or_file_is_one_line():
    try:
        m = load_model("default", device="cpu")
    except EngineError as e:  # weights not trained yet in this checkout
        assert "\n" not in str(e)
        return
    assert [l.name for l in m.layers] == ["conv1", "conv2", "conv3", "conv4", "conv5",
                                          "fc6", "fc7", "fc8"]
    assert m.input_shape[0] == 1


def test_resize_preprocess_shapes():
    from PIL import Image
    pre = Resize((3, 32, 48), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    x = pre(Image.new("RGB", (100, 50), (255, 0, 128)))
    assert x.shape == (3, 32, 48)
    assert torch.allclose(x[:, 0, 0], torch.tensor([2.0, -2.0, (128 / 255 - 0.5) / 0.25]), atol=1e-5)


def test_predictions_sum_and_order():
    m = tiny_model("chain")
    torch.manual_seed(0)
    x = torch.randn(m.input_shape)
    from generator.vis.core.probes import top_predictions
    logits = m.module(x[None])[0]
    preds = top_predictions(logits.detach(), m.labels, k=5)
    assert [p["index"] for p in preds] == torch.argsort(logits, descending=True).tolist()
    assert abs(sum(p["prob"] for p in preds) - 1) < 1e-9


def test_vgg16_layer_names():
    import torchvision
    from generator.vis.core.models import vgg_layers
    with torch.device("meta"):  # the architecture only; no weights are materialized
        net = torchvision.models.vgg16()
    names = vgg_layers(net)
    assert list(names) == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2",
                           "conv3_3", "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2",
                           "conv5_3", "fc6", "fc7", "fc8"]
    assert names["conv1_1"] == "features.1" and names["conv5_3"] == "features.29"
    for name, path in names.items():
        module = net.get_submodule(path)
        assert isinstance(module, torch.nn.ReLU if name != "fc8" else torch.nn.Linear)


def _hub_file(tmp_path, monkeypatch, payload):
    """Put `payload` where torchvision's AlexNet ImageNet weights are cached."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    path = tmp_path / "checkpoints" / "alexnet-owt-7be5be79.pth"
    torch.save(payload, path)
    return path


def test_imagenet_weights_load_from_the_hub_cache(monkeypatch, tmp_path):
    import torchvision
    torch.manual_seed(3)
    state = torchvision.models.alexnet().state_dict()
    _hub_file(tmp_path, monkeypatch, state)
    m = load_model("alexnet", weights="imagenet", device="cpu")
    got = m.module.state_dict()
    assert all(torch.equal(got[k], v) for k, v in state.items())
    assert m.labels[281] == "tabby"


class _Payload:
    """Unpickling this would run code (create a file): the hub cache must be read with
    weights_only."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_imagenet_hub_file_is_never_unpickled(monkeypatch, tmp_path):
    marker = tmp_path / "unpickled"
    path = _hub_file(tmp_path, monkeypatch, {"features.0.weight": _Payload(marker)})
    with pytest.raises(EngineError) as e:
        load_model("alexnet", weights="imagenet", device="cpu")
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()
