"""Reading inputs: an image file (through the model's preprocessing) or a `.npy` array
that already is the preprocessed (C, H, W) input tensor."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from generator.vis.errors import EngineError

# Refuse images larger than this many pixels before decoding them (decompression bombs).
MAX_PIXELS = 40_000_000


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS):
    """Open an image file as an RGB or L PIL image; EngineError if it is not one."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise EngineError(f"image {path} not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            w, h = image.size
            if w * h > max_pixels:
                raise EngineError(f"{path}: {w}x{h} pixels is more than the limit of "
                                  f"{max_pixels} pixels")
            image.load()
    except EngineError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning, OSError, ValueError) as exc:
        raise EngineError(f"{path}: not a readable image ({type(exc).__name__}); use a "
                          f"PNG/JPEG/... file or a .npy array (C, H, W)") from None
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        if image.mode == "RGBA":  # flatten transparency onto white
            background = Image.new("RGB", image.size, (255, 255, 255))
            background.paste(image, mask=image.getchannel("A"))
            image = background
    return image


def load_array(path: str | Path, input_shape: tuple[int, ...]) -> torch.Tensor:
    """A `.npy` file holding the preprocessed input (C, H, W), checked against the model."""
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"array {path} not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise EngineError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise EngineError(f"{path}: expected a numeric array, got dtype {arr.dtype}")
    if tuple(arr.shape) != tuple(input_shape):
        raise EngineError(f"{path}: array has shape {tuple(arr.shape)}; the model takes the "
                          f"preprocessed input (C, H, W) = {tuple(input_shape)}")
    if not np.isfinite(arr).all():
        raise EngineError(f"{path}: array contains NaN or infinite values")
    return torch.from_numpy(arr.astype(np.float32))


def load_input(path: str | Path, model) -> torch.Tensor:
    """The (C, H, W) input tensor of `model` for an image file or a `.npy` array."""
    if str(path).endswith(".npy"):
        return load_array(path, model.input_shape)
    return model.preprocess(load_image(path))
