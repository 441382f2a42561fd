"""Fashion-MNIST on disk: the idx-gzip files Debian ships, and the small sample we ship.

Debian's `dataset-fashion-mnist` puts the four original files in
/usr/share/datasets/fashion-mnist/. The idx format is a big-endian header (two zero
bytes, a type code, the number of dimensions, then one uint32 per dimension) followed by
the raw array.
"""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from generator.files import sha256_file
from generator.vis.errors import EngineError

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
PACKAGE = "dataset-fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# idx type codes we accept: Fashion-MNIST only uses unsigned bytes.
_IDX_DTYPES = {0x08: np.uint8}


def data_files(data_dir: Path) -> list[Path]:
    """The four files of `data_dir`, checked to exist (train images, labels, test images, labels)."""
    data_dir = Path(data_dir)
    paths = [data_dir / name for pair in FILES.values() for name in pair]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise EngineError(
            f"Fashion-MNIST not found in {data_dir} (missing {', '.join(missing)}); "
            f"`apt-get install {PACKAGE}` installs it")
    return paths


def read_idx(path: Path) -> np.ndarray:
    """The array stored in one gzipped idx file."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise EngineError(f"{path}: not a readable gzip file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise EngineError(f"{path}: not an idx file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise EngineError(f"{path}: idx header truncated")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_DTYPES[raw[2]]
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if len(raw) - header != expected:
        raise EngineError(f"{path}: header says shape {shape} ({expected} bytes), "
                          f"file holds {len(raw) - header} bytes")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).copy()  # writable


def load_split(data_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """`split` ("train" or "test") of `data_dir`: images uint8 (N, 28, 28), labels int64 (N,)."""
    data_files(data_dir)
    image_name, label_name = FILES[split]
    images = read_idx(Path(data_dir) / image_name)
    labels = read_idx(Path(data_dir) / label_name).astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise EngineError(f"{data_dir}: {split} images {images.shape} and labels {labels.shape} "
                          f"do not pair up; expected (N, H, W) and (N,)")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise EngineError(f"{Path(data_dir) / label_name}: labels must lie in 0..9")
    return images, labels


def file_digests(data_dir: Path) -> dict[str, str]:
    """SHA-256 of each of the four data files, by file name: what the model card records."""
    return {p.name: sha256_file(p) for p in data_files(data_dir)}


def pick_sample(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first `per_class` images of every class, in dataset order."""
    picks = [np.flatnonzero(labels == c)[:per_class] for c in range(10)]
    return np.sort(np.concatenate(picks))


def write_sample(path: Path, images: np.ndarray, labels: np.ndarray, indices: np.ndarray) -> None:
    """Save the shipped sample: images, labels and their indices in the original test set."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, images=images.astype(np.uint8), labels=labels.astype(np.int64),
                        indices=indices.astype(np.int64))
    os.replace(tmp, path)


def read_sample(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The shipped sample: images uint8 (N, 28, 28), labels int64 (N,), test-set indices (N,)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["images"], data["labels"], data["indices"]
    except (OSError, KeyError, ValueError) as exc:
        raise EngineError(f"{path}: not a readable Fashion-MNIST sample ({exc})") from None


def png_name(class_name: str, index: int) -> str:
    """File name of a test image exported for posts, e.g. `ankle_boot_0.png`."""
    slug = class_name.lower().replace("/", "_").replace("-", "_").replace(" ", "_")
    return f"{slug}_{index}.png"


def write_png(path: Path, image: np.ndarray) -> None:
    """A 28x28 grayscale PNG with the dataset's exact pixels."""
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(path)  # 2-D uint8 -> mode L
