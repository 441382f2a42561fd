"""The embedded default model: its shipped checkpoint, card, sample and PNGs, the training
loop, the idx reader, and the one-line errors for bad checkpoints and a missing dataset."""
from __future__ import annotations

import gzip
import json
import re
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from generator.cli import main
from generator.vis.default import model as default_model
from generator.vis.default import fashion
from generator.vis.default import train
from generator.vis.errors import EngineError

REPO = Path(__file__).resolve().parents[2]
CONTENT_IMAGES = REPO / "content" / "images"
DATASET = fashion.DEFAULT_DIR
HAVE_DATASET = all((DATASET / name).is_file() for pair in fashion.FILES.values() for name in pair)


def write_idx(path: Path, array: np.ndarray) -> None:
    """An idx gzip file built by hand from the format description (not by the code under test)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fake_dataset(folder: Path, n_train: int = 256, n_test: int = 100) -> Path:
    """Random Fashion-MNIST-shaped files: enough to run the command end to end."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        images_name, labels_name = fashion.FILES[split]
        write_idx(folder / images_name, rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / labels_name, np.arange(n) % 10)
    return folder


# -- the shipped model --------------------------------------------------------------------

def test_architecture_is_alexnet_shaped_without_batchnorm():
    model = default_model.build()
    features = list(model.features)
    convs = [i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5
    assert all(isinstance(features[i + 1], nn.ReLU) for i in convs)
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert len(linears) == 3 and linears[-1].out_features == len(default_model.CLASS_NAMES) == 10
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())

    rows = train.layer_table(model)
    names = [r["unit_name"] for r in rows if "unit_name" in r]
    assert names == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    conv5 = next(r for r in rows if r.get("unit_name") == "conv5")
    assert min(conv5["output_shape"][1:]) >= 7


def test_shipped_checkpoint_is_small_and_classifies_the_shipped_sample():
    assert default_model.WEIGHTS_PATH.stat().st_size <= 5 * 1024 * 1024
    model = default_model.load()
    assert not model.training
    images, labels = default_model.load_sample()
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
    assert labels.dtype == np.int64 and len(labels) == len(images) >= 1000
    accuracy = (train.predict(model, images) == labels).mean()
    assert accuracy >= 0.88


def test_card_describes_the_shipped_checkpoint():
    card = json.loads(default_model.CARD_PATH.read_text())
    assert card["class_names"] == default_model.CLASS_NAMES
    assert card["input"]["size"] == default_model.INPUT_SIZE
    assert card["input"]["normalization"]["mean"] == default_model.MEAN
    assert card["input"]["normalization"]["std"] == default_model.STD
    assert card["weights"] == default_model.WEIGHTS_PATH.name
    import hashlib
    assert card["weights_sha256"] == hashlib.sha256(default_model.WEIGHTS_PATH.read_bytes()).hexdigest()
    assert card["test_accuracy"] >= 0.90
    assert set(card["data_sha256"]) == {n for pair in fashion.FILES.values() for n in pair}


@pytest.mark.skipif(not HAVE_DATASET, reason=f"Fashion-MNIST not installed in {DATASET} "
                    "(apt-get install dataset-fashion-mnist)")
def test_card_accuracy_matches_a_re_evaluation_on_the_full_test_set():
    card = json.loads(default_model.CARD_PATH.read_text())
    assert fashion.file_digests(DATASET) == card["data_sha256"]
    images, labels = fashion.load_split(DATASET, "test")
    correct = int((train.predict(default_model.load(), images) == labels).sum())
    # Same weights, same data: only float summation order could flip a borderline image.
    assert abs(correct - card["test_correct"]) <= 3
    assert correct / len(labels) >= 0.90

    sample_images, sample_labels, indices = fashion.read_sample(default_model.SAMPLE_PATH)
    assert np.array_equal(sample_images, images[indices])
    assert np.array_equal(sample_labels, labels[indices])


def test_shipped_pngs_are_exact_test_images_and_preprocess_like_training():
    images, labels, indices = fashion.read_sample(default_model.SAMPLE_PATH)
    slugs = {fashion.png_name(name, 0)[:-len("_0.png")]: label
             for label, name in enumerate(default_model.CLASS_NAMES)}
    pattern = re.compile(rf"^({'|'.join(map(re.escape, slugs))})_(\d+)\.png$")
    pngs = [(p, pattern.match(p.name)) for p in sorted(CONTENT_IMAGES.glob("*.png"))]
    pngs = [(p, m) for p, m in pngs if m]
    assert len(pngs) >= 5
    for path, match in pngs:
        label, test_index = slugs[match.group(1)], int(match.group(2))
        position = np.flatnonzero(indices == test_index)
        assert len(position) == 1, f"{path.name}: test image {test_index} not in the shipped sample"
        pixels = np.array(Image.open(path))
        assert pixels.shape == (28, 28) and labels[position[0]] == label
        assert np.array_equal(pixels, images[position[0]])
        # The PNG and the array reach the network as the very same tensor.
        expected = default_model.to_input(torch.from_numpy(images[position[0]])[None])[0]
        assert torch.equal(default_model.preprocess(Image.open(path)), expected)


