"""The atlas's streaming statistics equal a computation over the whole activation matrix
held at once (issue 16): top-k with ties to the lower image id, histogram, mean, max."""
import numpy as np
import pytest
import torch
from PIL import Image

from generator.vis.core.models import load_model
from generator.vis.data.datasets import open_dataset
from generator.vis.kinds import atlas_stats
from generator.vis.kinds.atlas_types import BINS

from test_atlas_edges import MODEL_SOURCE, forward_parts


@pytest.fixture(scope="module")
def tied(tmp_path_factory):
    """22 images, some repeated (equal activations: ties), and a file that does not decode."""
    root = tmp_path_factory.mktemp("stats")
    (root / "tiny_net.py").write_text(MODEL_SOURCE)
    rng = np.random.default_rng(7)
    pics = [rng.integers(0, 256, (12, 12, 3), dtype=np.uint8) for _ in range(15)]
    for i in range(22):
        Image.fromarray(pics[i % 15 if i % 4 else 0], "RGB").save(root / f"img{i:02d}.png")
    (root / "img22.png").write_bytes(b"not a png")
    return load_model(f"{root / 'tiny_net.py'}:factory", device="cpu"), open_dataset(str(root))


def whole(model, dataset, layer_pos):
    """(N, U) max-over-space activations and first argmaxes, NaN rows for unreadable images."""
    rows, locs = [], []
    for i in range(len(dataset)):
        try:
            x = model.preprocess(dataset.image(i))[None]
        except Exception:
            rows.append(None), locs.append(None)
            continue
        with torch.no_grad():
            h = forward_parts(model.module, x)[1][layer_pos][0]
        flat = h.flatten(1) if h.dim() == 3 else h[:, None]
        v, loc = flat.max(dim=1)
        rows.append(v), locs.append(loc)
    return rows, locs


@pytest.mark.parametrize("layer_pos", [0, 1, 2])
def test_streamed_stats_equal_the_whole_matrix(tied, layer_pos, monkeypatch):
    model, dataset = tied
    monkeypatch.setattr(atlas_stats, "BATCH", 4)      # many merges
    layer = model.layers[layer_pos]
    seen = []
    stats = atlas_stats.layer_stats(model, dataset, [layer.name], lambda *a: seen.append(a[0]), k=6)
    stats = stats[layer.name]
    assert seen[0] == "mining" and seen[-1] == "histograms"
    rows, locs = whole(model, dataset, layer_pos)
    good = [i for i, r in enumerate(rows) if r is not None]
    assert len(good) == len(dataset) == 22 and dataset.skipped == ["img22.png"]
    values = torch.stack([rows[i] for i in good]).double()
    width = layer.shape[-1] if layer.kind == "conv" else 1
    for u in range(layer.size):
        col = values[:, u]
        order = sorted(range(len(good)), key=lambda j: (-float(col[j]), good[j]))[:6]
        want = [(good[j], int(locs[good[j]][u]) // width, int(locs[good[j]][u]) % width) for j in order]
        got = stats.top(u, 6)
        assert [g[:3] for g in got] == want
        assert [g[3] for g in got] == pytest.approx([float(col[j]) for j in order], abs=1e-6)
        hist, mean, top = stats.histogram(u)
        lo, hi = float(col.min()), float(col.max())
        bins = [0] * BINS
        for v in col.tolist():
            bins[min(BINS - 1, int((v - lo) / (hi - lo) * BINS)) if hi > lo else 0] += 1
        assert hist.counts == bins and sum(bins) == len(good)
        assert (hist.lo, hist.hi, top) == pytest.approx((lo, hi, hi), abs=1e-6)
        assert mean == pytest.approx(float(col.mean()), abs=1e-6)
    # ties: the repeated image 0 (ids 0, 4, 8, ...) comes out in id order
    tops = [stats.top(u, 6) for u in range(layer.size)]
    assert any(len({round(t[3], 9) for t in top}) < len(top) for top in tops)


def test_memory_does_not_grow_with_the_dataset(tied):
    model, dataset = tied
    layer = model.layers[1]
    s = atlas_stats.layer_stats(model, dataset, [layer.name], k=3)[layer.name]
    assert s.top_values.shape == (layer.size, 3) and s.counts.shape == (layer.size, BINS)
    with pytest.raises(ValueError):
        s.top(0, 4)


@pytest.mark.parametrize("cuts", [(0, 5, 11, 22), (0, 0, 22), (0, 8, 8, 22)])
def test_shards_merged_in_rank_order_equal_one_pass(tied, cuts):
    """What ranks do: each adds its contiguous shard, rank 0's state merges the others'
    (empty shards included); top-k, ties, sums and ranges equal one process's."""
    model, dataset = tied
    layer = model.layers[1]
    rows, locs = whole(model, dataset, 1)
    values, where = torch.stack(rows), torch.stack(locs)
    width = layer.shape[-1]
    one = atlas_stats.LayerStats.empty(layer.size, width, 5)
    one.add(torch.arange(22), values, where)
    parts = []
    for a, b in zip(cuts, cuts[1:]):
        s = atlas_stats.LayerStats.empty(layer.size, width, 5)
        s.add(torch.arange(a, b), values[a:b], where[a:b])
        parts.append(s)
    parts[0].merge(parts[1:])
    m = parts[0]
    assert torch.equal(m.top_ids, one.top_ids) and torch.equal(m.top_locs, one.top_locs)
    assert torch.equal(m.top_values, one.top_values) and m.count == one.count == 22
    assert torch.equal(m.lo, one.lo) and torch.equal(m.hi, one.hi)
    assert torch.allclose(m.total, one.total, rtol=1e-12)


def test_shards_are_contiguous_whole_batches():
    assert [atlas_stats._shard(300, r, 3) for r in range(3)] == [range(0, 64), range(64, 192), range(192, 300)]
    assert [atlas_stats._shard(9, r, 2) for r in range(2)] == [range(0, 0), range(0, 9)]
