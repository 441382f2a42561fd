"""Mining a dataset: for every unit of the chosen layers, its K strongest activations.

One streaming forward pass. For each unit we keep a running list of K entries
(image id, location r*W+s, activation); memory is units x K whatever the dataset size.
Per batch and layer, a max over each (image, unit) map and one comparison with the
unit's current K-th value find the few activations that can enter (see `batch_top`);
they are ranked by `torch.topk` on an integer key and merged with the running lists by a
sort of 2K entries per unit. Everything is vectorised over units; no map is copied.

Order (it decides ties, and makes every run give the same lists): higher activation
first (compared as floats, so -0.0 equals 0.0), then lower image id, then lower location
(row-major, r*W+s). Inside one batch the tie-break is the flat position (image,
location), which agrees with (id, location) because a batch holds consecutive ids in
increasing order.

The top K of a union is the top K of the union of the parts' top K, so the merge is
exact: across batches, across chunks of a resumed run, and across the ranks of a
`torch.distributed` job (each rank mines whole batches of a contiguous shard, so every
image is forwarded in the very same batch as in a single-process run).

Results are cached under `cache_dir` by (model weights, dataset content, K, layers); a
cached file with more layers or a larger K also serves a smaller request. While mining, the
running lists are checkpointed every few batches (atomically), and a re-run resumes from
the last checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                           TimeRemainingColumn)
from rich.text import Text
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from generator.vis.data.datasets import Dataset, batches, check_fits, open_dataset
from generator.vis.errors import EngineError
from generator.vis.core.taps import hook_output

MINING_VERSION = "2"  # 2: indexes and checkpoints carry a checksum of their tensors
DEFAULT_CACHE = Path(".cache/index")
INT64_MIN = torch.iinfo(torch.int64).min
INT64_MAX = torch.iinfo(torch.int64).max


# ---------------------------------------------------------------- the result

@dataclass
class LayerTopK:
    """Per unit (row), K entries sorted best first; empty entries have id -1."""

    values: torch.Tensor   # (U, K) float32, -inf where empty
    ids: torch.Tensor      # (U, K) int64 image ids
    locs: torch.Tensor     # (U, K) int64, r * width + s
    width: int             # W of the layer's map (1 for fc layers)


@dataclass
class TopK:
    """Mined top-K lists of several layers; `meta` says of which model and dataset."""

    k: int
    layers: dict[str, LayerTopK]
    meta: dict = field(default_factory=dict)

    def lookup(self, layer: str, unit: int, k: int | None = None) -> list[tuple[int, int, int, float]]:
        """Best-first [(image_id, r, s, activation)] of one unit (fewer if the dataset is small)."""
        if layer not in self.layers:
            raise EngineError(f"layer {layer!r} was not mined; mined layers: {', '.join(self.layers)}")
        t = self.layers[layer]
        if not 0 <= unit < t.values.shape[0]:
            raise EngineError(f"{layer} has {t.values.shape[0]} units (0..{t.values.shape[0] - 1}), not {unit}")
        n = self.k if k is None else min(k, self.k)
        out = []
        for i, loc, v in zip(t.ids[unit, :n].tolist(), t.locs[unit, :n].tolist(), t.values[unit, :n].tolist()):
            if i >= 0:
                out.append((i, loc // t.width, loc % t.width, v))
        return out

    def source(self, image_id: int) -> str | None:
        """The dataset's name of an image that appears in some list (path or array index)."""
        return self.meta.get("sources", {}).get(str(image_id))

    def label(self, image_id: int) -> str | None:
        return self.meta.get("labels", {}).get(str(image_id))

    def restrict(self, layers: list[str], k: int) -> "TopK":
        """The same lists for fewer layers and a smaller K (a prefix: the lists are sorted)."""
        picked = {n: LayerTopK(t.values[:, :k], t.ids[:, :k], t.locs[:, :k], t.width)
                  for n, t in self.layers.items() if n in layers}
        return TopK(k, picked, {**self.meta, "k": k, "layers": list(picked)})

    def save(self, path: Path) -> None:
        """Write atomically (a reader sees the old file or the new one)."""
        tensors = {}
        for name, t in self.layers.items():
            tensors[f"{name}/values"] = t.values.detach().cpu().contiguous()
            tensors[f"{name}/ids"] = t.ids.detach().cpu().contiguous()
            tensors[f"{name}/locs"] = t.locs.detach().cpu().contiguous()
        meta = {**self.meta, "k": self.k, "layers": list(self.layers),
                "widths": {n: t.width for n, t in self.layers.items()}}
        _save_atomic(tensors, {"featuretree": json.dumps(meta)}, Path(path))

    @classmethod
    def load(cls, path: Path) -> "TopK | None":
        """The index in `path`; None (with an EngineWarning, the file removed) when its
        bytes do not match their checksum, so the caller mines again."""
        meta, tensors = _read_meta(path), _load_verified(path)
        try:
            layers = {n: LayerTopK(tensors[f"{n}/values"], tensors[f"{n}/ids"], tensors[f"{n}/locs"],
                                   int(meta["widths"][n])) for n in meta["layers"]}
            return cls(int(meta["k"]), layers, meta)
        except (TypeError, KeyError, ValueError):
            _damaged(path, "top-K index")
            return None


