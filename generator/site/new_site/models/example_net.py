"""An example model file: featuretree calls `build()` and explains what it returns.

Use it in a post with `model: models/example_net.py:build` (add weights with `weights =`
in site.toml, see there), and see its layers with
`featuretree layers --model models/example_net.py:build`.

Layer names are derived in forward order: every ReLU (an nn.ReLU module or an F.relu /
torch.relu / Tensor.relu call) right after a Conv2d or Linear -- a BatchNorm between is
fine -- is `convN` / `fcN`, N counting the Conv2d and Linear layers; the last Linear is the
logits. Here: conv1, conv2, conv3, fc4 (logits).
"""
import torch.nn.functional as F
from torch import nn

# The input the network takes, (channels, height, width); an image is resized so its
# shorter side fits, then centre-cropped. Without it: (3, 224, 224).
INPUT_SHAPE = (3, 96, 96)
# Per-channel normalization applied after scaling pixels to [0, 1]. Without them: ImageNet's.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# The class names, one per logit. Without them: "0", "1", ...
LABELS = ["cat", "dog", "other"]
# Or write your own `def preprocess(image): ...` taking a PIL image, returning a (C, H, W) tensor.


class Block(nn.Module):
    """Conv, BatchNorm, ReLU (called as a function), max-pool. (Pool with the nn.MaxPool2d
    module rather than F.max_pool2d: receptive fields, and so patch grids, follow modules.)"""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn = nn.BatchNorm2d(cout)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        return self.pool(F.relu(self.bn(self.conv(x))))


class ExampleNet(nn.Module):
    def __init__(self, classes: int = len(LABELS)):
        super().__init__()
        self.block1 = Block(3, 16)
        self.block2 = Block(16, 32)
        self.block3 = Block(32, 64)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(64, classes)

    def forward(self, x):
        x = self.block3(self.block2(self.block1(x)))
        return self.head(self.pool(x).flatten(1))


def build() -> nn.Module:
    """The network, untrained here: load trained weights with `weights =` in site.toml."""
    return ExampleNet()
