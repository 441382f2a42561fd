"""`build.py train-default`: train the embedded default model and write what ships with it.

Writes into --out (the package's assets by default): the float16 safetensors checkpoint,
the model card (JSON) and a 2,000-image sample of the test set; with --images, also a
handful of the test images as 28x28 PNGs for posts. torch is imported only after the
dataset has been found, so a wrong --data fails at once.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

import click

from generator.cli import UserError

SAMPLE_PER_CLASS = 200
# Classes exported as PNGs for posts (Fashion-MNIST label numbers).
PNG_CLASSES = (7, 9, 8, 6, 1)  # sneaker, ankle boot, bag, shirt, trouser


@click.command("train-default")
@click.option("--data", type=click.Path(path_type=Path), default="/usr/share/datasets/fashion-mnist",
              show_default=True, help="Folder with the four Fashion-MNIST idx .gz files.")
@click.option("--epochs", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write checkpoint, card and sample [default: generator/vis/default/assets].")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also export a few test images as PNGs into this folder (e.g. content/images).")
def train_default(data: Path, epochs: int, seed: int, out: Path | None, images: Path | None):
    """Train the embedded default model on Fashion-MNIST."""
    from generator.vis.default import fashion
    from generator.vis.errors import EngineError

    try:
        fashion.data_files(data)
    except EngineError as exc:
        raise UserError(f"{exc}, or pass --data DIR holding the four idx .gz files") from None
    try:
        digests = fashion.file_digests(data)
        train_x, train_y = fashion.load_split(data, "train")
        test_x, test_y = fashion.load_split(data, "test")
    except EngineError as exc:
        raise UserError(str(exc)) from None

    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from generator.vis.default import model as default_model

    from generator.vis.default import train

    out = out if out is not None else default_model.ASSETS_DIR
    out.mkdir(parents=True, exist_ok=True)
    recipe = train.Recipe(epochs=epochs, seed=seed)
    console = Console(stderr=True)
    steps = -(-len(train_x) // recipe.batch_size)
    epoch_times: list[float] = []
    epoch_losses: list[float] = []

    started = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("training", total=epochs * steps)

        def on_step(epoch: int, step: int, loss: float) -> None:
            progress.update(task, advance=1, description=f"epoch {epoch + 1}/{epochs} loss {loss:.3f}")

        def on_epoch(epoch: int, model, mean_loss: float, seconds: float) -> None:
            epoch_times.append(round(seconds, 1))
            epoch_losses.append(round(mean_loss, 4))
            progress.console.print(f"epoch {epoch + 1}/{epochs}: mean loss {mean_loss:.4f}, {seconds:.0f} s")

        model = train.train(train_x, train_y, recipe, on_step=on_step, on_epoch=on_epoch)
    train_seconds = time.perf_counter() - started

    state = train.round_for_storage(model, torch.float16)
    predicted = train.predict(model, test_x)
    correct = int((predicted == test_y).sum())
    accuracy = correct / len(test_y)

    weights_path = out / default_model.WEIGHTS_PATH.name
    train.save_checkpoint(weights_path, state, {"format": "pt", "model": "featuretree-default",
                                                "card": default_model.CARD_PATH.name})
    sample_idx = fashion.pick_sample(test_y, SAMPLE_PER_CLASS)
    fashion.write_sample(out / default_model.SAMPLE_PATH.name, test_x[sample_idx], test_y[sample_idx],
                         sample_idx)
    card = {
        "name": "featuretree default model (AlexNet-shaped, Fashion-MNIST)",
        "weights": weights_path.name,
        "weights_sha256": hashlib.sha256(weights_path.read_bytes()).hexdigest(),
        "storage_dtype": "float16",
        "storage_note": "weights are stored as float16 and loaded as float32; the test accuracy "
                        "below was measured with the float16-rounded weights",
        "parameters": sum(p.numel() for p in model.parameters()),
        "architecture": train.layer_table(model),
        "input": {
            "size": default_model.INPUT_SIZE,
            "channels": 1,
            "resize": "28x28 dataset images upsampled by bilinear interpolation (antialiased, "
                      "align_corners=False); other sizes are center-cropped to a square first",
            "resolution_choice": "64x64 input keeps conv1 at 32x32, conv2 at 16x16 and conv3-conv5 "
                                 "at 8x8, so every conv layer has a spatial map for gradient images",
            "normalization": {"scale": "pixel / 255", "mean": default_model.MEAN,
                              "std": default_model.STD},
            "polarity": "light objects on a dark background, as in Fashion-MNIST",
        },
        "class_names": default_model.CLASS_NAMES,
        "training": {
            **asdict(recipe),
            "train_images": int(len(train_x)),
            "loss": "cross-entropy",
            "deterministic": "torch.manual_seed(seed), torch.use_deterministic_algorithms(True), "
                             f"torch.set_num_threads({recipe.threads}), seeded shuffling and flips",
            "wall_time_s": round(train_seconds, 1),
            "epoch_times_s": epoch_times,
            "epoch_mean_losses": epoch_losses,
        },
        "test_accuracy": round(accuracy, 4),
        "test_correct": correct,
        "test_images": int(len(test_y)),
        "torch_version": torch.__version__,
        "data_sha256": digests,
        "sample": {
            "file": default_model.SAMPLE_PATH.name,
            "images": int(len(sample_idx)),
            "selection": f"the first {SAMPLE_PER_CLASS} test images of each class, in test-set order; "
                         "`indices` holds their positions in the 10,000-image test set",
        },
    }
    card_path = out / default_model.CARD_PATH.name
    card_path.write_text(json.dumps(card, indent=2) + "\n")

    if images is not None:
        images.mkdir(parents=True, exist_ok=True)
        for label in PNG_CLASSES:
            hits = ((test_y == label) & (predicted == label)).nonzero()[0]
            if len(hits):
                name = fashion.png_name(default_model.CLASS_NAMES[label], int(hits[0]))
                fashion.write_png(images / name, test_x[hits[0]])
                console.print(f"wrote {images / name}")

    console.print(f"trained {epochs} epochs in {train_seconds:.0f} s "
                  f"({train_seconds / epochs:.0f} s per epoch)")
    click.echo(f"test accuracy {accuracy:.2%} ({correct}/{len(test_y)}); wrote {weights_path}, "
               f"{card_path.name}, {default_model.SAMPLE_PATH.name}")
