"""`build.py visualize`: pictures that drive units up, found by optimizing the input
(feature visualization), as JSON, raw arrays and PNGs.

Torch and the engine are imported inside the command, so `build.py --help` stays light.
"""
from __future__ import annotations

import io
import json
import sys
import warnings
from pathlib import Path

import click

from generator.cli import UserError
from generator.commands.options import layer_map, model_options


def _units(value: str) -> list[str]:
    return [u.strip() for u in value.split(",") if u.strip()]


@click.command("visualize")
@model_options
@click.option("--units", "units", required=True, metavar="U1,U2,...",
              help="Units to visualize, e.g. conv5_3,fc6_7 (optimized together).")
@click.option("--steps", default=256, show_default=True, type=int,
              help="Optimization steps (1..10000).")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Random seed: the same seed gives the same pictures.")
@click.option("--objective", default="neuron", show_default=True,
              help="neuron (the unit at the centre of its map) or channel (its map's mean).")
@click.option("--param", default="fft", show_default=True,
              help="Image parametrization: fft or pixel.")
@click.option("--lr", default=0.05, show_default=True, type=float, help="Adam learning rate.")
@click.option("--size", default=None, type=int, metavar="PX",
              help="Picture side in pixels (default: the model's input size).")
@click.option("--json", "json_out", default=None, metavar="FILE|-",
              help="Write {model, units: [{unit, activation, steps}]} ('-' for stdout).")
@click.option("--arrays", "arrays_dir", default=None, type=click.Path(file_okay=False),
              metavar="DIR", help="Write DIR/<unit>.npy: the optimized input (C,H,W float32, "
                                  "preprocessed, as the model's forward takes it).")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              metavar="DIR", help="Write DIR/<unit>.png, the picture.")
@click.option("--device", default=None, metavar="DEV", help="cpu or cuda (default: cuda if available).")
def visualize(model_name, weights, layer_pairs, units, steps, seed, objective, param, lr,
              size, json_out, arrays_dir, out_dir, device):
    """Optimize input pictures that drive units up (feature visualization)."""
    from generator.vis.errors import EngineError, EngineWarning

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EngineWarning)
            try:
                results = _run(model_name, weights, layer_map(layer_pairs), _units(units),
                               steps, seed, objective, param, lr, size, device)
            finally:
                for w in caught:
                    if issubclass(w.category, EngineWarning):
                        click.echo(f"warning: {w.message}", err=True)
        if arrays_dir:
            _write_arrays(results, Path(arrays_dir))
        if out_dir:
            _write_pngs(results, Path(out_dir))
    except EngineError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{exc.filename or ''}: {exc.strerror or exc}") from None
    document = {"model": model_name,
                "units": [{"unit": r.unit, "activation": r.activation, "steps": r.steps}
                          for r in results]}
    text = json.dumps(document, indent=2)
    if json_out == "-":
        click.echo(text)
    elif json_out:
        from generator.files import write_atomic
        try:
            write_atomic(Path(json_out), (text + "\n").encode())
        except OSError as exc:
            raise UserError(f"--json {json_out}: {exc.strerror or exc}") from None
    if not (json_out or arrays_dir or out_dir):
        for r in results:
            click.echo(f"{r.unit}  act={r.activation:.4g}  steps={r.steps}")


def _run(model_name, weights, layers, units, steps, seed, objective, param, lr, size, device):
    from generator.vis.core.featurevis import optimize
    from generator.vis.core.models import load_model
    from generator.vis.core.objectives import check_lr, check_objective, check_steps

    check_steps(steps), check_lr(lr), check_objective(objective)  # before loading a model
    model = load_model(model_name, weights=weights, layers=layers, device=device)
    for unit in units:
        model.parse_unit(unit)  # fail on a bad unit before any work
    return optimize(model, units, steps=steps, lr=lr, seed=seed, param=param,
                    objective=objective, size=size)


def _write_arrays(results, directory: Path) -> None:
    import numpy as np

    from generator.files import write_atomic

    for r in results:
        buffer = io.BytesIO()
        np.save(buffer, r.input.detach().cpu().numpy().astype(np.float32))
        write_atomic(directory / f"{r.unit}.npy", buffer.getvalue())


def _write_pngs(results, directory: Path) -> None:
    import numpy as np
    from PIL import Image

    from generator.files import write_atomic

    for r in results:
        pixels = (r.image.detach().cpu().clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        image = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        write_atomic(directory / f"{r.unit}.png", buffer.getvalue())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(visualize())
