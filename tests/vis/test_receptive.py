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