def test_preprocess_normalizes_crops_and_resizes():
    pixels = np.arange(64 * 64, dtype=np.int64).reshape(64, 64) % 256
    rgb = Image.fromarray(np.stack([pixels.astype(np.uint8)] * 3, axis=-1))
    x = default_model.preprocess(rgb)
    expected = (pixels / 255.0 - default_model.MEAN) / default_model.STD
    assert x.shape == (1, 64, 64) and x.dtype == torch.float32
    np.testing.assert_allclose(x[0].numpy(), expected, atol=1e-5)

    wide = Image.new("L", (300, 100), 0)
    wide.paste(255, (100, 0, 200, 100))  # the centered square is white, the sides black
    y = default_model.preprocess(wide)
    assert y.shape == (1, default_model.INPUT_SIZE, default_model.INPUT_SIZE)
    np.testing.assert_allclose(y.numpy(), (1.0 - default_model.MEAN) / default_model.STD, atol=1e-5)

    small = Image.fromarray(np.full((28, 28), 255, np.uint8))
    up = default_model.preprocess(small)
    ref = F.interpolate(torch.ones(1, 1, 28, 28), size=(64, 64), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(up.numpy(), ((ref[0] - default_model.MEAN) / default_model.STD).numpy(),
                               atol=1e-5)


# -- checkpoint errors --------------------------------------------------------------------

def test_corrupt_checkpoint_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}" + bytes(100))
    with pytest.raises(EngineError) as info:
        default_model.load(path=path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message and "safetensors" in message


def test_missing_checkpoint_is_one_line_naming_the_file(tmp_path):
    with pytest.raises(EngineError, match="checkpoint not found") as info:
        default_model.load(path=tmp_path / "absent.safetensors")
    assert str(tmp_path / "absent.safetensors") in str(info.value)


def test_mismatched_checkpoint_names_the_file_and_the_tensor(tmp_path):
    state = {k: v.clone() for k, v in default_model.build().state_dict().items()}
    state["classifier.1.weight"] = torch.zeros(7, 3)
    path = tmp_path / "other.safetensors"
    save_file(state, str(path))
    with pytest.raises(EngineError) as info:
        default_model.load(path=path)
    message = str(info.value)
    assert str(path) in message and "classifier.1.weight" in message and "(7, 3)" in message
    assert "\n" not in message

    del state["classifier.1.weight"]
    state["extra"] = torch.zeros(1)
    save_file(state, str(path))
    with pytest.raises(EngineError, match=r"missing classifier\.1\.weight.*unexpected extra") as info:
        default_model.load(path=path)
    assert str(path) in str(info.value)


# -- training -----------------------------------------------------------------------------

def _small_recipe(**changes) -> train.Recipe:
    return replace(train.Recipe(epochs=2, batch_size=32, max_lr=2e-3, threads=1), **changes)


def _mean_loss(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    with torch.no_grad():
        logits = model.eval()(default_model.to_input(torch.from_numpy(images)))
    return F.cross_entropy(logits, torch.from_numpy(labels)).item()


def test_short_training_run_lowers_the_loss():
    images, labels = default_model.load_sample()
    rng = np.random.default_rng(1)
    pick = rng.choice(len(images), 400, replace=False)
    images, labels = images[pick], labels[pick]
    recipe = _small_recipe()
    with train.deterministic(recipe.seed, recipe.threads):
        untrained = default_model.build()  # the same initialization train() starts from
    step_losses = []
    model = train.train(images, labels, recipe, on_step=lambda e, s, loss: step_losses.append(loss))
    assert len(step_losses) == 2 * 13
    before, after = _mean_loss(untrained, images, labels), _mean_loss(model, images, labels)
    # Two epochs of 13 steps take the loss from ln(10) = 2.30 to about 1.8.
    assert after < 0.85 * before, (before, after)


def test_training_is_deterministic_for_a_seed():
    images, labels = default_model.load_sample()
    images, labels = images[:192], labels[:192]
    recipe = _small_recipe(epochs=1)
    first = train.train(images, labels, recipe).state_dict()
    second = train.train(images, labels, recipe).state_dict()
    other = train.train(images, labels, replace(recipe, seed=1)).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_deterministic_context_restores_global_torch_state():
    threads, flag = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with train.deterministic(seed=3, threads=1):
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == flag


# -- the idx reader and the command -------------------------------------------------------

def test_idx_reader_round_trips_and_rejects_bad_headers(tmp_path):
    array = np.random.default_rng(2).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    write_idx(tmp_path / "a.gz", array)
    assert np.array_equal(fashion.read_idx(tmp_path / "a.gz"), array)

    with gzip.open(tmp_path / "short.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 5, 28, 28) + bytes(10))
    with pytest.raises(EngineError, match="short.gz"):
        fashion.read_idx(tmp_path / "short.gz")
    (tmp_path / "plain.gz").write_bytes(b"not gzip")
    with pytest.raises(EngineError, match="plain.gz"):
        fashion.read_idx(tmp_path / "plain.gz")


def test_command_without_dataset_is_one_line_exit_2(tmp_path):
    result = CliRunner().invoke(main, ["train-default", "--data", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "apt-get install dataset-fashion-mnist" in lines[0] and "--data" in lines[0]
    assert "Traceback" not in result.output


def test_command_trains_and_writes_checkpoint_card_sample_and_pngs(tmp_path):
    data = fake_dataset(tmp_path / "data")
    out, pngs = tmp_path / "out", tmp_path / "pngs"
    result = CliRunner().invoke(main, ["train-default", "--data", str(data), "--epochs", "1",
                                       "--out", str(out), "--images", str(pngs)])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.stdout
    card = json.loads((out / default_model.CARD_PATH.name).read_text())
    assert card["training"]["epochs"] == 1 and card["test_images"] == 100
    assert card["data_sha256"] == fashion.file_digests(data)
    model = default_model.load(path=out / default_model.WEIGHTS_PATH.name)
    assert model.features[0].weight.dtype == torch.float32
    images, labels, indices = fashion.read_sample(out / default_model.SAMPLE_PATH.name)
    assert len(images) == 100 and np.array_equal(labels, indices % 10)
