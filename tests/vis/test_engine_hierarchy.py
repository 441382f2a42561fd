"""Unit images, edges, local paths and hierarchies == an independent computation."""
from pathlib import Path

import pytest
import torch

import vis_reference as ref
import vis_tiny_models as tiny
from generator.vis.core.backprop import Backprop
from generator.vis.errors import EngineError
from generator.vis.core.hierarchy import edge_weights, hierarchy, keep_channel
from generator.vis.core.models import load_model

TINY = f"{Path(__file__).parent / 'vis_tiny_models.py'}"
RULES = ["guided", "deconv", "gradient"]
NETS = {  # name -> (layer map, root layer counted from the end: a conv and an fc root)
    "chain": (None, 4),
    "chain_identity_pool": (None, 2),
    "chain_batchnorm": (None, 4),
    "functional": (tiny.FUNCTIONAL_LAYERS, 3),
    "residual": (tiny.RESIDUAL_LAYERS, 2),
}


def methods(model):
    from generator.vis.core.chain import compile_chain
    return ["autograd"] + (["chain"] if compile_chain(model) is not None else [])


def strongest(bp, layer):
    """The unit of `layer` with the largest activation (so the tree is not all zeros)."""
    h = bp.acts[layer.name].reshape(layer.size, -1).amax(1)
    return bp.model.unit_name(layer, int(torch.argmax(h)))


def assert_tree_matches(tree, expected, rtol=1e-4):
    got = {n.path_name: n for n in tree.walk()}
    assert sorted(got) == sorted(expected)
    for path, (weight, image) in expected.items():
        node = got[path]
        scale = float(image.abs().max())
        assert scale > 0 or path.count("-") > 0
        torch.testing.assert_close(node.image, image, rtol=rtol, atol=rtol * scale + 1e-12)
        if weight is None:
            assert node.weight is None
        else:
            assert node.weight == pytest.approx(weight, rel=rtol, abs=1e-12)
    for node in tree.walk():
        ws = [c.weight for c in node.children]
        assert ws == sorted(ws, reverse=True)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("net", NETS)
def test_tiny_nets_match_the_reference(net, rule):
    layers, from_end = NETS[net]
    m = load_model(f"{TINY}:{net}", layers=layers, device="cpu")
    torch.manual_seed(1)
    x = torch.randn(m.input_shape)
    root = None
    for method in methods(m):
        bp = Backprop(m, x, rule, method=method)
        root = root or strongest(bp, m.layers[-from_end])
        tree = hierarchy(bp, root, depth=3, children=3)
        assert_tree_matches(tree, ref.tree(m, x, rule, root, 3, 3))


# ---------------------------------------------------------------- worked by hand

def hand(rule):
    m = load_model(f"{TINY}:hand_net", device="cpu")
    x = torch.tensor([[[1.0, -2.0]]])
    return m, hierarchy(Backprop(m, x, rule, method="autograd"), "conv2_0", depth=1, children=2)


def test_hand_net_guided():
    # conv1 = [(1,0), (0,2)], conv2 = (2, 6): root conv2_0 at column 1, seed 6.
    # G at conv1 before the rule: (2*6, 3*6) at column 1 -> guided: ch0 masked (x=-2 < 0), ch1 18.
    # w0 = |mean((1,0)*(0,0))| = 0, w1 = |mean((0,2)*(0,18))| = 18.
    # Root image = 1*G0 - 1*G1 = (0, -18); conv1_1 keeps everything: (0, -18); conv1_0: 0.
    m, t = hand("guided")
    assert (t.unit, t.activation, t.weight) == ("conv2_0", 6.0, None)
    assert [(c.unit, c.weight, c.activation) for c in t.children] == [("conv1_1", 18.0, 2.0), ("conv1_0", 0.0, 1.0)]
    assert t.image.tolist() == [[[0.0, -18.0]]]
    assert t.children[0].image.tolist() == [[[0.0, -18.0]]]
    assert t.children[1].image.abs().sum() == 0


def test_hand_net_deconv():
    # deconv ignores the mask: G at conv1 = (12, 18) at column 1; w0 = 0, w1 = 18.
    # Root image = 12 - 18 = -6. conv1_1: G1 scaled by 30/18 -> 30 -> image -30.
    # conv1_0: G0 scaled by 30/12 -> 30 -> image +30.
    m, t = hand("deconv")
    assert [(c.unit, c.weight) for c in t.children] == [("conv1_1", 18.0), ("conv1_0", 0.0)]
    assert t.image.tolist() == [[[0.0, -6.0]]]
    assert t.children[0].image.tolist() == [[[0.0, -30.0]]]
    assert t.children[1].image.tolist() == [[[0.0, 30.0]]]


