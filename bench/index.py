#!/usr/bin/env python3
"""Mining throughput against plain forward throughput, measured side by side in one run.

Both loops see the same preprocessed batches (data loading is left out of both), on the
default model with the shipped Fashion-MNIST sample; when the default model's weights or
sample are not there yet, on the same architecture with seeded random weights and the
first images of Debian's Fashion-MNIST test set. Rounds alternate (forward, mining,
forward, ...) so that a busy machine slows both alike; the medians are compared.
Target: mining / forward >= 0.8.

    python bench/index.py [--batch-size 64] [--images 2048] [--top 16] [--rounds 3] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from generator.vis.default import model as default_model  # noqa: E402
from generator.vis.data.datasets import open_dataset  # noqa: E402
from generator.vis.errors import EngineError  # noqa: E402
from generator.vis.data.mining import Miner  # noqa: E402
from generator.vis.core.models import load_model  # noqa: E402


def setup(device):
    """(model, dataset, what) preferring the shipped model and sample."""
    try:
        model = load_model("default", device=device)
        what = "default model (shipped weights)"
    except EngineError:
        from safetensors.torch import save_file
        torch.manual_seed(0)
        path = Path(tempfile.mkdtemp()) / "random.safetensors"
        save_file(default_model.build().state_dict(), str(path))
        model = load_model("default", weights=str(path), device=device)
        what = "default architecture, random weights"
    try:
        dataset = open_dataset("fashion-sample")
        what += ", fashion-sample"
    except EngineError:
        dataset = open_dataset("fashion-mnist:test")
        what += ", fashion-mnist:test"
    return model, dataset, what


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--top", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, dataset, what = setup(device)
    n = min(args.images, len(dataset))
    x = torch.stack([model.preprocess(dataset.image(i)) for i in range(n)]).to(device)
    bs = args.batch_size
    chunks = [(torch.arange(i, min(i + bs, n)), x[i:i + bs]) for i in range(0, n, bs)]

    def sync():
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()

    def forward():
        with torch.inference_mode():
            for _, xb in chunks:
                model.module(xb)
        sync()

    def mining():
        miner = Miner(model, model.layers, args.top)
        for ids, xb in chunks:
            miner.update(ids, xb)
        sync()

    forward(), mining()   # warm-up
    rates = {"forward": [], "mining": []}
    cpu = {"forward": [], "mining": []}
    for _ in range(args.rounds):
        for name, fn in (("forward", forward), ("mining", mining)):
            t, c = time.perf_counter(), time.process_time()
            fn()
            rates[name].append(n / (time.perf_counter() - t))
            cpu[name].append(n / (time.process_time() - c))
    fwd, mine = statistics.median(rates["forward"]), statistics.median(rates["mining"])
    units = sum(l.size for l in model.layers)
    print(f"{what}; device {device}; {n} images; batch {bs}; top {args.top}; "
          f"{len(model.layers)} layers, {units} units; {torch.get_num_threads()} threads")
    for label, key in (("plain forward", "forward"), ("mining", "mining")):
        print(f"{label:>14}: {statistics.median(rates[key]):8.1f} images/s wall, "
              f"{statistics.median(cpu[key]):8.1f} images per CPU-second   "
              f"(wall rounds: {', '.join(f'{r:.0f}' for r in rates[key])})")
    print(f"{'ratio':>14}: {mine / fwd:8.2f} wall, "
          f"{statistics.median(cpu['mining']) / statistics.median(cpu['forward']):8.2f} CPU time"
          f"   (target >= 0.80; on a shared machine trust the CPU-time ratio)")


if __name__ == "__main__":
    main()
