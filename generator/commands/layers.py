"""`featuretree layers`: a model's named layers and units, so a post can name them.

Torch and the engine are imported inside the command, so `featuretree --help` stays light.
"""
from __future__ import annotations

import json
import warnings

import click

from generator.cli import UserError
from generator.commands.options import layer_map, model_options


@click.command("layers")
@model_options
@click.option("--image", "image_path", default=None, metavar="IMG",
              help="Also list each layer's most active units on this image (or .npy input).")
@click.option("--top", default=5, show_default=True, type=click.IntRange(min=1),
              help="Units listed per layer with --image.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--device", default=None, metavar="DEV", help="cpu or cuda (default: cuda if available).")
def layers(model_name, weights, layer_pairs, image_path, top, as_json, device):
    """List a model's named layers: module path, kind, units, map size, receptive field."""
    from generator.vis.errors import EngineError, EngineWarning

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EngineWarning)
            model, rows = _run(model_name, weights, layer_map(layer_pairs), image_path,
                               top, device)
        for w in caught:   # only when it worked: an error is one line on its own
            if issubclass(w.category, EngineWarning):
                click.echo(f"warning: {w.message}", err=True)
    except EngineError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        click.echo(json.dumps({"model": model_name, "input_shape": list(model.input_shape),
                               "layers": rows}, indent=2))
    else:
        _print(model, rows)


def _run(model_name, weights, layers, image_path, top, device):
    from generator.vis.core.inputs import load_input
    from generator.vis.core.models import load_model
    from generator.vis.data.layerinfo import describe

    model = load_model(model_name, weights=weights, layers=layers, device=device)
    x = load_input(image_path, model) if image_path else None
    return model, describe(model, x, top)


def _print(model, rows) -> None:
    c, h, w = model.input_shape
    click.echo(f"{model.name}: input {c}x{h}x{w}, {len(rows)} named layers "
               f"(units are LAYER_INDEX, e.g. {rows[-1]['name']}_0)")
    table = [("layer", "module path", "module", "kind", "units", "map", "field", "stride")]
    for r in rows:
        f = r["field"]
        field = "?" if f is None else "whole input" if f["global"] else "x".join(map(str, f["size"]))
        stride = "?" if f is None else "-" if f["global"] else "x".join(map(str, f["stride"]))
        kind = r["kind"] + ("" if r["relu"] else " (logits)")
        table.append((r["name"], r["path"], r["module"], kind, str(r["units"]),
                      "x".join(map(str, r["map"])) or "-", field, stride))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    why = next((r["field_error"] for r in rows if r["field"] is None), None)
    if why:
        click.echo(f"field ?: {why}; patch grids, crops and atlas patches need receptive fields")
    for r in rows:
        if "top" in r:
            units = ", ".join(f"{u['unit']} {u['activation']:.3g}"
                              + (f" ({u['label']})" if "label" in u else "") for u in r["top"])
            click.echo(f"{r['name']}: {units}")
