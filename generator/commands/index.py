"""`build.py index`: mine a dataset for every unit's top-activating examples.

Runs the same under `torchrun --nproc_per_node=N build.py index ...`: each rank mines a
shard, the lists are merged exactly and rank 0 writes the cache. Torch and the engine are
imported inside the command, so `build.py --help` stays light.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import click

from generator.cli import UserError
from generator.commands.options import layer_map, model_options


@click.command("index")
@model_options
@click.option("--dataset", "dataset_spec", required=True, metavar="SPEC",
              help="fashion-sample, fashion-mnist:test|train, imagefolder:PATH, or a folder "
                   "of images (searched recursively).")
@click.option("--top", "k", default=16, show_default=True, type=click.IntRange(min=1),
              help="Examples kept per unit.")
@click.option("--layers", "layer_names", default=None, metavar="L1,L2",
              help="Layers to mine (default: all named layers).")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--workers", default=None, type=click.IntRange(min=0),
              help="Data-loading processes (default: 0 for in-memory datasets, else up to 4).")
@click.option("--checkpoint-every", "chunk_batches", default=16, show_default=True,
              type=click.IntRange(min=1), help="Batches between resumable checkpoints.")
@click.option("--cache", "cache_dir", default=None, type=click.Path(file_okay=False),
              help="Where indexes (and checkpoints) live (default: the site's cache/index "
                   "when run in a site folder, so the next build reuses it; else .cache/index).")
@click.option("--device", default=None, metavar="DEV",
              help="cpu or cuda (default: cuda if available; one GPU per rank under torchrun).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def index(model_name, weights, layer_pairs, dataset_spec, k, layer_names, batch_size, workers,
          chunk_batches, cache_dir, device, quiet):
    """Mine a dataset for each unit's top-activating examples."""
    from generator.vis.errors import EngineError, EngineWarning
    from generator.vis.data.datasets import check_fits, open_dataset
    from generator.vis.data.mining import dist_info, load_or_mine, process_group
    from generator.vis.core.models import load_model

    try:
        model_name, weights, layers_given, cache_dir = as_the_build_sees_it(
            model_name, weights, layer_map(layer_pairs), cache_dir)
        with process_group(device) as device:
            rank, world = dist_info()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", EngineWarning)
                model = load_model(model_name, weights=weights, layers=layers_given, device=device)
            layers = [n.strip() for n in layer_names.split(",") if n.strip()] if layer_names else None
            if layer_names is not None and not layers:
                raise UserError(f"--layers is empty; name some of {', '.join(model.layer_names)}")
            dataset = open_dataset(dataset_spec, memo_dir=Path(cache_dir) / "files")
            check_fits(dataset, model)
            if rank == 0:   # once the inputs check out: an error is one line on its own
                for w in caught:
                    if issubclass(w.category, EngineWarning):
                        click.echo(f"warning: {w.message}", err=True)
            start = time.perf_counter()
            topk = load_or_mine(model, dataset, k, layers, cache_dir, progress=not quiet,
                                batch_size=batch_size, workers=workers, chunk_batches=chunk_batches)
            seconds = time.perf_counter() - start
    except EngineError as exc:
        raise UserError(str(exc)) from None
    except KeyboardInterrupt:
        raise UserError("interrupted; run the same command again to resume from the last "
                        "checkpoint") from None
    if rank == 0:
        click.echo(_summary(topk, seconds, world))


def as_the_build_sees_it(model_name, weights, layers, cache_dir):
    """The model, weights, layer map and cache folder the build would use, so that an
    index mined here is the one the build finds: in a site folder (one with site.toml)
    its cache and its `[figures.models."M"]` weights and layers; model files and weights
    resolved to absolute paths, as the build names them (the index key holds the name)."""
    from generator.vis import api

    site = Path("site.toml")
    settings = {}
    if site.is_file():
        from generator.site.config import load_config
        from generator.site.errors import BuildError

        try:
            config = load_config(".")
        except BuildError as exc:
            raise UserError(str(exc)) from None
        models = config.figures.get("models") or {}
        settings = models.get(model_name) if isinstance(models, dict) else None
        settings = settings if isinstance(settings, dict) else {}
        cache_dir = cache_dir or str(config.cache / "index")
    try:
        spec = api.model_spec(model_name, weights or settings.get("weights"), base_dirs=[Path.cwd()])
    except api.RequestError as exc:
        raise UserError(exc.message) from None
    return spec.name, spec.weights, layers or settings.get("layers"), cache_dir or ".cache/index"


def _summary(topk, seconds: float, world: int) -> str:
    meta = topk.meta
    units = sum(t.values.shape[0] for t in topk.layers.values())
    layers = list(topk.layers)
    span = layers[0] if len(layers) == 1 else f"{layers[0]}..{layers[-1]} ({len(layers)} layers)"
    where = meta.get("path", "the cache")
    skipped = int(meta.get("unreadable", 0))
    head = (f"{meta['images']} images of {meta['dataset']}"
            + (f" ({skipped} unreadable, skipped)" if skipped else ""))
    if meta.get("mined"):
        rate = meta["images"] / seconds if seconds > 0 else float("inf")
        ranks = f" on {world} ranks" if world > 1 else ""
        return (f"indexed {head}: {span}, {units} units x top {topk.k} -> {where} "
                f"in {seconds:.1f}s ({rate:,.0f} images/s{ranks})")
    return f"reused the index of {head}: {span}, {units} units x top {topk.k} ({where})"
