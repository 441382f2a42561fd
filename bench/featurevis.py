"""Feature visualization speed, measured side by side in one run (not a test).

(a) AlexNet (random weights) conv5, 16 channels at 128 px, 256 steps: ours (all units in
    one batch, one forward + backward per step) vs Lucent's `render_vis`, one call per
    unit. Both: Fourier parametrization with decorrelated colour, Adam lr 0.05, channel
    objective, jitter/scale/rotation robustness, the model seeing a 128 px input.
(b) The default model (Fashion-MNIST, 1x64x64) conv5, 16 channels at 64 px, same settings
    (no colour decorrelation for one channel).

Both sides report the channel objective their final picture reaches (no transforms), so
the speed is not bought with worse pictures.

Needs torch-lucent==0.1.8, kornia==0.4.1 and ipython (bench-only; requirements-bench.txt,
installed with --no-deps so torch is left alone).
Usage: python bench/featurevis.py [--steps N] [--units N] [--device cpu|cuda] [--only a|b]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator.vis.core.featurevis import optimize  # noqa: E402
from generator.vis.core.imageparam import image_range  # noqa: E402
from generator.vis.core.models import load_model  # noqa: E402
from generator.vis.core.objectives import capturing  # noqa: E402
from generator.vis.core.transforms import Transforms  # noqa: E402

# Lucent's standard robustness in pixels (pad 12, jitter 8 then 4, +-10% zoom, +-10 deg),
# ours as one similarity on the same canvas size.
OURS_TRANSFORMS = Transforms(pad=0, jitter=12, scale=(0.9, 1.1), degrees=10.0)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def reached(model, layer, channels, images):
    """Channel objective of [0,1] pictures (N, C, H, W), no transforms."""
    x = image_range(model).to_input(images.to(model.device))
    with torch.no_grad(), capturing(model, [layer]) as forward:
        h = forward(x)[0][layer.name]
    return [float(h[i, c].mean()) for i, c in enumerate(channels)]


def ours(model, units, steps, size):
    sync(model.device)
    t = time.perf_counter()
    results = optimize(model, units, steps=steps, lr=0.05, seed=0, param="fft",
                       transforms=OURS_TRANSFORMS, size=size, objective="channel")
    sync(model.device)
    return time.perf_counter() - t, [r.activation for r in results]


def lucent(model, layer, channels, steps, size, mean_std):
    from lucent.optvis import param, render, transform

    c = model.input_shape[0]
    name = layer.path.replace(".", "_")
    tfs = list(transform.standard_transforms)
    if mean_std is not None:  # a 1-channel model: its own normalization, not ImageNet's
        mean, std = mean_std
        tfs.append(lambda t: (t - mean) / std)
    times, images = [], []
    for ch in channels:
        torch.manual_seed(ch)
        sync(model.device)
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = render.render_vis(
                model.module, f"{name}:{ch}",
                param_f=lambda: param.image(size, channels=None if c == 3 else c, fft=True),
                transforms=tfs, thresholds=(steps,), preprocess=mean_std is None,
                progress=False, show_image=False, fixed_image_size=size)
        sync(model.device)
        times.append(time.perf_counter() - t)
        images.append(torch.from_numpy(out[-1][0]).permute(2, 0, 1))
    return times, reached(model, layer, channels, torch.stack(images))


def compare(title, model, layer_name, n_units, steps, size, mean_std):
    layer = model.layer(layer_name)
    channels = list(range(n_units))
    units = [model.unit_name(layer, c) for c in channels]
    t_ours, act_ours = ours(model, units, steps, size)
    t_lucent, act_lucent = lucent(model, layer, channels, steps, size, mean_std)
    per_ours = 1000 * t_ours / n_units
    per_lucent = 1000 * sum(t_lucent) / n_units
    print(f"\n{title}: {n_units} units of {layer_name}, {size} px, {steps} steps")
    print(f"  ours   batched        {per_ours:9.1f} ms/unit  (total {t_ours:7.2f} s)  "
          f"mean activation {statistics.mean(act_ours):.4g}")
    print(f"  lucent one at a time  {per_lucent:9.1f} ms/unit  (total {sum(t_lucent):7.2f} s)  "
          f"mean activation {statistics.mean(act_lucent):.4g}")
    print(f"  ratio  {per_lucent / per_ours:.2f}x faster per unit")
    return per_lucent / per_ours


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--units", type=int, default=16)
    ap.add_argument("--device", default=None)
    ap.add_argument("--only", choices=("a", "b"), help="run one comparison")
    args = ap.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads")
    if args.only != "b":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            alexnet = load_model("alexnet", device=device)
        compare("(a) AlexNet, random weights", alexnet, "conv5", args.units, args.steps, 128, None)
    if args.only == "a":
        return
    from generator.vis.default import model as default_model
    default = load_model("default", device=device)
    compare("(b) default model", default, "conv5", args.units, args.steps, 64,
            (default_model.MEAN, default_model.STD))


if __name__ == "__main__":
    main()
