"""Options shared by the engine's commands (`explain`, `index`): which model, which
weights, which layer names."""
from __future__ import annotations

import click

from generator.cli import UserError


def model_options(command):
    """Add --model, --weights and --layer (passed as model_name, weights, layer_pairs)."""
    for option in reversed((
        click.option("--model", "model_name", required=True, metavar="NAME",
                     help="alexnet, vgg16, resnet18, default, or path/to/file.py:factory."),
        click.option("--weights", default=None, metavar="W",
                     help="'imagenet', or a .safetensors / torch.save'd state_dict file."),
        click.option("--layer", "layer_pairs", multiple=True, metavar="NAME=MODULE",
                     help="Name a layer by module path (repeatable); replaces the model's "
                          "layer map."),
    )):
        command = option(command)
    return command


def layer_map(pairs: tuple[str, ...]) -> dict[str, str] | None:
    """`--layer NAME=MODULE_PATH` pairs as the registry's layer map (None: the model's own)."""
    out = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--layer {pair!r}: write NAME=MODULE_PATH, e.g. conv5=features.11")
        out[name] = path
    return out or None