def test_edge_weights_and_keep_channel_by_hand():
    h = torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]]])
    g = torch.tensor([[[[0.0, 12.0]], [[-3.0, 18.0]]]])
    assert edge_weights(h, g).tolist() == [[0.0, 18.0]]
    kept = keep_channel(g.expand(2, -1, -1, -1), [0, 1])
    assert kept[0].tolist() == [[[0.0, 33.0]], [[0.0, 0.0]]]          # 33 / 12
    torch.testing.assert_close(kept[1], torch.tensor([[[0.0, 0.0]], [[-3.0 * 33 / 21, 18.0 * 33 / 21]]]))
    zero = keep_channel(torch.zeros(1, 2, 1, 2), [1])
    assert zero.abs().sum() == 0 and not zero.isnan().any()


# ---------------------------------------------------------------- AlexNet, random weights

@pytest.fixture(scope="module")
def alexnet():
    return tiny.alexnet_random()


@pytest.fixture(scope="module")
def image():
    torch.manual_seed(0)
    return torch.randn(3, 224, 224)


def test_alexnet_conv_root_matches_the_reference(alexnet, image):
    expected = None
    for method in methods(alexnet):
        bp = Backprop(alexnet, image, "guided", method=method)
        root = strongest(bp, alexnet.layer("conv5"))
        expected = expected or ref.tree(alexnet, image, "guided", root, 2, 2)
        assert_tree_matches(hierarchy(bp, root, depth=2, children=2), expected, rtol=2e-4)


def test_alexnet_fc_root_with_explicit_path(alexnet, image):
    bp = Backprop(alexnet, image, "deconv")
    root = strongest(bp, alexnet.layer("fc7"))
    conv = strongest(bp, alexnet.layer("conv5"))
    tree = hierarchy(bp, root, depth=2, children=2, path=[conv, "conv3_7"])
    assert tree.children[0].layer == "conv5"
    followed = [c for c in tree.children if c.children]
    assert [c.unit for c in followed] == [conv]
    assert "conv3_7" in [c.unit for c in followed[0].children]
    expected, _ = ref.walk(alexnet, image, "deconv", [root, conv, "conv3_7"])
    got = next(n for n in tree.walk() if n.unit == "conv3_7").image
    torch.testing.assert_close(got, expected, rtol=2e-4, atol=2e-4 * float(expected.abs().max()))


def test_batch_size_does_not_change_results(alexnet, image):
    layer = alexnet.layer("conv4")
    units = [(layer, c) for c in range(0, 256, 37)]
    one = Backprop(alexnet, image, "guided", batch_size=1).unit_images(units)
    many = Backprop(alexnet, image, "guided", batch_size=64).unit_images(units)
    three = Backprop(alexnet, image, "guided", batch_size=3).unit_images(units)
    assert one.abs().sum() > 0
    torch.testing.assert_close(many, one, rtol=1e-5, atol=1e-6 * float(one.abs().max()))
    torch.testing.assert_close(three, one, rtol=1e-5, atol=1e-6 * float(one.abs().max()))


def test_unit_images_match_the_reference_for_several_layers(alexnet, image):
    bp = Backprop(alexnet, image, "gradient")
    units = [(alexnet.layer("conv2"), 5), (alexnet.layer("fc8"), 3), (alexnet.layer("conv2"), 9)]
    images = bp.unit_images(units)
    for (layer, c), got in zip(units, images):
        expected, _ = ref.walk(alexnet, image, "gradient", [f"{layer.name}_{c}"])
        torch.testing.assert_close(got, expected, rtol=2e-4, atol=2e-4 * float(expected.abs().max()))


# ---------------------------------------------------------------- errors

def test_path_must_go_down(alexnet, image):
    bp = Backprop(alexnet, image)
    with pytest.raises(EngineError, match="path unit fc7_1: layer fc7 is not below fc6 "
                                          r"\(its parent fc6_3\); use a layer among conv1"):
        hierarchy(bp, "fc6_3", path=["fc7_1"])
    with pytest.raises(EngineError, match="conv5 has 256 channels"):
        hierarchy(bp, "fc6_3", path=["conv5_300"])


def test_backward_refuses_a_layer_above(alexnet, image):
    bp = Backprop(alexnet, image)
    layer = alexnet.layer("conv3")
    with pytest.raises(EngineError, match="layer fc6 is not below conv3"):
        bp.backward(bp.seeds(layer, [0]), layer, [alexnet.layer("fc6")])


def test_input_shape_is_checked(alexnet):
    with pytest.raises(EngineError, match=r"input has shape \(3, 227, 227\); alexnet takes \(3, 224, 224\)"):
        Backprop(alexnet, torch.zeros(3, 227, 227))


def test_unsupported_nonlinearity_below_the_unit():
    m = load_model(f"{TINY}:gelu_net", layers={"conv2": "3", "fc": "5"}, device="cpu")
    bp = Backprop(m, torch.randn(m.input_shape))
    with pytest.raises(EngineError, match="applies gelu below the visualized unit"):
        bp.unit_images([(m.layer("conv2"), 0)])


def test_tree_stops_at_the_lowest_layer():
    m = load_model(f"{TINY}:chain", device="cpu")
    torch.manual_seed(0)
    bp = Backprop(m, torch.randn(m.input_shape))
    tree = hierarchy(bp, "conv2_1", depth=4, children=2)
    assert [n.layer for n in tree.walk()] == ["conv2", "conv1", "conv1"]