# ---------------------------------------------------------------- order and merge

def select(values, ids, locs, k: int, span: int):
    """Per row, the best k entries by (value desc, id asc, loc asc), sorted; empties last.

    `span` bounds the locations (H*W), so id*span+loc orders by (id, loc).
    """
    empty = ids < 0
    second = (ids * span + locs).masked_fill(empty, INT64_MAX)
    by_second = torch.sort(second, dim=1, stable=True).indices
    first = values.masked_fill(empty, float("-inf")).gather(1, by_second)
    by_first = torch.sort(first, dim=1, descending=True, stable=True).indices
    order = by_second.gather(1, by_first)[:, :k]
    return values.gather(1, order), ids.gather(1, order), locs.gather(1, order)


def batch_top(act: torch.Tensor, ids: torch.Tensor, running, k: int, span: int,
              valid: torch.Tensor | None = None):
    """Fold one batch's activations (B, C[, H, W]) into a running (values, ids, locs) state.

    `ids` must be increasing and above every id already in `running`. Once a unit's list
    is full, an activation can only enter it if it is strictly above the list's k-th
    value (on a tie the older, lower id wins), so a max per (image, unit) and one
    comparison find the few candidates of a typical batch, without copying the map.
    While lists are still filling, the threshold is the batch's own k-th value per unit
    (from each (image, unit) row's top k), and of the candidates equal to it only the
    first ones by position are kept. Candidates are ranked exactly by an integer key
    (value, then position in the batch) and merged with the running lists by `select`.
    """
    b, c = act.shape[:2]
    rows = act.float().reshape(b, c, -1)
    hw = rows.shape[2]
    dev = rows.device
    values, old_ids, _ = running
    usable = None if valid is None else valid.to(dev)
    full = bool((old_ids[:, k - 1] >= 0).all())
    if full:
        thr = values[:, k - 1]
    else:
        thr = _batch_kth(rows, k, usable)
        thr = torch.where(old_ids[:, k - 1] >= 0, torch.maximum(thr, values[:, k - 1]), thr)
    peak = rows.amax(dim=2)
    hit = peak > thr.view(1, c) if full else peak >= thr.view(1, c)   # (B, C) rows to scan
    if usable is not None:
        hit &= usable.view(b, 1)
    bi, ci = hit.nonzero(as_tuple=True)
    if len(bi) == 0:
        return running
    sub = rows[bi, ci]
    line = thr[ci].view(-1, 1)
    ri, li = (sub > line if full else sub >= line).nonzero(as_tuple=True)
    bi, ci = bi[ri], ci[ri]
    order = torch.sort(ci, stable=True).indices         # by unit, then (image, location)
    bi, ci, li = bi[order], ci[order], li[order]
    cand = rows[bi, ci, li]
    counts = torch.bincount(ci, minlength=c)
    starts = torch.cumsum(counts, 0) - counts
    if not full:   # keep only the first (k - #greater) candidates that equal the threshold
        tie = cand == thr[ci]
        greater = torch.bincount(ci[~tie], minlength=c)
        before = torch.cumsum(tie.long(), 0) - tie.long()           # ties before, overall
        rank = before - before[starts.clamp(max=len(ci) - 1)][ci]    # ties before, in unit
        keep = ~tie | (rank < (k - greater)[ci])
        bi, ci, li, cand = bi[keep], ci[keep], li[keep], cand[keep]
        counts = torch.bincount(ci, minlength=c)
        starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(ci), device=dev) - starts[ci]
    width = int(counts.max())
    table_v = torch.full((c, width), float("-inf"), device=dev)
    table_i = torch.full((c, width), -1, dtype=torch.int64, device=dev)
    table_l = torch.zeros((c, width), dtype=torch.int64, device=dev)
    table_v[ci, slot] = cand
    table_i[ci, slot] = ids.to(dev)[bi]
    table_l[ci, slot] = li
    if width > 4 * k:   # many candidates: cut each unit to its best k before sorting
        key = torch.full((c, width), INT64_MIN, dtype=torch.int64, device=dev)
        key[ci, slot] = _rank_key(cand, bi * hw + li)
        best = torch.topk(key, k, dim=1, sorted=False).indices
        table_v, table_i, table_l = (t.gather(1, best) for t in (table_v, table_i, table_l))
    batch = (table_v, table_i, table_l)
    return select(*(torch.cat([r, p], 1) for r, p in zip(running, batch)), k, span)


