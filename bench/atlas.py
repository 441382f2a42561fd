"""Atlas benchmark (issue 16): the default model's atlas on the shipped sample, cold.

Prints wall time, units/s and per-phase seconds (stats pass, pictures, patches, edges),
beside the time of the same units' pictures optimized one figure at a time (`optimize`
on one unit per call, as separate `optimize` figures would), and with --ranks 2 the
speed-up of `build.py atlas` under torchrun (gloo) over one process.

    python bench/atlas.py [--layers conv1,conv5] [--steps 64] [--k 8] [--diversity 3]
                          [--single 8] [--ranks 2]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cold(layers: list[str], steps: int, k: int, diversity: int = 1) -> tuple[list[str], dict]:
    """Time one cold atlas computation; (its units, seconds per phase)."""
    from generator.vis import api

    lay = api.atlas_layout("default")
    chosen = [l for l in lay.layers if not layers or l.name in layers]
    units = [f"{l.name}_{i}" for l in chosen for i in range(l.units)]
    req = api.AtlasRequest("default", None, "fashion-sample", k=k, steps=steps, diversity=diversity)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        result = api.atlas_compute(req, units, Path(tmp))
        wall = time.perf_counter() - t
    phases = ", ".join(f"{p} {s:.1f}s" for p, s in result.seconds.items())
    print(f"atlas: {len(result.units)} units ({', '.join(l.name for l in chosen)}), steps={steps}, "
          f"k={k}, diversity={diversity}: {wall:.1f}s wall, {len(result.units) / wall:.2f} units/s ({phases})")
    for phase, s in result.seconds.items():
        print(f"  per unit: {phase} {1000 * s / len(result.units):.1f} ms")
    return units, result.seconds


def single(units: list[str], n: int, steps: int, batched_pictures: float) -> None:
    """Pictures one unit per optimize() call, extrapolated to every unit."""
    from generator.vis.core.featurevis import optimize
    from generator.vis.core.models import load_model

    model = load_model("default")
    pick = units[:: max(1, len(units) // n)][:n]
    t = time.perf_counter()
    for u in pick:
        optimize(model, [u], steps=steps)
    per = (time.perf_counter() - t) / len(pick)
    print(f"one optimize figure per unit: {1000 * per:.0f} ms/unit over {len(pick)} units -> "
          f"{per * len(units):.0f}s for {len(units)} units (batched in the atlas: {batched_pictures:.0f}s)")


def ranks(n: int, layers: list[str], steps: int, k: int) -> None:
    """`build.py atlas` on a throwaway site, 1 process then torchrun -n N (gloo)."""
    times = {}
    for world in (1, n):
        with tempfile.TemporaryDirectory() as tmp:
            site = Path(tmp)
            chosen = f"layers = {layers!r}\n".replace("'", '"') if layers else ""
            (site / "site.toml").write_text(
                f'title = "bench"\n[atlas]\nmodel = "default"\ndataset = "fashion-sample"\n'
                f"k = {k}\nsteps = {steps}\n{chosen}")
            cmd = [sys.executable, str(ROOT / "build.py"), "atlas", str(site), "--device", "cpu"]
            if world > 1:
                cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                       f"--nproc_per_node={world}", *cmd[1:]]
            env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // world))}
            t = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, cwd=ROOT, capture_output=True)
            times[world] = time.perf_counter() - t
    print(f"build.py atlas: 1 rank {times[1]:.1f}s, {n} ranks {times[n]:.1f}s "
          f"(speed-up {times[1] / times[n]:.2f}x, process start included)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", default="", help="comma list (default: every layer)")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--single", type=int, default=8, help="units timed one optimize call each (0: skip)")
    ap.add_argument("--diversity", type=int, default=1,
                    help="diversity pictures per unit (1: none); run twice to see their cost")
    ap.add_argument("--ranks", type=int, default=0, help="also time torchrun with this many ranks")
    a = ap.parse_args()
    layers = [l for l in a.layers.split(",") if l]
    units, seconds = cold(layers, a.steps, a.k, a.diversity)
    if a.single:
        single(units, a.single, a.steps, seconds["pictures"])
    if a.ranks > 1:
        ranks(a.ranks, layers, a.steps, a.k)


if __name__ == "__main__":
    main()
