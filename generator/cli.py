"""The `build.py` click group; each subcommand lives in `generator/commands/`."""
from __future__ import annotations

import importlib
import sys

import click

# name -> (module, attribute, one-line help shown by `build.py --help`)
COMMANDS = {
    "init": ("generator.commands.site", "init", "Start a new site in a folder (builds at once)."),
    "build": ("generator.commands.site", "build", "Build a site into its output directory."),
    "serve": ("generator.commands.site", "serve", "Preview a site locally, rebuilding on change."),
    "new": ("generator.commands.site", "new", "Create a new post skeleton."),
    "clean": ("generator.commands.site", "clean", "Remove the built site and the figure cache."),
    "explain": ("generator.commands.explain", "explain", "Explain one unit of a model on one image (hierarchy, JSON, arrays, PNGs)."),
    "visualize": ("generator.commands.visualize", "visualize", "Optimize input pictures that drive units up (feature visualization)."),
    "layers": ("generator.commands.layers", "layers", "List a model's named layers and units (receptive fields, top units on an image)."),
    "index": ("generator.commands.index", "index", "Mine a dataset for each unit's top-activating examples."),
    "atlas": ("generator.commands.atlas", "atlas", "Compute a site's unit atlas into its cache (shards over torchrun)."),
    "train-default": ("generator.commands.train", "train_default", "Train the embedded default model on Fashion-MNIST."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name=None, version=__import__("generator").__version__)
def main():
    """featuretree: static sites that explain how convolutional networks see."""


class UserError(click.ClickException):
    """A bad input: printed as one line, exit status 2, no traceback."""

    exit_code = 2

    def show(self, file=None):
        click.echo(f"error: {self.format_message()}", err=True, file=file or sys.stderr)