def _batch_kth(rows: torch.Tensor, k: int, usable: torch.Tensor | None) -> torch.Tensor:
    """Per unit, the k-th largest value of one batch (B, C, L); -inf if fewer than k.

    Each (image, unit) row's top k holds all of that row's share of the unit's top k, so
    the k-th largest of those is exact; the map itself is never transposed.
    """
    b, c, hw = rows.shape
    part = torch.topk(rows, k, dim=2, sorted=False).values if hw > k else rows
    if usable is not None:
        part = part.masked_fill(~usable.view(b, 1, 1), float("-inf"))
    pool = part.transpose(0, 1).reshape(c, -1)
    if pool.shape[1] < k:
        return torch.full((c,), float("-inf"), device=rows.device)
    return torch.topk(pool, k, dim=1, sorted=False).values.amin(dim=1)


def _rank_key(values: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """int64 keys ordered like (value desc, pos asc): float order in the high 32 bits.

    Positions must be below 2**32. -0.0 is first turned into 0.0 so equal floats tie.
    """
    bits = (values + 0.0).view(torch.int32)
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)     # signed int order == float order
    return (ordered.to(torch.int64) << 32) | (0xFFFFFFFF - pos)


class _Stop(Exception):
    """Ends a forward pass once the last mined layer has been seen."""


class Miner:
    """Running top-K lists for some layers of a model, fed one batch at a time."""

    def __init__(self, model, layers, k: int):
        self.model, self.layers, self.k = model, list(layers), int(k)
        device = model.device
        self.span = {l.name: _span(l) for l in self.layers}
        self.width = {l.name: (l.shape[-1] if l.kind == "conv" else 1) for l in self.layers}
        self.state = {l.name: (torch.full((l.size, self.k), float("-inf"), device=device),
                               torch.full((l.size, self.k), -1, dtype=torch.int64, device=device),
                               torch.zeros((l.size, self.k), dtype=torch.int64, device=device))
                      for l in self.layers}
        self.last_id = -1

    def update(self, ids: torch.Tensor, x: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        """Fold one batch in: `ids` (B,) increasing, `x` (B, C, H, W) on the model's device."""
        last = self.layers[-1].name
        ids = ids.cpu()
        if int(ids[0]) <= self.last_id or bool((ids[1:] <= ids[:-1]).any()):
            raise ValueError("Miner.update needs increasing ids, above every id seen so far")
        self.last_id = int(ids[-1])
        ids = ids.to(self.model.device)
        if valid is not None and bool(valid.all()):
            valid = None

        def hook(name):
            def fn(mod, args, out):
                self.state[name] = batch_top(out, ids, self.state[name], self.k,
                                             self.span[name], valid)
                if name == last:
                    raise _Stop
            return fn

        handles = [hook_output(self.model.module, l.path, hook(l.name)) for l in self.layers]
        try:
            with torch.inference_mode():
                self.model.module(x)
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()

    def merge(self, others: list[dict]) -> None:
        """Fold in other running states (same layers and K), e.g. other ranks' shards."""
        for name in self.state:
            parts = [self.state[name]] + [o[name] for o in others]
            self.state[name] = select(*(torch.cat([p[j].to(self.model.device) for p in parts], 1)
                                        for j in range(3)), self.k, self.span[name])

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f"{n}/{part}": t.detach().cpu().contiguous()
                for n, s in self.state.items() for part, t in zip(("values", "ids", "locs"), s)}

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        dev = self.model.device
        self.state = {n: tuple(tensors[f"{n}/{p}"].to(dev) for p in ("values", "ids", "locs"))
                      for n in self.state}
        self.last_id = max(int(s[1].max()) for s in self.state.values())


