"""Receptive fields from the architecture == support of an autograd gradient."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from generator.vis.errors import EngineError
from generator.vis.data.receptive import receptive_fields


def positive(module):
    """All-positive weights and biases: with a positive input nothing is cut off by a ReLU
    and no contributions cancel, so the gradient's support is the full receptive field."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(0.1, 1.0)
    return module.double().eval()


def chain_net():
    return positive(nn.Sequential(
        nn.Conv2d(3, 4, 5, padding=2), nn.ReLU(),                    # 1
        nn.AvgPool2d(2),
        nn.Conv2d(4, 5, 3, stride=2, padding=1), nn.ReLU(),          # 4
        nn.Conv2d(5, 5, (3, 2), padding=(2, 0), dilation=2), nn.ReLU(),  # 6
        nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.Conv2d(5, 3, 1, stride=1), nn.Dropout(), nn.ReLU(),         # 10
        nn.Flatten(), nn.Linear(3 * 4 * 4, 6), nn.ReLU(),            # 13
        nn.Linear(6, 2),                                              # 14
    ))


class Block(nn.Module):
    """A residual block with a strided downsample branch (ResNet-style)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.down = nn.Conv2d(cin, cout, 1, stride=stride)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.conv2(F.relu(self.conv1(x)))
        out += self.down(x)
        return self.relu(out)


class ResNetLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 3, 3, stride=2)
        self.pool = nn.MaxPool2d(1)
        self.block = Block(3, 4, 2)

    def forward(self, x):
        return self.block(self.pool(F.relu(self.stem(x))))


class Functional(nn.Module):
    """Pooling, padding, flattening and a convolution written as calls in forward (as in
    PyTorch's own tutorial net), plus a channel concat: no module to hook for any of them."""

    def __init__(self, pool=F.avg_pool2d):   # as max_pool2d's: input, kernel_size
        super().__init__()
        self.pool = pool          # F.max_pool2d routes the gradient: the box only holds it
        self.conv1 = nn.Conv2d(2, 3, 5)
        self.bn1 = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")
        self.w3 = nn.Parameter(torch.rand(2, 8, 3, 3))
        self.fc = nn.Linear(2 * 1 * 5, 2)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))), 2)
        y = self.conv2(F.pad(x, (1, 0, 1, 1)))
        x = torch.cat([y, F.avg_pool2d(F.pad(y, (1, 1, 1, 1)), 3, stride=1)], dim=1).relu()
        x = F.conv2d(x, self.w3, stride=2)
        adaptive = F.adaptive_avg_pool2d if self.pool is F.avg_pool2d else F.adaptive_max_pool2d
        x = adaptive(x, (1, 5))    # 7x5 -> 1x5: a 7x1 window
        return self.fc(torch.flatten(x, 1))


class OffCentre(nn.Module):
    """A residual branch whose box sticks out of the main path's on one side."""

    def __init__(self):
        super().__init__()
        self.main = nn.Conv2d(1, 2, 3, padding=1)
        self.side = nn.Conv2d(1, 2, (1, 5))
        self.out = nn.Identity()

    def forward(self, x):
        return self.out(self.main(x) + self.side(F.pad(x, (4, 0, 0, 0))))


def support_box(module, target, shape, r, s, channel=0):
    """Bounding box (top, left, bottom, right) of the input pixels whose gradient is
    nonzero when only output (channel, r, s) of `target` is seeded."""
    captured = {}
    handle = dict(module.named_modules())[target].register_forward_hook(
        lambda m, a, out: captured.__setitem__("out", out))
    x = (torch.rand(1, *shape, dtype=torch.float64) + 0.5).requires_grad_()
    module(x)
    handle.remove()
    out = captured["out"]
    seed = torch.zeros_like(out)
    if out.dim() == 4:
        seed[0, channel, r, s] = 1.0
    else:
        seed[0, channel] = 1.0
    (grad,) = torch.autograd.grad(out, x, seed)
    nz = grad.abs().sum(dim=(0, 1)).nonzero()
    return (nz[:, 0].min().item(), nz[:, 1].min().item(),
            nz[:, 0].max().item() + 1, nz[:, 1].max().item() + 1)


