"""`build.py atlas SITE`: compute a site's unit atlas into its cache, ahead of `build`.

Under `torchrun --nproc_per_node=N build.py atlas SITE` (multi-node too) the atlas's
fixed chunks of units are shared out to the ranks by size (gloo on CPU, nccl on GPUs); rank 0
gathers and writes them: the cache is byte-identical to a one-process run, and the next
`build` finds every unit cached.
"""
from __future__ import annotations

import os
import time

import click

from generator.cli import UserError


@click.command("atlas")
@click.argument("site_dir", default=".", type=click.Path(file_okay=False))
@click.option("--device", default=None, metavar="DEV",
              help="cpu or cuda (default: cuda if available; one GPU per rank under torchrun).")
@click.option("--quiet", is_flag=True, help="No progress bars (the bars go to stderr, on rank 0 only).")
def atlas(site_dir, device, quiet):
    """Compute the [atlas] of SITE_DIR (its site.toml) into the site's cache."""
    from generator.site.atlas.store import AtlasStore
    from generator.site.config import load_config
    from generator.site.errors import BuildError

    t0 = time.perf_counter()
    try:
        config = load_config(site_dir)
        if config.atlas is None:
            raise UserError(f"{config.config_path or site_dir}: no [atlas] table; add one "
                            "(model, dataset, layers, k, steps) to build an atlas")
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if int(os.environ.get("RANK", "0")) == 0:
            from generator.site.guard import claim_cache
            claim_cache(config.cache, False)     # the cache the build will read
        from generator.vis.data.mining import process_group
        with process_group(device) as device:
            found = AtlasStore(config, config.atlas, quiet=quiet, device=device, summary=False).load()
    except BuildError as e:
        raise UserError(str(e)) from None
    if int(os.environ.get("RANK", "0")) == 0 and not quiet:
        seconds = time.perf_counter() - t0
        click.echo(f"atlas {config.atlas.name}: {len(found.units)} units, {found.computed} computed "
                   f"on {world} rank{'s' if world > 1 else ''} in {seconds:.1f}s")
