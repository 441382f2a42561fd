"""Deterministic training and evaluation of the default model.

The same seed, thread count and data give bit-identical weights: the seed drives weight
initialization, shuffling, flips and dropout; deterministic algorithms and a fixed number
of CPU threads remove the remaining run-to-run differences in float reductions.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from generator.vis.default import model as default_model


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the trained weights besides the data; recorded in the card."""

    epochs: int = 4
    seed: int = 0
    batch_size: int = 128
    optimizer: str = "AdamW"
    max_lr: float = 2e-3
    weight_decay: float = 5e-4
    schedule: str = "OneCycleLR"
    horizontal_flip: bool = True
    threads: int = 2


@contextmanager
def deterministic(seed: int, threads: int):
    """Seed torch, force deterministic kernels and pin the thread count; restore them after."""
    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    old_rng = torch.get_rng_state()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(old_rng)
        torch.use_deterministic_algorithms(old_deterministic)
        torch.set_num_threads(old_threads)


StepHook = Callable[[int, int, float], None]         # (epoch, step within epoch, loss)
EpochHook = Callable[[int, nn.Module, float, float], None]  # (epoch, model, mean loss, seconds)


def train(images: np.ndarray, labels: np.ndarray, recipe: Recipe,
          on_step: StepHook | None = None, on_epoch: EpochHook | None = None) -> nn.Module:
    """A freshly initialized default model trained on uint8 `images` (N, 28, 28) and `labels`."""
    x_all = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
    y_all = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))
    n = len(x_all)
    steps = -(-n // recipe.batch_size)
    with deterministic(recipe.seed, recipe.threads):
        model = default_model.build()
        generator = torch.Generator().manual_seed(recipe.seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.max_lr,
                                      weight_decay=recipe.weight_decay)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=recipe.max_lr, total_steps=recipe.epochs * steps)
        for epoch in range(recipe.epochs):
            model.train()
            started = time.perf_counter()
            order = torch.randperm(n, generator=generator)
            total = 0.0
            for step in range(steps):
                batch = order[step * recipe.batch_size:(step + 1) * recipe.batch_size]
                x, y = x_all[batch], y_all[batch]
                if recipe.horizontal_flip:
                    flip = torch.rand(len(batch), generator=generator) < 0.5
                    x = torch.where(flip[:, None, None], x.flip(-1), x)
                loss = F.cross_entropy(model(default_model.to_input(x)), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item() * len(batch)
                if on_step is not None:
                    on_step(epoch, step, loss.item())
            if on_epoch is not None:
                on_epoch(epoch, model, total / n, time.perf_counter() - started)
    model.eval()
    return model


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Predicted class of every uint8 image (N, 28, 28), in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size], dtype=np.uint8))
        out.append(model(default_model.to_input(x.to(device))).argmax(1).cpu())
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def round_for_storage(model: nn.Module, dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
    """The weights rounded to `dtype` for the checkpoint; the model is updated to the rounded
    values, so whatever is measured next is what ships."""
    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return state


def save_checkpoint(path: Path, state: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write a safetensors file atomically (a failed write leaves the old file in place)."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=metadata)
    os.chmod(tmp, 0o644)  # safetensors creates it owner-only; the checkpoint is shipped
    os.replace(tmp, path)


def layer_table(model: nn.Module) -> list[dict]:
    """Every leaf module in forward order with its output shape for one input image, and the
    unit name the engine gives it (the ReLU after conv k is `conv{k}`, the first two fc ReLUs
    are `fc6`, `fc7`, the last Linear is `fc8`)."""
    rows: list[dict] = []
    hooks = []
    for path, module in model.named_modules():
        if len(list(module.children())) == 0:
            hooks.append(module.register_forward_hook(
                lambda m, i, o, path=path: rows.append(
                    {"module": path, "layer": repr(m), "output_shape": list(o.shape[1:])})))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 1, default_model.INPUT_SIZE, default_model.INPUT_SIZE))
    finally:
        for h in hooks:
            h.remove()
    convs = fcs = 0
    pending = None
    for row in rows:
        kind = row["layer"].split("(")[0]
        if kind in ("Conv2d", "Linear"):
            if kind == "Conv2d":
                convs += 1
                pending = f"conv{convs}"
            else:
                fcs += 1
                pending = f"fc{5 + fcs}"
        elif kind == "ReLU" and pending:
            row["unit_name"] = pending
            pending = None
    last_linear = [r for r in rows if r["layer"].startswith("Linear")][-1]
    last_linear["unit_name"] = f"fc{5 + fcs}"
    return rows
