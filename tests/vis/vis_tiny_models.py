"""Small convnets for the engine's tests, loadable as `tests/vis/vis_tiny_models.py:NAME`.

Each covers a shape the engine must handle: a torchvision-like chain with inplace ReLUs
and a functional flatten, ReLUs called functionally, a residual block, BatchNorm, a
nonlinearity without a rule, and a net small enough to work out by hand.
"""
import torch
import torch.nn.functional as F
from torch import nn

INPUT_SHAPE = (3, 40, 40)


class Chain(nn.Module):
    """AlexNet's shape in miniature (features, avgpool, torch.flatten, classifier)."""

    def __init__(self, pool=(2, 2), batchnorm=False):
        super().__init__()
        bn = [nn.BatchNorm2d(8)] if batchnorm else []
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 5, stride=2, padding=2), nn.ReLU(inplace=True),   # 20x20
            nn.MaxPool2d(3, 2),                                                # 9x9
            nn.Conv2d(6, 8, 3, padding=1), *bn, nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, padding=1, dilation=1), nn.ReLU(inplace=True),
            nn.Conv2d(8, 7, 3, padding=2, dilation=2), nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),                                   # 5x5
        )
        self.avgpool = nn.AdaptiveAvgPool2d(pool)
        self.classifier = nn.Sequential(
            nn.Dropout(), nn.Linear(7 * pool[0] * pool[1], 16), nn.ReLU(inplace=True),
            nn.Dropout(), nn.Linear(16, 12), nn.ReLU(inplace=True), nn.Linear(12, 5))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def chain():
    return Chain()


def chain_identity_pool():
    return Chain(pool=(5, 5))


def chain_batchnorm():
    net = Chain(batchnorm=True)
    with torch.no_grad():
        bn = net.features[4]
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    return net


class Functional(nn.Module):
    """ReLUs called as F.relu, torch.relu and Tensor.relu_; nn.Identity taps name them."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 5 * 5, 10)
        self.out = nn.Linear(10, 4)
        self.tap1, self.tap2, self.tap3, self.tap4 = (nn.Identity() for _ in range(4))

    def forward(self, x):
        x = self.tap1(F.relu(self.conv1(x)))
        x = F.max_pool2d(x, 2)
        x = self.tap2(torch.relu(self.conv2(x)))
        x = self.tap3(self.conv3(x).relu_())
        x = F.max_pool2d(x, 2)
        x = self.tap4(F.relu(self.fc(x.flatten(1)), inplace=True))
        return self.out(x)


FUNCTIONAL_LAYERS = {"c1": "tap1", "c2": "tap2", "c3": "tap3", "f4": "tap4", "logits": "out"}


def functional():
    return Functional()


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)  # called twice, as in torchvision's BasicBlock

    def forward(self, x):
        out = self.relu(self.conv1(x))
        out = self.conv2(out)
        out += x
        return self.relu(out)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.block1 = Block(6)
        self.pool = nn.MaxPool2d(2)
        self.block2 = Block(6)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = self.block2(self.pool(self.block1(self.stem(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


RESIDUAL_LAYERS = {"stem": "stem", "block1": "block1", "block2": "block2", "fc": "fc"}


def residual():
    return Residual()


def gelu_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.GELU(), nn.Conv2d(4, 4, 3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 36 * 36, 3))


def reused_relu():
    relu = nn.ReLU()
    return nn.Sequential(nn.Conv2d(3, 4, 3), relu, nn.Conv2d(4, 4, 3), relu)


def not_a_module():
    return 42


def hand_net():
    """1 x 1 x 2 input; conv1 = relu(w1 * x) with w1 = (1, -1); conv2 = relu(2 a + 3 b).

    For x = (1, -2): conv1 = [(1, 0), (0, 2)], conv2 = (2, 6).
    """
    net = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.ReLU(),
                        nn.Conv2d(2, 1, 1, bias=False), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1))
        net[2].weight.copy_(torch.tensor([2.0, 3.0]).reshape(1, 2, 1, 1))
    net.input_shape = (1, 1, 2)
    return net


_ALEXNET = []


def alexnet_random():
    """torchvision AlexNet with seeded random weights on CPU, loaded once per test run."""
    if not _ALEXNET:
        import warnings
        from generator.vis.errors import EngineWarning
        from generator.vis.core.models import load_model
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EngineWarning)
            _ALEXNET.append(load_model("alexnet", device="cpu"))
    return _ALEXNET[0]
