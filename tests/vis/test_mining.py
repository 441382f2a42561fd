"""Mining: the streamed top-K equals brute force; resume, cache, torchrun and bad input."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from generator.cli import main
from generator.vis.data.datasets import open_dataset
from generator.vis.errors import EngineError
from generator.vis.data.mining import TopK, batch_top, load_or_mine
from generator.vis.core.models import load_model

ROOT = Path(__file__).resolve().parents[2]

MODEL_SOURCE = '''
import numpy as np
import torch
from torch import nn

INPUT_SHAPE = (3, 12, 12)


def preprocess(image):
    a = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).contiguous() - 0.3


def factory():
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(5 * 6 * 6, 6), nn.ReLU(), nn.Linear(6, 3))
    with torch.no_grad():
        net[3].bias[0] = -100.0   # a dead unit: all zeros, ties everywhere
    return net
'''


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model file ref, image folder): 23 quantized RGB images with flat regions and
    exact duplicates, so equal activations (ties) are common."""
    root = tmp_path_factory.mktemp("mining")
    (root / "tiny_net.py").write_text(MODEL_SOURCE)
    images = root / "images"
    rng = np.random.default_rng(3)
    arrays = []
    for i in range(23):
        a = rng.choice(np.array([0, 128, 255], dtype=np.uint8), size=(12, 12, 3))
        if i % 3 == 0:
            a[:, : 6 + i % 5] = a[0, 0]           # a flat region
        if i in (5, 17):
            a = arrays[i - 3].copy()              # exact duplicates of earlier images
        arrays.append(a)
        sub = images / ("b" if i % 2 else "a")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a, "RGB").save(sub / f"img{i:02d}.png")
    return f"{root / 'tiny_net.py'}:factory", images


def activations(model, dataset, batch_size):
    """Every layer's activations over the dataset, batch by batch as the miner sees them."""
    outs = {l.name: [] for l in model.layers}
    modules = dict(model.module.named_modules())
    hooks = [modules[l.path].register_forward_hook(
        lambda m, a, o, n=l.name: outs[n].append(o.detach().clone())) for l in model.layers]
    with torch.no_grad():
        for i in range(0, len(dataset), batch_size):
            x = torch.stack([model.preprocess(dataset.image(j))
                             for j in range(i, min(i + batch_size, len(dataset)))])
            model.module(x)
    for h in hooks:
        h.remove()
    return {n: torch.cat(v) for n, v in outs.items()}


