"""The embedded default model: an AlexNet-shaped network trained on Fashion-MNIST.

ImageNet weights cannot be downloaded on an offline machine, so the project trains and
ships its own small network (`build.py train-default`). It keeps AlexNet's shape -- five
conv layers, pooling after conv1, conv2 and conv5, three fully connected layers -- so the
Caffe unit names of the seeds (`conv1`..`conv5`, `fc6`..`fc8`) mean the same thing here.

The 28x28 images are upsampled to 64x64 so that conv1 can use an AlexNet-like strided
kernel and every conv layer still has a spatial map worth looking at:
conv1 32x32, conv2 16x16, conv3..conv5 8x8. There is no BatchNorm: every backward rule
(plain gradient, deconv, guided) stays exact through ReLU, max-pool, conv and linear layers.

Importing this module loads neither the dataset nor the weights.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from generator.vis.errors import EngineError

CLASS_NAMES: list[str] = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
INPUT_SIZE: int = 64
# Mean and standard deviation of the 60,000 training images' pixels, scaled to [0, 1].
MEAN: float = 0.2860
STD: float = 0.3530

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
WEIGHTS_PATH: Path = ASSETS_DIR / "fashion_alexnet.safetensors"
CARD_PATH: Path = ASSETS_DIR / "model_card.json"
SAMPLE_PATH: Path = ASSETS_DIR / "fashion_sample.npz"

# Channels of conv1..conv5 and width of fc6/fc7: AlexNet's 96-256-384-384-256 / 4096,
# scaled down so that training fits in minutes on two CPU cores.
CONV_WIDTHS = (32, 64, 96, 96, 64)
FC_WIDTH = 512


class FashionAlexNet(nn.Module):
    """`features` then `classifier`, both plain `nn.Sequential`s the registry can walk."""

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential):
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build() -> nn.Module:
    """The untrained architecture (PyTorch's default initialization)."""
    c1, c2, c3, c4, c5 = CONV_WIDTHS
    features = nn.Sequential(
        nn.Conv2d(1, c1, kernel_size=6, stride=2, padding=2),  # 64 -> 32; 6 = 3 x stride keeps coverage even
        nn.ReLU(),
        nn.MaxPool2d(2),                                        # 32 -> 16
        nn.Conv2d(c1, c2, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),                                        # 16 -> 8
        nn.Conv2d(c2, c3, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c3, c4, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c4, c5, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),                                        # 8 -> 4
    )
    classifier = nn.Sequential(
        nn.Flatten(),
        nn.Linear(c5 * 4 * 4, FC_WIDTH),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(FC_WIDTH, FC_WIDTH),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(FC_WIDTH, len(CLASS_NAMES)),
    )
    return FashionAlexNet(features, classifier)


def load(device=None, path: Path | None = None) -> nn.Module:
    """`build()` with the shipped (or given) safetensors weights, in eval mode.

    A missing, unreadable or mismatched file raises `EngineError` naming the file.
    """
    path = Path(path) if path is not None else WEIGHTS_PATH
    model = build()
    model.load_state_dict(read_weights(path, model.state_dict()))
    model.eval()
    return model.to(device) if device is not None else model


def read_weights(path: Path, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float32 tensors of `path`, checked name by name and shape by shape against `expected`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise EngineError(f"{path}: checkpoint not found; `python build.py train-default` writes it")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise EngineError(f"{path}: not a readable safetensors checkpoint ({exc})") from None
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else ""))
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:3])}" + (" ..." if len(unexpected) > 3 else ""))
        raise EngineError(f"{path}: tensors do not match the default architecture: {'; '.join(parts)}")
    for name, want in expected.items():
        got = tensors[name]
        if tuple(got.shape) != tuple(want.shape):
            raise EngineError(
                f"{path}: tensor {name} has shape {tuple(got.shape)}, the default architecture "
                f"needs {tuple(want.shape)}")
        if not got.is_floating_point():
            raise EngineError(f"{path}: tensor {name} has dtype {got.dtype}, expected a float dtype")
    return {name: tensors[name].float() for name in expected}


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, H, W), white on black, -> normalized network input (N, 1, S, S).

    Training, evaluation and `preprocess` all go through here, so a PNG of a test image
    and the dataset array give the same input tensor.
    """
    x = images.to(torch.float32).div(255.0).unsqueeze(1)
    if tuple(x.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                          align_corners=False, antialias=True)
    return (x - MEAN) / STD


def preprocess(image) -> torch.Tensor:
    """Any PIL image -> grayscale, center-cropped to a square, resized, normalized: (1, S, S).

    The network was trained on light objects on a dark background, as Fashion-MNIST has them.
    """
    gray = image.convert("L")
    w, h = gray.size
    if w != h:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        gray = gray.crop((left, top, left + side, top + side))
    pixels = torch.from_numpy(np.array(gray, dtype=np.uint8))
    return to_input(pixels.unsqueeze(0))[0]


def load_sample() -> tuple[np.ndarray, np.ndarray]:
    """The shipped test-set sample: images uint8 (N, 28, 28) and labels int64 (N,)."""
    from generator.vis.default.fashion import read_sample

    images, labels, _ = read_sample(SAMPLE_PATH)
    return images, labels
