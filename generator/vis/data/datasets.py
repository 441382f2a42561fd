"""Datasets to mine: what a `--dataset SPEC` names, as numbered images.

Specs:

* `fashion-sample`: the Fashion-MNIST test-set sample shipped with the default model
  (`generator.vis.default.model.load_sample`).
* `fashion-mnist:test`, `fashion-mnist:train`: the full splits Debian's
  `dataset-fashion-mnist` installs.
* `imagefolder:PATH`: a torchvision `ImageFolder`-style tree (`PATH/CLASS/.../image`);
  the class is the label.
* `PATH` (or `folder:PATH`): every image under PATH, recursively; no labels.

An image id is the image's position in a fixed order (sorted relative paths, or array
order), so the same content always gives the same ids. Files that cannot be opened are
skipped (and counted); the remaining images must share one PIL mode. The content digest
hashes every file's bytes; a small memo keyed by (size, mtime) avoids re-reading
unchanged files on the next run.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from generator.files import write_atomic
from generator.vis.errors import EngineError
from generator.vis.names import IMAGE_SUFFIXES

EXTENSIONS = IMAGE_SUFFIXES
SPECS = "fashion-sample, fashion-mnist:test, fashion-mnist:train, imagefolder:PATH or a folder PATH"
# Errors PIL raises for files that are not (complete) images.
UNREADABLE = (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError)
_ONE_CHANNEL = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"}


def mode_channels(mode: str) -> int:
    """Colour channels an image of this PIL mode carries (alpha not counted)."""
    return 1 if mode in _ONE_CHANNEL else 3


@dataclass
class Dataset:
    """Numbered images of one spec; `image(i)` opens image i (0 <= i < len)."""

    spec: str
    names: list[str]            # per id: relative path, or "<spec>/<index>"
    labels: list[str | None]    # per id: class label, or None
    mode: str                   # the PIL mode all images share
    digest: str                 # sha256 of the content (names and bytes)
    skipped: list[str] = field(default_factory=list)   # names that could not be opened
    root: Path | None = None                            # folder datasets: names are under it
    arrays: np.ndarray | None = field(default=None, repr=False)   # array datasets: (N, H, W)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def channels(self) -> int:
        return mode_channels(self.mode)

    def image(self, i: int) -> Image.Image:
        """Image i, decoded. Raises one of UNREADABLE if its file is damaged."""
        if self.arrays is not None:
            return Image.fromarray(np.ascontiguousarray(self.arrays[int(i)], dtype=np.uint8), mode="L")
        with Image.open(self.root / self.names[int(i)]) as im:
            im.load()
            return im


def open_dataset(spec: str, memo_dir: Path | None = None) -> Dataset:
    """The dataset a spec names; EngineError (one line) if it is empty or unusable.

    `memo_dir` keeps per-file digests between runs (none kept when None).
    """
    spec = str(spec).strip()
    if spec == "fashion-sample":
        from generator.vis.default import model as default_model
        images, labels = default_model.load_sample()
        return _arrays(spec, images, labels, default_model.CLASS_NAMES)
    if spec.startswith("fashion-mnist:"):
        split = spec.split(":", 1)[1]
        if split not in ("train", "test"):
            raise EngineError(f"dataset {spec!r}: the split must be train or test")
        from generator.vis.default import model as default_model
        from generator.vis.default import fashion
        images, labels = fashion.load_split(fashion.DEFAULT_DIR, split)
        return _arrays(spec, images, labels, default_model.CLASS_NAMES)
    if spec.startswith("imagefolder:"):
        return _folder(spec, Path(spec.split(":", 1)[1]), True, memo_dir)
    path = spec.split(":", 1)[1] if spec.startswith("folder:") else spec
    if not path:
        raise EngineError(f"dataset spec is empty; use {SPECS}")
    return _folder(spec, Path(path), False, memo_dir)


def check_fits(dataset: Dataset, model) -> None:
    """EngineError if the dataset's images cannot feed the model (channel count)."""
    want = int(model.input_shape[0])
    if dataset.channels != want:
        raise EngineError(
            f"dataset {dataset.spec} has {dataset.mode} images ({dataset.channels} channel"
            f"{'s' if dataset.channels != 1 else ''}) but model {model.name} takes "
            f"{want}-channel input; use a dataset of {'RGB' if want == 3 else 'grayscale (L)'} images")


# ---------------------------------------------------------------- arrays

def _arrays(spec, images: np.ndarray, labels: np.ndarray, class_names) -> Dataset:
    if images.ndim != 3 or len(images) == 0:
        raise EngineError(f"dataset {spec} is empty or not (N, H, W) images")
    h = hashlib.sha256(f"{images.dtype}|{images.shape}|".encode())
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels).astype(np.int64).tobytes())
    names = [f"{spec}/{i}" for i in range(len(images))]
    return Dataset(spec, names, [class_names[int(c)] for c in labels], "L",
                   h.hexdigest(), [], arrays=images)


# ---------------------------------------------------------------- folders

