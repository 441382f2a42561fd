"""Atlas typical children and top labels equal an independent computation: plain
autograd with a hand-written guided ReLU, per top-k example, averaged (issue 16)."""
import numpy as np
import pytest
import torch
from PIL import Image

from generator.vis.core.models import load_model
from generator.vis.data.datasets import open_dataset
from generator.vis.kinds.atlas_edges import typical_edges
from generator.vis.kinds.atlas_stats import layer_stats

MODEL_SOURCE = '''
import numpy as np
import torch
from torch import nn

INPUT_SHAPE = (3, 12, 12)


def preprocess(image):
    a = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).contiguous() - 0.3


def factory():
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(5 * 6 * 6, 6), nn.ReLU(), nn.Linear(6, 3))
'''
K = 4


class Guided(torch.autograd.Function):
    """ReLU whose backward passes only positive gradients where the input was positive."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0) * (g > 0)


def forward_parts(net, x):
    """Pre-activations p and ReLU outputs h of the three hidden layers, guided ReLUs."""
    p1 = net[0](x)
    h1 = Guided.apply(p1)
    p2 = net[3](net[2](h1))
    h2 = Guided.apply(p2)
    p3 = net[6](net[5](h2))
    h3 = Guided.apply(p3)
    return (p1, p2, p3), (h1, h2, h3), net[8](h3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("atlas")
    (root / "tiny_net.py").write_text(MODEL_SOURCE)
    rng = np.random.default_rng(5)
    for i in range(19):
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8), "RGB").save(
            root / f"img{i:02d}.png")
    model = load_model(f"{root / 'tiny_net.py'}:factory", device="cpu")
    return model, open_dataset(str(root))


def reference(model, dataset, layer_pos: int, unit: int):
    """(mean child weights, mean label contributions) by plain autograd."""
    net = model.module
    xs = torch.stack([model.preprocess(dataset.image(i)) for i in range(len(dataset))])
    with torch.no_grad():
        _, hs, _ = forward_parts(net, xs)
    h = hs[layer_pos][:, unit]
    flat = h.flatten(1) if h.dim() == 3 else h.unsqueeze(1)
    best = flat.max(dim=1).values
    order = torch.sort(best, descending=True, stable=True).indices[:K].tolist()
    children, labels = [], []
    for i in order:
        x = xs[i:i + 1].clone().requires_grad_(True)
        ps, hs_i, logits = forward_parts(net, x)
        hu = hs_i[layer_pos][0, unit].flatten()
        loc = int(torch.argmax(hu.detach()))
        below = ps[layer_pos - 1]
        (g,) = torch.autograd.grad(hu[loc] * hu[loc].detach(), below, retain_graph=True)
        prod = hs_i[layer_pos - 1].detach()[0] * g[0]
        children.append((prod.flatten(1).mean(1) if prod.dim() == 3 else prod).abs())
        if layer_pos == 2:
            rows = []
            for label in range(logits.shape[1]):
                (gl,) = torch.autograd.grad(logits[0, label], ps[2], retain_graph=True)
                rows.append(hs_i[2].detach()[0, unit] * gl[0, unit])
            labels.append(torch.stack(rows))
    return torch.stack(children).mean(0), (torch.stack(labels).mean(0) if labels else None)


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("layer_pos", [1, 2])
def test_typical_children_equal_plain_autograd(tiny, layer_pos, batched):
    model, dataset = tiny
    layer = model.layers[layer_pos]
    stats = layer_stats(model, dataset, [layer.name])[layer.name]
    units = list(range(layer.size))
    tops = {u: stats.top(u, K) for u in units}
    last = layer_pos == 2
    children, labels = typical_edges(model, dataset, layer, units, tops, last, batched)
    below = model.below(layer)
    assert not last or any(labels[u] for u in units)
    assert sum(len(children[u]) for u in units) > len(units)
    for u in units:
        want, want_labels = reference(model, dataset, layer_pos, u)
        got = {w.name: w.weight for w in children[u]}
        live = [c for c in range(below.size) if want[c] > 1e-9]
        assert len(got) == min(8, len(live))
        for c in live:
            assert got[model.unit_name(below, c)] == pytest.approx(float(want[c]), rel=1e-4, abs=1e-6)
        order = [model.unit_name(below, c) for c in
                 torch.sort(want, descending=True, stable=True).indices.tolist() if want[c] > 1e-9]
        assert [w.name for w in children[u]] == order
        if last:
            expect = [(model.labels[i], float(want_labels[i])) for i in
                      torch.sort(want_labels, descending=True, stable=True).indices.tolist()
                      if want_labels[i] > 1e-9][:3]
            assert [w.name for w in labels[u]] == [n for n, _ in expect]
            for w, (_, v) in zip(labels[u], expect):
                assert w.weight == pytest.approx(v, rel=1e-4, abs=1e-6)