def locations(hw):
    h, w = hw
    corners = {(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (h // 2, w // 2), (1 % h, (w - 1) // 3)}
    return sorted(corners)


@pytest.mark.parametrize("net,shape,paths", [
    (chain_net, (3, 29, 31), ["1", "4", "6", "10", "13", "14"]),
    (ResNetLike, (2, 23, 20), ["stem", "block.conv1", "block", "block.relu"]),
    (Functional, (2, 30, 26), ["conv1", "bn1", "conv2", "fc"]),
])
def test_boxes_equal_gradient_support_in_every_layer(net, shape, paths):
    module = positive(net())
    fields = receptive_fields(module, shape, paths)
    for path, field in fields.items():
        for r, s in locations(field.output_hw):
            b = field.clipped(r, s)
            assert support_box(module, path, shape, r, s) == (b.top, b.left, b.bottom, b.right), (path, r, s)


def test_border_boxes_keep_their_size_and_reach_outside():
    fields = receptive_fields(chain_net(), (3, 29, 31), ["4", "6"])
    f = fields["6"]
    sizes = {(f.box(r, s).height, f.box(r, s).width) for r, s in locations(f.output_hw)}
    assert sizes == {f.size}
    assert f.box(0, 0).top < 0 and f.box(0, 0).left < 0   # padded, not shifted
    # known by hand: conv5 p2 -> size 5, start -2; avgpool 2 -> size 6, jump 2;
    # conv3 s2 p1 -> size 6 + 2*2 = 10, start -2 - 1*2 = -4, jump 4
    assert (fields["4"].size, fields["4"].jump, fields["4"].start) == ((10, 10), (4, 4), (-4, -4))


def test_max_pooling_field_contains_the_routed_gradient():
    module = positive(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(2, 2, 3), nn.ReLU()))
    field = receptive_fields(module, (1, 21, 21), ["4"])["4"]
    assert field.size == (3 + 2 + 2 * 2 * 1 + 0, 3 + 2 + 2 * 2) or field.size == (11, 11)
    for r, s in locations(field.output_hw):
        t, l, b, rr = support_box(module, "4", (1, 21, 21), r, s)
        box = field.clipped(r, s)
        assert box.top <= t and box.left <= l and b <= box.bottom and rr <= box.right


def test_unknown_module_is_one_clear_error():
    module = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Upsample(scale_factor=2), nn.Conv2d(2, 2, 3))
    with pytest.raises(EngineError, match=r"through 1 \(Upsample\)"):
        receptive_fields(module, (1, 10, 10), ["2"])
    with pytest.raises(EngineError, match="no module 'nope'"):
        receptive_fields(module, (1, 10, 10), ["nope"])


def test_modules_after_the_last_wanted_layer_are_not_needed():
    module = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Upsample(scale_factor=2))
    field = receptive_fields(module, (1, 10, 10), ["1"])["1"]
    assert field.size == (3, 3) and field.output_hw == (8, 8)


def test_functional_calls_count_like_modules():
    """conv2 sees the map after F.max_pool2d and F.pad (by hand: conv5 -> 5, pool 2 -> 6
    with jump 2, pad top 1 / left 1 and conv2's reflect padding 1 move the start,
    conv3 -> 6 + 2 * 2 = 10)."""
    module = positive(Functional(F.max_pool2d))
    fields = receptive_fields(module, (2, 30, 26), ["conv2", "fc"])
    f = fields["conv2"]
    assert f.jump == (2, 2) and f.size == (10, 10)
    assert f.start == (0 - 1 * 2 - 1 * 2, 0 - 1 * 2 - 1 * 2)
    assert f.output_hw == ((30 - 4) // 2 + 2, (26 - 4) // 2 + 1)
    assert fields["fc"].is_global
    for r, s in locations(f.output_hw):
        t, l, b, rr = support_box(module, "conv2", (2, 30, 26), r, s)
        box = f.clipped(r, s)
        assert box.top <= t and box.left <= l and b <= box.bottom and rr <= box.right


def test_a_branch_outside_the_main_box_widens_it():
    module = positive(OffCentre())
    f = receptive_fields(module, (1, 9, 11), ["out"])["out"]
    assert f.windows is None and f.size == (3, 6) and f.start == (-1, -4)
    for r, s in locations(f.output_hw):
        b = f.clipped(r, s)
        t, l, bb, rr = support_box(module, "out", (1, 9, 11), r, s)
        assert (b.top, b.bottom) == (t, bb) and b.left <= l and rr <= b.right


def test_a_functional_call_that_resizes_the_map_is_named():
    class Up(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)
            self.head = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return self.head(F.interpolate(self.conv(x), scale_factor=2))

    with pytest.raises(EngineError, match=r"through Up.forward: interpolate changes the map "
                                          r"from \(8, 8\) to \(16, 16\)"):
        receptive_fields(Up(), (1, 10, 10), ["head"])


TUTORIAL_NET = '''
import torch
import torch.nn as nn
import torch.nn.functional as F

INPUT_SHAPE = (3, 32, 32)
MEAN, STD, LABELS = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), [str(i) for i in range(10)]


class Net(nn.Module):
    """PyTorch's tutorial CIFAR net: pooling, ReLUs and flattening are calls in forward."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def build():
    return Net().eval()
'''


def test_a_model_file_with_functional_pooling_has_fields_for_every_layer(tmp_path):
    """Before, the conv2 after `F.max_pool2d` could not be followed, so patch grids, crops
    and the atlas's patches were refused for the most common way of writing a CNN."""
    from generator.vis.core.models import load_model
    from generator.vis.data.receptive import layer_fields

    (tmp_path / "net.py").write_text(TUTORIAL_NET)
    model = load_model(f"{tmp_path / 'net.py'}:build", device="cpu")
    assert [l.name for l in model.layers] == ["conv1", "conv2", "fc3", "fc4"]
    fields = layer_fields(model)
    # conv5 -> 5; pool 2 -> 6, jump 2; conv5 -> 6 + 4 * 2 = 14
    assert (fields["conv1"].size, fields["conv1"].jump, fields["conv1"].output_hw) == ((5, 5), (1, 1), (28, 28))
    assert (fields["conv2"].size, fields["conv2"].jump, fields["conv2"].output_hw) == ((14, 14), (2, 2), (10, 10))
    assert fields["fc3"].is_global and fields["fc4"].is_global