def _span(layer) -> int:
    return int(layer.shape[-2] * layer.shape[-1]) if layer.kind == "conv" else 1


# ---------------------------------------------------------------- distributed

def dist_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torch.distributed."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str | None = None) -> str | None:
    """Join the process group torchrun describes (env WORLD_SIZE > 1); the device to use.

    nccl on CUDA (one GPU per local rank), gloo on CPU. Returns `device` unchanged when
    not launched by torchrun.
    """
    import torch.distributed as dist
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    if cuda:
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    dist.init_process_group("nccl" if cuda else "gloo")
    return device or "cpu"


@contextmanager
def process_group(device: str | None = None):
    """`init_distributed` for the length of a command, then leave the group cleanly.

    A rank that exits while gloo's threads still run aborts ("terminate called without an
    active exception", SIGABRT) and torchrun reports the whole run failed although its
    work was done. So every rank waits at a barrier once the work succeeded, then
    destroys the group it joined (after a failure it only destroys: a barrier would wait
    for ranks that may never come)."""
    import torch.distributed as dist
    was = dist.is_initialized()
    device = init_distributed(device)
    joined = not was and dist.is_initialized()     # a group this call made is its to leave
    try:
        yield device
        if joined:
            dist.barrier()
    finally:
        if joined and dist.is_initialized():
            dist.destroy_process_group()


def batch_shard(n: int, batch_size: int, rank: int, world: int) -> tuple[int, int]:
    """Rank `rank`'s contiguous run [lo, hi) of the ceil(n / batch_size) batches: whole
    batches, so every rank's batches are the ones one process would read."""
    n_batches = math.ceil(n / batch_size)
    return n_batches * rank // world, n_batches * (rank + 1) // world


def _gather_states(miner: Miner) -> list[dict]:
    """Every other rank's running state (all ranks call this together)."""
    import torch.distributed as dist
    rank, world = dist_info()
    cpu = dist.get_backend() == "gloo"
    others = [{} for _ in range(world)]
    for name, parts in miner.state.items():
        for j, t in enumerate(parts):
            t = t.cpu() if cpu else t
            bucket = [torch.empty_like(t) for _ in range(world)]
            dist.all_gather(bucket, t.contiguous())
            for r in range(world):
                others[r].setdefault(name, [None, None, None])[j] = bucket[r]
    return [o for r, o in enumerate(others) if r != rank]


def _all_sum(n: int, device) -> int:
    import torch.distributed as dist
    if dist_info()[1] == 1:
        return n
    t = torch.tensor([n], dtype=torch.int64, device="cpu" if dist.get_backend() == "gloo" else device)
    dist.all_reduce(t)
    return int(t.item())


