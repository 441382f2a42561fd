"""Engine speed, measured side by side in one run (not a test).

(a) 64 conv5 unit images of AlexNet (random weights, 227x227): ours (one forward, one
    batched windowed backward) vs a loop of Captum's NeuronGuidedBackprop.
(b) a depth-5, 5-children hierarchy under an fc6 unit: ours (one batched backward per
    level) vs one backward per node (each node's local path on its own, batch 1).
(c) achieved GFLOP/s of our batched backwards vs a large matmul's, same run.

Needs captum (a bench-only dependency: pip install captum==0.9.0).
Usage: python bench/engine.py [--device cpu|cuda] [--repeat N]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator.vis.core.backprop import Backprop  # noqa: E402
from generator.vis.core.hierarchy import hierarchy, keep_channel  # noqa: E402
from generator.vis.core.models import describe_layers, load_model  # noqa: E402

SIZE = 227


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeat=1):
    """(best seconds over `repeat` runs, last result)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        sync(device)
        t = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best, out


def alexnet_227(device):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = load_model("alexnet", device=device)
    shape = (3, SIZE, SIZE)
    layers = describe_layers(m.module, {l.name: l.path for l in m.layers}, shape, m.device, m.name)
    return dataclasses.replace(m, input_shape=shape, layers=layers, engine_cache={})


def bench_units(m, x, device, repeat):
    conv5 = m.layer("conv5")
    units = [(conv5, c) for c in range(64)]
    from captum.attr import NeuronGuidedBackprop
    gbp = NeuronGuidedBackprop(m.module, m.module.features[11])
    inp = x.unsqueeze(0).to(device)
    probe = Backprop(m, x, "guided", method="chain")
    locs = [probe.location(conv5, c) for c in range(64)]

    def ours():
        bp = Backprop(m, x, "guided", method="chain")
        return bp, bp.unit_images(units)

    def captum_loop():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [gbp.attribute(inp, neuron_selector=(c, *locs[c])) for c in range(64)]

    # Interleaved, best of each: the machine may be shared, and load drifts.
    t_ours = t_captum = float("inf")
    for r in range(repeat):
        t, (bp, images) = timed(ours, device)
        t_ours = min(t_ours, t)
        if r < max(1, repeat - 1):
            t, theirs = timed(captum_loop, device)
            t_captum = min(t_captum, t)
    bp._impl.flops = 0
    t_back, _ = timed(lambda: bp.unit_images(units), device, repeat)
    flops = bp._impl.flops // repeat
    full = compile_full(m, x)
    t_full, _ = timed(lambda: full.backward(full_seeds(bp, conv5), conv5, [None]), device, 1)
    full_flops = full.flops
    # Same pictures up to the seed's value (Captum seeds with 1, we with the activation).
    worst = 0.0
    for c in range(64):
        a = float(bp.activation(conv5, c))
        if a > 0:
            ref = theirs[c][0] * a
            worst = max(worst, float((images[c] - ref).abs().max() / ref.abs().max().clamp(min=1e-30)))
    return dict(t_ours=t_ours, t_back=t_back, flops=flops, t_full=t_full, full_flops=full_flops,
                t_captum=t_captum, worst=worst)


def compile_full(m, x):
    from generator.vis.core.chain import compile_chain
    return compile_chain(m).forward(x.to(m.device), "guided", windowed=False)


def full_seeds(bp, layer):
    return bp.seeds(layer, list(range(64)))


def per_node_tree(bp, tree):
    """Every node of `tree` recomputed alone: its local path, one backward per step."""
    m = bp.model
    images = []
    for node in tree.walk():
        units = [m.parse_unit(u) for u in node.path]
        layer, index = units[0]
        g = bp.seeds(layer, [index])
        for child_layer, c in units[1:]:
            (g,) = bp.backward(g, layer, [child_layer])
            g = keep_channel(g, [c])
            layer = child_layer
        (image,) = bp.backward(g, layer, [None])
        images.append(image[0])
    return images