def _files(root: Path, by_class: bool) -> list[tuple[str, str | None]]:
    """(relative path, label) of every image file, sorted by relative path."""
    if by_class:
        from torchvision.datasets.folder import find_classes, make_dataset
        try:
            classes, to_idx = find_classes(str(root))
        except FileNotFoundError:
            raise EngineError(f"dataset {root} has no class folders; an imagefolder tree is "
                              f"ROOT/CLASS/image.jpg") from None
        pairs = make_dataset(str(root), to_idx, extensions=EXTENSIONS, allow_empty=True)
        out = [(os.path.relpath(p, root), classes[c]) for p, c in pairs]
    else:
        out = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in filenames:
                if not name.startswith(".") and name.lower().endswith(EXTENSIONS):
                    out.append((os.path.relpath(os.path.join(dirpath, name), root), None))
    return sorted(out, key=lambda pair: pair[0].split(os.sep))


def _folder(spec: str, root: Path, by_class: bool, memo_dir: Path | None) -> Dataset:
    if not root.is_dir():
        raise EngineError(f"dataset {spec}: {root} is not a folder; use {SPECS}")
    files = _files(root, by_class)
    if not files:
        raise EngineError(f"dataset {spec} holds no images ({', '.join(EXTENSIONS)}) under {root}")
    memo_path = (Path(memo_dir) / (hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]
                                  + ".json")) if memo_dir is not None else None
    memo = _read_memo(memo_path)
    fresh, names, labels, modes, skipped = {}, [], [], {}, []
    total = hashlib.sha256()
    for rel, label in files:
        record = _file_record(root / rel, memo.get(rel))
        fresh[rel] = record
        mode, digest = record[3], record[2]
        if mode is None:
            skipped.append(rel)
            continue
        total.update(f"{rel}\0{digest}\n".encode())
        names.append(rel)
        labels.append(label)
        modes.setdefault(mode, rel)
    if memo_path is not None and fresh != memo:
        _write_memo(memo_path, fresh)
    if not names:
        raise EngineError(f"dataset {spec}: none of its {len(files)} image files can be read "
                          f"(e.g. {skipped[0]})")
    if len(modes) > 1:
        listed = ", ".join(f"{m} (e.g. {r})" for m, r in sorted(modes.items()))
        raise EngineError(f"dataset {spec} mixes image modes: {listed}; convert the images "
                          f"to one mode (all RGB or all L)")
    return Dataset(spec, names, labels, next(iter(modes)), total.hexdigest(), skipped, root=root)


def _file_record(path: Path, known):
    """[size, mtime_ns, sha256, mode or None] of one file, reusing `known` if unchanged."""
    try:
        st = path.stat()
        if known and known[0] == st.st_size and known[1] == st.st_mtime_ns:
            return known
        data = path.read_bytes()
    except OSError:
        return [0, 0, "", None]
    try:
        with Image.open(io.BytesIO(data)) as im:
            mode = im.mode
    except UNREADABLE:
        mode = None
    return [st.st_size, st.st_mtime_ns, hashlib.sha256(data).hexdigest(), mode]


def _read_memo(path: Path | None) -> dict:
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_memo(path: Path, memo: dict) -> None:
    write_atomic(path, json.dumps(memo, separators=(",", ":")).encode())


# ---------------------------------------------------------------- batches

class _Inputs:
    """Map-style torch dataset: id -> (id, input tensor, status) for a DataLoader."""

    OK, UNREADABLE, WRONG_SHAPE = 0, 1, 2

    def __init__(self, dataset: Dataset, preprocess, shape):
        self.dataset, self.preprocess, self.shape = dataset, preprocess, tuple(shape)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        import torch
        try:
            x = self.preprocess(self.dataset.image(i))
        except UNREADABLE:
            return i, torch.zeros(self.shape), self.UNREADABLE
        if tuple(x.shape) != self.shape:
            return i, torch.zeros(self.shape), self.WRONG_SHAPE
        return i, x, self.OK


def batches(dataset: Dataset, preprocess, ids: range, batch_size: int, workers: int, shape):
    """(ids (B,), inputs (B, *shape), readable (B,) bool) for consecutive `ids`, in order.

    Images that fail to decode come back as zeros marked unreadable; an image that
    preprocesses to the wrong shape is an EngineError.
    """
    import torch
    from torch.utils.data import DataLoader, Subset

    inputs = _Inputs(dataset, preprocess, shape)
    loader = DataLoader(Subset(inputs, ids), batch_size=batch_size, shuffle=False,
                        num_workers=workers, persistent_workers=False)
    for batch_ids, x, status in loader:
        wrong = (status == _Inputs.WRONG_SHAPE).nonzero()
        if len(wrong):
            i = int(batch_ids[wrong[0, 0]])
            got = tuple(preprocess(dataset.image(i)).shape)
            raise EngineError(f"dataset {dataset.spec}: image {dataset.names[i]} preprocesses to "
                              f"{got}, the model takes {tuple(shape)}")
        yield batch_ids.to(torch.int64), x, status == _Inputs.OK