def _all_agree(flag: bool, device) -> bool:
    """True only if every rank says True."""
    import torch.distributed as dist
    if dist_info()[1] == 1:
        return flag
    t = torch.tensor([int(flag)], dtype=torch.int64, device="cpu" if dist.get_backend() == "gloo" else device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


# ---------------------------------------------------------------- the pass

def mine(model, dataset: Dataset, k: int, layers, *, batch_size: int = 64, workers: int = 0,
         checkpoint: Path | None = None, key: str = "", chunk_batches: int = 16,
         progress: bool = True, on_chunk: Callable[[int], None] | None = None) -> TopK:
    """One forward pass over `dataset` (this rank's shard), merged over ranks.

    `checkpoint` (a path) is written every `chunk_batches` batches and resumed from when it
    holds the same `key` and shard; `on_chunk(next_batch)` runs after each write.
    """
    rank, world = dist_info()
    miner = Miner(model, layers, k)
    lo, hi = batch_shard(len(dataset), batch_size, rank, world)
    shard = f"{key}|{lo}:{hi}|{batch_size}"
    start, unreadable = lo, 0
    if checkpoint is not None and Path(checkpoint).is_file():
        meta = _read_meta(checkpoint)
        tensors = _load_verified(checkpoint) if meta is not None and meta.get("shard") == shard else None
        if tensors is not None:
            miner.load_tensors(tensors)
            start, unreadable = int(meta["next_batch"]), int(meta["unreadable"])
        elif meta is None or meta.get("shard") == shard:
            _damaged(Path(checkpoint), "mining checkpoint")
    ids = range(start * batch_size, min(hi * batch_size, len(dataset)))
    bar = _Progress(len(range(lo * batch_size, min(hi * batch_size, len(dataset)))),
                    (start - lo) * batch_size, enabled=progress and rank == 0,
                    label=f"mining {dataset.spec}" + (f" (rank 0 of {world})" if world > 1 else ""))
    with bar:
        done = start
        for batch_ids, x, ok in batches(dataset, model.preprocess, ids, batch_size, workers,
                                        tuple(model.input_shape)):
            miner.update(batch_ids, x.to(model.device, non_blocking=True), ok)
            unreadable += int((~ok).sum())
            done += 1
            bar.advance(len(batch_ids))
            if checkpoint is not None and ((done - lo) % chunk_batches == 0 or done == hi):
                _save_atomic(miner.tensors(), {"featuretree": json.dumps(
                    {"shard": shard, "next_batch": done, "unreadable": unreadable})}, Path(checkpoint))
                if on_chunk is not None:
                    on_chunk(done)
    if world > 1:
        miner.merge(_gather_states(miner))
        unreadable = _all_sum(unreadable, model.device)
    return _result(model, dataset, miner, unreadable)


def _result(model, dataset: Dataset, miner: Miner, unreadable: int) -> TopK:
    layers = {l.name: LayerTopK(*miner.state[l.name], miner.width[l.name]) for l in miner.layers}
    used = sorted({i for t in layers.values() for i in t.ids.unique().tolist() if i >= 0})
    meta = {
        "version": MINING_VERSION, "model": model.name, "weights_digest": model.weights_digest,
        "dataset": dataset.spec, "dataset_digest": dataset.digest, "images": len(dataset),
        "unreadable": unreadable + len(dataset.skipped),
        "paths": {l.name: l.path for l in miner.layers},
        "sources": {str(i): dataset.names[i] for i in used},
        "labels": {str(i): dataset.labels[i] for i in used if dataset.labels[i] is not None},
    }
    return TopK(miner.k, layers, meta)


# ---------------------------------------------------------------- cache

def resolve_layers(model, layers) -> list:
    """Layer objects for names (None: all), in the model's forward order."""
    if layers is None:
        return list(model.layers)
    if isinstance(layers, str):
        layers = [n for n in layers.split(",") if n.strip()]
    wanted = {model.layer(n.strip()).name for n in layers}
    if not wanted:
        raise EngineError(f"no layers to mine; {model.name}'s layers are {', '.join(model.layer_names)}")
    return [l for l in model.layers if l.name in wanted]


def cache_base(model, dataset: Dataset) -> str:
    """What a cached index is of: the model (weights, input) and the dataset's content."""
    ident = json.dumps([MINING_VERSION, model.name, model.weights_digest,
                        list(model.input_shape), dataset.digest])
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


def cache_name(model, dataset: Dataset, k: int, layers) -> str:
    mined = json.dumps([[l.name, l.path] for l in layers])
    return f"{cache_base(model, dataset)}-k{k}-{hashlib.sha256(mined.encode()).hexdigest()[:12]}"


def find_cached(cache_dir: Path, model, dataset: Dataset, k: int, layers) -> Path | None:
    """A cached index with at least these layers and at least this K, if any."""
    want = {l.name: l.path for l in layers}
    exact = Path(cache_dir) / f"{cache_name(model, dataset, k, layers)}.safetensors"
    candidates = [exact] + sorted(Path(cache_dir).glob(f"{cache_base(model, dataset)}-k*.safetensors"))
    for path in candidates:
        meta = _read_meta(path) if path.is_file() else None
        if meta is None and path.is_file():
            _damaged(path, "top-K index")
        if meta and int(meta.get("k", 0)) >= k and all(meta.get("paths", {}).get(n) == p for n, p in want.items()):
            return path
    return None


def load_or_mine(model, dataset_spec, k: int = 16, layers=None, cache_dir=DEFAULT_CACHE,
                 progress: bool = True, *, batch_size: int = 64, workers: int | None = None,
                 chunk_batches: int = 16, on_chunk=None) -> TopK:
    """The top-K index of (model, dataset) for `layers`, from the cache or mined now.

    `dataset_spec` is a spec string (see `generator.vis.data.datasets`) or an open `Dataset`.
    Under torch.distributed every rank calls this; rank 0 writes the cache.
    """
    if k < 1:
        raise EngineError(f"top K must be at least 1, not {k}")
    if batch_size < 1:
        raise EngineError(f"batch size must be at least 1, not {batch_size}")
    cache_dir = Path(cache_dir)
    dataset = dataset_spec if isinstance(dataset_spec, Dataset) else open_dataset(
        dataset_spec, memo_dir=cache_dir / "files")
    check_fits(dataset, model)
    chosen = resolve_layers(model, layers)
    names = [l.name for l in chosen]
    found = find_cached(cache_dir, model, dataset, k, chosen)
    cached = TopK.load(found) if found is not None else None
    if _all_agree(cached is not None, model.device):
        topk = cached.restrict(names, k)
        topk.meta.update(path=str(found), mined=False)
        return topk
    rank, world = dist_info()
    name = cache_name(model, dataset, k, chosen)
    if workers is None:
        workers = 0 if dataset.arrays is not None else min(4, max(0, (os.cpu_count() or 1) - 1))
    topk = mine(model, dataset, k, chosen, batch_size=batch_size, workers=workers,
                checkpoint=cache_dir / f"{name}.part{rank}of{world}.safetensors", key=name,
                chunk_batches=chunk_batches, progress=progress, on_chunk=on_chunk)
    if rank == 0:
        topk.save(cache_dir / f"{name}.safetensors")
    (cache_dir / f"{name}.part{rank}of{world}.safetensors").unlink(missing_ok=True)
    topk.meta.update(path=str(cache_dir / f"{name}.safetensors"), mined=True)
    return topk


# ---------------------------------------------------------------- files and progress

def _checksum(tensors: dict) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _load_verified(path: Path) -> dict | None:
    """The tensors of an index or checkpoint, None when unreadable or when they do not
    match the checksum `_save_atomic` stored (a damaged file is never mined from)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            want = (f.metadata() or {}).get("featuretree_checksum")
        tensors = load_file(str(path))
    except Exception:   # safetensors raises its own error types for damaged headers
        return None
    return tensors if want is not None and _checksum(tensors) == want else None


def _damaged(path: Path, what: str) -> None:
    """Report a damaged cache file once (it is removed, then made again)."""
    import warnings

    from generator.vis.errors import EngineWarning

    path.unlink(missing_ok=True)
    warnings.warn(f"damaged {what} {path} removed; mining again", EngineWarning, stacklevel=2)


def _save_atomic(tensors: dict, metadata: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {**metadata, "featuretree_checksum": _checksum(tensors)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_meta(path: Path) -> dict | None:
    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {})["featuretree"])
    except Exception:   # damaged or foreign file: treated as absent
        return None


class _Progress:
    """A rich progress bar in images and images/s (or nothing when disabled)."""

    def __init__(self, total: int, completed: int, enabled: bool, label: str):
        self.enabled = enabled
        if enabled:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), _RateColumn(), TimeRemainingColumn(),
                                     transient=False)
            self.task = self.progress.add_task(label, total=total, completed=completed)

    def __enter__(self):
        if self.enabled:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.__exit__(*exc)

    def advance(self, n: int) -> None:
        if self.enabled:
            self.progress.advance(self.task, n)


class _RateColumn(ProgressColumn):
    """Images per second, measured by rich over the recent batches."""

    def render(self, task):
        return Text(f"{task.speed:,.0f} images/s" if task.speed else "... images/s")