def bench_tree(m, x, device, repeat):
    bp = Backprop(m, x, "guided", method="chain")
    slow = Backprop(m, x, "guided", method="autograd")
    fc6 = m.layer("fc6")
    root = m.unit_name(fc6, int(torch.argmax(bp.acts["fc6"])))
    tree = hierarchy(bp, root, depth=5, children=5)
    t_ours = t_node_auto = t_node_chain = float("inf")
    for _ in range(repeat):  # interleaved, best of each
        bp._impl.flops = 0
        t, tree = timed(lambda: hierarchy(bp, root, depth=5, children=5), device)
        t_ours, flops = min(t_ours, t), bp._impl.flops
        t, imgs_auto = timed(lambda: per_node_tree(slow, tree), device)
        t_node_auto = min(t_node_auto, t)
        t, _ = timed(lambda: per_node_tree(bp, tree), device)
        t_node_chain = min(t_node_chain, t)
    nodes = list(tree.walk())
    worst = max(float((n.image - a).abs().max() / a.abs().max().clamp(min=1e-30))
                for n, a in zip(nodes, imgs_auto) if a.abs().max() > 0)
    return dict(t_ours=t_ours, flops=flops, t_node_auto=t_node_auto, t_node_chain=t_node_chain,
                nodes=len(nodes), worst=worst, root=root)


def bench_matmul(device, repeat):
    n = 2048
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    t, _ = timed(lambda: a @ b, device, repeat + 1)
    return 2 * n ** 3 / t


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    m = alexnet_227(device)
    x = torch.randn((3, SIZE, SIZE), generator=torch.Generator().manual_seed(0)).to(device)

    u = bench_units(m, x, device, args.repeat)
    print("\n(a) 64 conv5 unit images, AlexNet random weights, 227x227, guided")
    print(f"  ours (1 forward + 1 batched backward)   {u['t_ours'] * 1e3:9.1f} ms")
    print(f"  Captum NeuronGuidedBackprop x 64        {u['t_captum'] * 1e3:9.1f} ms"
          f"  ({u['t_captum'] / 64 * 1e3:.1f} ms a unit)")
    print(f"  ratio Captum / ours                     {u['t_captum'] / u['t_ours']:9.1f} x   (target >= 5)")
    print(f"  max relative difference to Captum       {u['worst']:9.2e}")

    t = bench_tree(m, x, device, args.repeat)
    print(f"\n(b) hierarchy under {t['root']}, depth 5, 5 children ({t['nodes']} nodes), guided")
    print(f"  ours (one batched backward per level)   {t['t_ours'] * 1e3:9.1f} ms")
    print(f"  one backward per node, autograd         {t['t_node_auto'] * 1e3:9.1f} ms")
    print(f"  one backward per node, our chain ops    {t['t_node_chain'] * 1e3:9.1f} ms")
    print(f"  ratio per-node autograd / ours          {t['t_node_auto'] / t['t_ours']:9.1f} x   (target >= 3)")
    print(f"  ratio per-node chain / ours             {t['t_node_chain'] / t['t_ours']:9.1f} x")
    print(f"  max relative difference                 {t['worst']:9.2e}")

    mm = bench_matmul(device, args.repeat)
    print("\n(c) achieved throughput")
    print(f"  2048^3 matmul                           {mm / 1e9:9.1f} GFLOP/s")
    print(f"  (a) batched backward: {u['flops'] / 1e9:.3f} GFLOP in {u['t_back'] * 1e3:.1f} ms"
          f" = {u['flops'] / u['t_back'] / 1e9:7.1f} GFLOP/s  ({u['flops'] / u['t_back'] / mm:.2f} of matmul)")
    print(f"      same 64 units on full maps: {u['full_flops'] / 1e9:.3f} GFLOP in {u['t_full'] * 1e3:.1f} ms"
          f" = {u['full_flops'] / u['t_full'] / 1e9:7.1f} GFLOP/s; windows skip "
          f"{1 - u['flops'] / u['full_flops']:.1%} of the work")
    print(f"  (b) hierarchy: {t['flops'] / 1e9:.3f} GFLOP in {t['t_ours'] * 1e3:.1f} ms"
          f" = {t['flops'] / t['t_ours'] / 1e9:7.1f} GFLOP/s  ({t['flops'] / t['t_ours'] / mm:.2f} of matmul)")


if __name__ == "__main__":
    main()