def brute_force(acts: torch.Tensor, unit: int, k: int):
    """Sort every (activation, image, location) of one unit: value desc, id asc, loc asc."""
    a = acts[:, unit].reshape(acts.shape[0], -1)
    width = acts.shape[-1] if acts.dim() == 4 else 1
    entries = [(-a[i, loc].item(), i, loc) for i in range(a.shape[0]) for loc in range(a.shape[1])]
    entries.sort()
    return [(i, loc // width, loc % width, -v) for v, i, loc in entries[:k]]


@pytest.mark.parametrize("k,batch_size", [(4, 5), (30, 4)])
def test_mined_top_k_equals_brute_force(tiny, tmp_path, k, batch_size):
    ref, images = tiny
    model = load_model(ref, device="cpu")
    dataset = open_dataset(str(images))
    topk = load_or_mine(model, dataset, k, None, tmp_path, progress=False, batch_size=batch_size)
    acts = activations(model, dataset, batch_size)
    for layer in model.layers:
        for unit in range(layer.size):
            assert topk.lookup(layer.name, unit) == brute_force(acts[layer.name], unit, k), (layer.name, unit)
    assert topk.lookup(model.layers[1].name, 0)[0][3] == 0.0     # the dead unit: ties at 0


@pytest.mark.parametrize("rising", [False, True])
def test_batch_folding_with_heavy_ties_and_unreadable_images(rising):
    """Integer-valued activations (ties everywhere), several batches, some images masked;
    `rising`: every batch beats the lists so far (many candidates per unit)."""
    gen = torch.Generator().manual_seed(0)
    k, b, c, h, w = 6, 7, 5, 3, 4
    span = h * w
    running = (torch.full((c, k), float("-inf")), torch.full((c, k), -1), torch.zeros((c, k), dtype=torch.int64))
    seen, valid_all = [], []
    for batch in range(6):
        act = torch.randint(0, 4, (b, c, h, w), generator=gen).float() + (10.0 * batch if rising else 0.0)
        act[:, 1] = 0.0                                  # a dead unit
        valid = torch.rand(b, generator=gen) > 0.2
        ids = torch.arange(batch * b, (batch + 1) * b)
        running = batch_top(act, ids, running, k, span, valid)
        seen.append(act)
        valid_all.append(valid)
    acts, valid = torch.cat(seen), torch.cat(valid_all)
    for unit in range(c):
        expected = [e for e in brute_force(acts[valid], unit, len(acts))]
        real_ids = valid.nonzero().squeeze(1).tolist()
        expected = sorted(((-v, real_ids[i], r * w + s) for i, r, s, v in expected))[:k]
        got = [(-v, i, l) for v, i, l in zip(*(t[unit].tolist() for t in running))]
        assert got == expected, unit


def test_interrupted_run_resumes_from_last_checkpoint(tiny, tmp_path):
    ref, images = tiny
    model = load_model(ref, device="cpu")
    dataset = open_dataset(str(images))
    whole = load_or_mine(model, dataset, 5, None, tmp_path / "whole", progress=False, batch_size=3)

    class Injected(Exception):
        pass

    def stop_after_two(next_batch):
        if next_batch == 2:
            raise Injected

    with pytest.raises(Injected):
        load_or_mine(model, dataset, 5, None, tmp_path / "cut", progress=False, batch_size=3,
                     chunk_batches=1, on_chunk=stop_after_two)
    assert list((tmp_path / "cut").glob("*.part0of1.safetensors"))
    chunks = []
    resumed = load_or_mine(model, dataset, 5, None, tmp_path / "cut", progress=False,
                           batch_size=3, chunk_batches=1, on_chunk=chunks.append)
    assert chunks[0] == 3                   # started after the two finished batches
    assert not list((tmp_path / "cut").glob("*.part*"))
    for name in whole.layers:
        for part in ("values", "ids", "locs"):
            assert torch.equal(getattr(resumed.layers[name], part), getattr(whole.layers[name], part))


def test_cache_is_reused_for_fewer_layers_and_smaller_k(tiny, tmp_path):
    ref, images = tiny
    model = load_model(ref, device="cpu")
    full = load_or_mine(model, str(images), 6, None, tmp_path, progress=False, batch_size=8)
    assert full.meta["mined"]
    calls = []
    small = load_or_mine(model, str(images), 2, [model.layers[0].name], tmp_path, progress=False,
                         on_chunk=calls.append)
    assert not calls and not small.meta["mined"] and list(small.layers) == [model.layers[0].name]
    assert small.lookup(model.layers[0].name, 1) == full.lookup(model.layers[0].name, 1)[:2]
    again = TopK.load(Path(full.meta["path"]))
    assert again.source(again.lookup(model.layers[-1].name, 0)[0][0]).endswith(".png")


def test_torchrun_two_ranks_equal_one_process(tiny, tmp_path):
    """`build.py index` under torchrun (gloo, 2 CPU ranks) writes exactly the same index."""
    ref, images = tiny
    model = load_model(ref, device="cpu")
    single = load_or_mine(model, str(images), 5, None, tmp_path / "one", progress=False, batch_size=3)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(ROOT / "build.py"), "index", "--model", ref, "--dataset", str(images), "--top", "5",
         "--batch-size", "3", "--cache", str(tmp_path / "two"), "--device", "cpu", "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "on 2 ranks" in proc.stdout
    (written,) = (tmp_path / "two").glob("*-k5-*.safetensors")
    a, b = load_file(single.meta["path"]), load_file(str(written))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _cli(*args):
    return CliRunner().invoke(main, ["index", *args])


def test_unreadable_files_are_skipped_and_counted(tiny, tmp_path):
    ref, images = tiny
    folder = tmp_path / "data"
    for i, src in enumerate(sorted(images.rglob("*.png"))[:6]):
        (folder / src.parent.name).mkdir(parents=True, exist_ok=True)
        (folder / src.parent.name / src.name).write_bytes(src.read_bytes())
    (folder / "a" / "garbage.png").write_bytes(b"not an image at all")
    good = (folder / "a" / "img00.png").read_bytes()
    (folder / "a" / "truncated.png").write_bytes(good[: len(good) // 2])   # header fine, data cut
    result = _cli("--model", ref, "--dataset", str(folder), "--top", "3", "--cache", str(tmp_path / "c"),
                  "--device", "cpu", "--quiet")
    assert result.exit_code == 0, result.output
    assert "(2 unreadable, skipped)" in result.output
    topk = load_or_mine(load_model(ref, device="cpu"), str(folder), 3, None, tmp_path / "c", progress=False)
    truncated = open_dataset(str(folder)).names.index(os.path.join("a", "truncated.png"))
    assert all(i != truncated for t in topk.layers.values() for i in t.ids.flatten().tolist())


@pytest.mark.parametrize("make,message", [
    (lambda d: None, "holds no images"),
    (lambda d: [Image.new("RGB", (12, 12)).save(d / "x.png"), Image.new("L", (12, 12)).save(d / "y.png")],
     "mixes image modes: L (e.g. y.png), RGB (e.g. x.png)"),
    (lambda d: [Image.new("L", (12, 12)).save(d / "x.png")], "has L images (1 channel) but model"),
    (lambda d: (d / "bad.jpg").write_bytes(b"\xff\xd8 junk"), "none of its 1 image files can be read"),
])
def test_bad_datasets_are_one_line_errors(tiny, tmp_path, make, message):
    ref, _ = tiny
    folder = tmp_path / "d"
    folder.mkdir()
    make(folder)
    result = _cli("--model", ref, "--dataset", str(folder), "--cache", str(tmp_path / "c"), "--device", "cpu")
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_arguments_name_the_problem(tiny, tmp_path):
    ref, images = tiny
    result = _cli("--model", ref, "--dataset", str(images), "--layers", "conv9", "--cache", str(tmp_path))
    assert result.exit_code == 2 and "no layer 'conv9'" in result.output
    with pytest.raises(EngineError, match="split must be train or test"):
        open_dataset("fashion-mnist:validation")


def test_dataset_specs_number_images_by_content(tmp_path):
    root = tmp_path / "tree"
    for cls, n in (("cat", 2), ("dog", 3)):
        (root / cls / "sub").mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (4, 4), (i * 40, 0, 0)).save(root / cls / "sub" / f"{i}.png")
    Image.new("RGB", (4, 4)).save(root / "loose.png")             # not in a class folder
    tree = open_dataset(f"imagefolder:{root}")
    assert tree.labels == ["cat"] * 2 + ["dog"] * 3 and "loose.png" not in tree.names
    memo = tmp_path / "memo"
    folder = open_dataset(str(root), memo_dir=memo)
    assert folder.names[0] == os.path.join("cat", "sub", "0.png") and len(folder) == 6
    assert folder.labels == [None] * 6 and folder.mode == "RGB"
    assert open_dataset(str(root), memo_dir=memo).digest == folder.digest   # memo reused
    Image.new("RGB", (5, 5), (1, 2, 3)).save(root / "loose.png")
    assert open_dataset(str(root), memo_dir=memo).digest != folder.digest   # content counts


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="needs Debian's dataset-fashion-mnist (make test installs it when it can)")
def test_fashion_mnist_dataset_reads_the_debian_files():
    fashion = open_dataset("fashion-mnist:test")
    assert len(fashion) == 10000 and fashion.mode == "L" and fashion.image(0).size == (28, 28)
    assert fashion.labels[0] == "Ankle boot"
