"""`build.py explain`: one unit's hierarchy on one image, as JSON, raw arrays and PNGs.

Torch and the engine are imported inside the command, so `build.py --help` stays light.
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import click

from generator.cli import UserError
from generator.commands.options import layer_map, model_options


def _units(value: str | None) -> list[str]:
    return [u.strip() for u in value.split(",") if u.strip()] if value else []


@click.command("explain")
@model_options
@click.option("--image", "image_path", required=True, metavar="IMG",
              help="An image file, or a .npy array (C,H,W): the preprocessed input.")
@click.option("--root", required=True, metavar="UNIT", help="The root unit, e.g. fc6_1068.")
@click.option("--depth", default=2, show_default=True, type=click.IntRange(min=0),
              help="Levels below the root.")
@click.option("--children", default=5, show_default=True, type=click.IntRange(min=1),
              help="Children per level.")
@click.option("--rule", default="guided", show_default=True,
              type=click.Choice(["guided", "deconv", "gradient"]), help="ReLU backward rule.")
@click.option("--path", "path_units", default=None, metavar="U1,U2,...",
              help="Units to follow, one per level, each in a layer below its parent.")
@click.option("--json", "json_out", default=None, metavar="FILE|-",
              help="Write the tree as JSON ('-' for stdout).")
@click.option("--arrays", "arrays_dir", default=None, type=click.Path(file_okay=False),
              metavar="DIR", help="Write DIR/<path>.npy, the raw input gradient of every node.")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              metavar="DIR", help="Write PNG tiles and the composed figure hierarchy.png.")
@click.option("--percentile", default=99.5, show_default=True,
              type=click.FloatRange(min=0, max=100, min_open=True),
              help="Display normalization: percentile of |gradient| mapped to full contrast.")
@click.option("--top", default=5, show_default=True, type=click.IntRange(min=1),
              help="How many predictions to report.")
@click.option("--device", default=None, metavar="DEV", help="cpu or cuda (default: cuda if available).")
def explain(model_name, weights, layer_pairs, image_path, root, depth, children, rule,
            path_units, json_out, arrays_dir, out_dir, percentile, top, device):
    """Explain one unit of a model on one image (hierarchy, JSON, arrays, PNGs)."""
    from generator.vis.errors import EngineError, EngineWarning

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EngineWarning)
            model, tree, document = _run(
                model_name, weights, layer_map(layer_pairs), image_path, root, depth,
                children, rule, _units(path_units), device, top)
        for w in caught:   # only when it worked: an error is one line on its own
            if issubclass(w.category, EngineWarning):
                click.echo(f"warning: {w.message}", err=True)
        if arrays_dir:
            _write_arrays(tree, Path(arrays_dir))
        if out_dir:
            _write_pngs(tree, Path(out_dir), percentile)
    except EngineError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{exc.filename or ''}: {exc.strerror or exc}") from None
    text = json.dumps(document, indent=2)
    if json_out == "-":
        click.echo(text)
    elif json_out:
        try:
            Path(json_out).write_text(text + "\n")
        except OSError as exc:
            raise UserError(f"--json {json_out}: {exc.strerror or exc}") from None
    if not (json_out or arrays_dir or out_dir):
        _print_tree(tree, document)


def _run(model_name, weights, layers, image_path, root, depth, children, rule, path, device, top):
    from generator.vis.core.backprop import Backprop
    from generator.vis.core.hierarchy import hierarchy
    from generator.vis.core.inputs import load_input
    from generator.vis.core.models import load_model
    from generator.vis.core.probes import top_predictions

    model = load_model(model_name, weights=weights, layers=layers, device=device)
    model.parse_unit(root)  # fail on a bad unit before any work
    for unit in path:
        model.parse_unit(unit)
    x = load_input(image_path, model)
    bp = Backprop(model, x, rule)
    tree = hierarchy(bp, root, depth=depth, children=children, path=path)
    document = {
        "model": model_name,
        "rule": rule,
        "predictions": top_predictions(bp.logits, model.labels, top),
        "tree": tree.to_dict(),
    }
    return model, tree, document


def _write_arrays(tree, directory: Path) -> None:
    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    for node in tree.walk():
        np.save(directory / f"{node.path_name}.npy",
                node.image.detach().cpu().numpy().astype(np.float32))


def _write_pngs(tree, directory: Path, percentile: float) -> None:
    from generator.vis.render.display import hierarchy_figure, save_png, tile

    directory.mkdir(parents=True, exist_ok=True)
    for node in tree.walk():
        save_png(tile(node.image, percentile), directory / f"{node.path_name}.png")
    save_png(hierarchy_figure(tree, percentile), directory / "hierarchy.png")


def _print_tree(tree, document) -> None:
    for p in document["predictions"]:
        click.echo(f"{p['prob']:8.4f}  {p['index']:>5}  {p['label']}")

    def show(node, indent):
        weight = "" if node.weight is None else f"  w={node.weight:.4g}"
        click.echo(f"{'  ' * indent}{node.unit}  act={node.activation:.4g}{weight}")
        for child in node.children:
            show(child, indent + 1)

    show(tree, 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(explain())
