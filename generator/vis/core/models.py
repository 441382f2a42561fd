"""The model registry: a name becomes a network, its named layers, its preprocessing and
its class labels.

Names:

* `alexnet`: torchvision's AlexNet. `conv1`..`conv5` are the outputs of the ReLUs after
  each convolution (before pooling), `fc6`, `fc7` the ReLU outputs of the classifier,
  `fc8` the last Linear's output (the logits).
* `vgg16`: torchvision's VGG-16. `convB_I` is the ReLU output of the I-th convolution of
  block B (blocks end at max-pools), `fc6`, `fc7` ReLU outputs, `fc8` the logits.
* `resnet18`: torchvision's ResNet-18, layers named by module path: `relu` (the stem's
  ReLU output, before the max-pool), `layer1.0` .. `layer4.1` (each BasicBlock's output,
  i.e. relu(residual branch + shortcut); the block's ReLU module is called twice per block
  and both calls follow the chosen rule) and `fc` (the logits).
* `default`: the embedded Fashion-MNIST network (`generator.vis.default.model`), named by
  the automatic rule below (`conv1`..`conv5`, `fc6`..`fc8`).
* `path/to/file.py:factory`: `factory()` returns an `nn.Module`. Layers come from the
  `layers` argument `{name: module_path}` (the output of that module is h_L; a value
  `relu(MODULE_PATH)` is the output of the functional ReLU applied to that module's
  output, see `taps`), or are derived automatically: in forward order, every ReLU -- an
  `nn.ReLU` module or an `F.relu` / `torch.relu` / `Tensor.relu` call, in place or not --
  that directly follows a Conv2d or Linear (BatchNorm allowed between) is `convN` / `fcN`
  (N counts the Conv2d and Linear modules), and the last Linear, if no ReLU follows it, is
  `fcN`: its logits. Every named layer but the last must be a ReLU output. The
  file may define `INPUT_SHAPE` (C, H, W) (or the module an `input_shape` attribute),
  `MEAN`, `STD`, `LABELS` and `preprocess(image)`; otherwise the input is 3x224x224 with
  ImageNet normalization.

Weights: `None` (torchvision architectures are then randomly initialized, seeded, with an
`EngineWarning`; `default` uses its shipped file), `"imagenet"` (torchvision's weights
enum, via torch hub's cache), or a path to a `.safetensors` file or a `torch.save`d
state_dict (loaded with `weights_only=True`).
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from generator.files import sha256_file

from generator.vis.errors import EngineError, EngineWarning
from generator.vis.core import taps, usercode
from generator.vis.core.rules import ReluRules, is_rule_relu_output

TORCHVISION = ("alexnet", "vgg16", "resnet18")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Layer:
    """A named layer: h_L is the output of the module at `path`."""

    name: str
    path: str
    kind: str  # 'conv' (h_L is C x H x W) or 'fc' (h_L is C)
    size: int  # channels (conv) or units (fc)
    relu: bool = True  # h_L is a ReLU output, so the rule applies at this layer
    shape: tuple[int, ...] = ()  # h_L without the batch dimension

    @property
    def noun(self) -> str:
        return "channels" if self.kind == "conv" else "units"


@dataclass
class Model:
    """What `load_model` returns: an eval-mode module on its device, described."""

    name: str
    module: nn.Module
    device: torch.device
    layers: list[Layer]
    input_shape: tuple[int, int, int]
    labels: list[str]
    weights_digest: str
    preprocess_fn: Callable = field(repr=False, default=None)
    engine_cache: dict = field(repr=False, compare=False, default_factory=dict)

    def layer(self, name: str) -> Layer:
        """The layer called `name`; EngineError listing the valid names otherwise."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise EngineError(
            f"{self.name} has no layer {name!r}; its layers are {', '.join(self.layer_names)}")

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def position(self, layer: Layer | str) -> int:
        """Index of a layer in forward order."""
        name = layer if isinstance(layer, str) else layer.name
        return self.layer_names.index(self.layer(name).name)

    def below(self, layer: Layer | str) -> Layer | None:
        """The named layer just before `layer` in forward order (None for the first)."""
        i = self.position(layer)
        return self.layers[i - 1] if i > 0 else None

    def parse_unit(self, ref: str) -> tuple[Layer, int]:
        """'fc6_1068', 'conv5:243', 'layer4.1:17' -> (layer, index); EngineError if invalid."""
        text = str(ref).strip()
        sep = ":" if ":" in text else "_"
        name, _, index = text.rpartition(sep)
        if not name or not index.isdigit():
            example = self.unit_name(self.layers[-1], 0)
            raise EngineError(
                f"{text!r} is not a unit: write LAYER_INDEX or LAYER:INDEX, e.g. {example} "
                f"(layers: {', '.join(self.layer_names)})")
        layer = self.layer(name)
        i = int(index)
        if i >= layer.size:
            raise EngineError(
                f"{text}: {layer.name} has {layer.size} {layer.noun} (0..{layer.size - 1})")
        return layer, i

    def unit_name(self, layer: Layer | str, index: int) -> str:
        """Canonical unit reference, `LAYER_INDEX` (usable in file names)."""
        name = layer if isinstance(layer, str) else layer.name
        return f"{name}_{index}"

    def preprocess(self, image) -> torch.Tensor:
        """A PIL image -> the (C, H, W) float32 input tensor of this model (on CPU)."""
        x = self.preprocess_fn(image)
        return x.to(torch.float32)


def model_names() -> list[str]:
    """The registry's names (a user model is `path/to/file.py:factory`)."""
    return [*TORCHVISION, "default"]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_model(name: str, weights: str | None = None, layers: dict[str, str] | None = None,
               device: str | torch.device | None = None) -> Model:
    """Build the model called `name` (see the module docstring); EngineError if impossible."""
    try:
        device = torch.device(device) if device is not None else default_device()
    except (RuntimeError, TypeError) as exc:
        raise EngineError(f"device {device!r} is not a torch device ({exc})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineError(f"device {device} requested but CUDA is not available; use cpu")
    if name in TORCHVISION:
        spec = _torchvision(name, weights)
    elif name == "default":
        spec = _default(weights)
    elif ".py:" in name:
        spec = _user(name, weights)
    else:
        raise EngineError(
            f"unknown model {name!r}: use one of {', '.join(model_names())} "
            f"or path/to/file.py:factory")
    module, layer_map, input_shape, labels, digest, preprocess_fn = spec
    module = module.to(device).eval()
    for p in module.parameters():
        p.requires_grad_(False)
    if layers:
        layer_map = dict(layers)
    elif layer_map is None:
        layer_map = derive_layers(module, input_shape, device, name)
    described = describe_layers(module, layer_map, input_shape, device, name)
    if labels is None:
        labels = [str(i) for i in range(described[-1].size)]
    elif len(labels) != described[-1].size:
        raise EngineError(f"{name}: LABELS has {len(labels)} names but the last layer "
                          f"{described[-1].name} has {described[-1].size} units")
    return Model(name=name, module=module, device=device, layers=described,
                 input_shape=tuple(input_shape), labels=list(labels),
                 weights_digest=digest, preprocess_fn=preprocess_fn)


# ---------------------------------------------------------------- layer maps

def alexnet_layers() -> dict[str, str]:
    convs = {f"conv{i + 1}": f"features.{j}" for i, j in enumerate((1, 4, 7, 9, 11))}
    return {**convs, "fc6": "classifier.2", "fc7": "classifier.5", "fc8": "classifier.6"}


def vgg_layers(module: nn.Module) -> dict[str, str]:
    out, block, index, previous = {}, 1, 0, None
    for i, m in enumerate(module.features):
        if isinstance(m, nn.MaxPool2d):
            block, index = block + 1, 0
        elif isinstance(m, nn.ReLU) and isinstance(previous, nn.Conv2d):
            index += 1
            out[f"conv{block}_{index}"] = f"features.{i}"
        previous = m
    return {**out, "fc6": "classifier.1", "fc7": "classifier.4", "fc8": "classifier.6"}


def resnet_layers() -> dict[str, str]:
    blocks = [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    return {"relu": "relu", **{b: b for b in blocks}, "fc": "fc"}


def derive_layers(module: nn.Module, input_shape, device, model_name: str) -> dict[str, str]:
    """The automatic rule: ReLUs after Conv2d/Linear -> convN/fcN, last Linear -> logits.

    A ReLU is an `nn.ReLU` module or a functional call (`F.relu`, `torch.relu`,
    `Tensor.relu`, in place or not) applied to the output of the Conv2d/Linear or of a
    BatchNorm/Identity right after it; a functional one is named `relu(MODULE_PATH)`.
    """
    events = _forward_events(module, input_shape, device, model_name)
    counts: dict[str, int] = {}
    for path, _, _ in events:
        counts[path] = counts.get(path, 0) + 1
    out, n, affine, last_out, last_path = {}, 0, None, None, None
    for path, m, tensor in events:
        if m is None:  # a functional ReLU call; `tensor` is its input
            if affine is not None and tensor is last_out:
                out[f"{affine}{n}"] = taps.functional(last_path)
            affine = None
            continue
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            n += 1
            affine = "conv" if isinstance(m, nn.Conv2d) else "fc"
        elif isinstance(m, nn.ReLU) and affine is not None:
            if counts[path] > 1:
                raise EngineError(
                    f"{model_name}: the ReLU module {path!r} runs {counts[path]} times per "
                    f"forward, so layer names cannot be derived; give a layer map "
                    f"{{name: module_path}}")
            out[f"{affine}{n}"] = path
            affine = None
        elif not isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.Identity)):
            affine = None
        last_out, last_path = tensor, path
    if not out:
        raise EngineError(
            f"{model_name}: no ReLU follows a Conv2d or Linear, so layer names cannot "
            f"be derived; give a layer map {{name: module_path}}")
    modules = [(p, m) for p, m, _ in events if m is not None]
    last_linear = [p for p, m in modules if isinstance(m, nn.Linear)]
    if last_linear and events[-1][0] == last_linear[-1]:
        out[f"fc{n}"] = last_linear[-1]
    return out


class _ReluCalls(TorchFunctionMode):
    """Records ReLU calls made outside leaf modules (an nn.ReLU's own call is the module)."""

    def __init__(self, events: list):
        super().__init__()
        self.events = events
        self.depth = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        x = taps.relu_input(func, args, kwargs) if self.depth == 0 else None
        if x is not None:
            self.events.append(("", None, x))
        return func(*args, **(kwargs or {}))


def _forward_events(module, input_shape, device, model_name):
    """(path, leaf module, output) per leaf call and ('', None, input) per functional
    ReLU, in forward order."""
    events: list = []
    mode = _ReluCalls(events)
    handles = []

    def pre(mod, args):
        mode.depth += 1

    for path, m in module.named_modules():
        if path and not list(m.children()):
            def post(mod, args, out, path=path):
                mode.depth -= 1
                events.append((path, mod, out))
            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    try:
        _probe_forward(module, input_shape, device, model_name, mode)
    finally:
        for h in handles:
            h.remove()
    return events


def _probe_forward(module, input_shape, device, model_name, mode=None):
    x = torch.zeros((1, *input_shape), device=device, requires_grad=True)
    try:
        with ReluRules("gradient"), (mode or contextlib.nullcontext()):
            return module(x)
    except EngineError:
        raise
    except (Exception, SystemExit) as exc:
        raise EngineError(
            f"{model_name}: forward of a {tuple(input_shape)} input failed "
            f"({type(exc).__name__}: {_first_line(exc)})") from None


def describe_layers(module: nn.Module, layer_map: dict[str, str], input_shape, device,
                    model_name: str) -> list[Layer]:
    """Run one probe forward and describe each named layer, in forward order.

    A layer is a module path or `relu(MODULE_PATH)` (see `taps`). Every layer but the
    last (the logits) must be a ReLU output, since h_L is where the rule applies.
    """
    modules = dict(module.named_modules())
    for name, path in layer_map.items():
        if not name or "-" in name or name != name.strip() or "/" in name:
            raise EngineError(f"{model_name}: layer name {name!r} must be non-empty and "
                              f"contain no '-', '/' or spaces")
        if taps.split(path)[0] not in modules:
            raise EngineError(f"{model_name}: layer {name} names module {taps.split(path)[0]!r}, "
                              f"which does not exist; modules are e.g. "
                              f"{', '.join(p for p in list(modules)[1:9])}")
    seen: dict[str, list] = {}
    handles = []
    for name, path in layer_map.items():
        def hook(mod, args, out, name=name):
            seen.setdefault(name, []).append(out)
        handles.append(taps.hook_output(module, path, hook))
    try:
        _probe_forward(module, input_shape, device, model_name)
    finally:
        for h in handles:
            h.remove()
    layers = [_describe(name, layer_map[name], outs, model_name) for name, outs in seen.items()]
    missing = [n for n in layer_map if n not in seen]
    if missing:
        raise EngineError(f"{model_name}: layer {missing[0]} ({layer_map[missing[0]]!r}) "
                          f"is not called by the forward pass")
    for layer in layers[:-1]:
        if not layer.relu:
            raise EngineError(_not_relu(module, layer, model_name))
    return layers


def _describe(name: str, path: str, outs: list, model_name: str) -> Layer:
    """One named layer from the outputs its tap saw (insertion order = forward order)."""
    if len(outs) != 1:
        raise EngineError(f"{model_name}: module {path!r} (layer {name}) runs {len(outs)} "
                          f"times per forward; name a module that runs once")
    out = outs[0]
    if not isinstance(out, torch.Tensor) or out.dim() not in (2, 4) or out.shape[0] != 1:
        raise EngineError(f"{model_name}: module {path!r} (layer {name}) must output a "
                          f"tensor (N, C, H, W) or (N, C)")
    kind = "conv" if out.dim() == 4 else "fc"
    return Layer(name=name, path=path, kind=kind, size=int(out.shape[1]),
                 relu=is_rule_relu_output(out), shape=tuple(out.shape[1:]))


def _not_relu(module: nn.Module, layer: Layer, model_name: str) -> str:
    """The one-line error for a layer (not the last) whose output is no ReLU output."""
    what = type(dict(module.named_modules())[taps.split(layer.path)[0]]).__name__
    return (f"{model_name}: layer {layer.name} names {layer.path!r} ({what}), whose output "
            f"is not a ReLU output; name the ReLU after it (its module path, or "
            f"{taps.functional(taps.split(layer.path)[0])} for a functional call) -- only the "
            f"last layer (the logits) may be something else")


# ---------------------------------------------------------------- sources

def _torchvision(name: str, weights):
    import torchvision

    builder = getattr(torchvision.models, name)
    enum = torchvision.models.get_model_weights(name).IMAGENET1K_V1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = builder(weights=None)
    if weights is None:
        warnings.warn(f"{name} has random weights (seeded); pass --weights imagenet or a "
                      f"file for meaningful pictures", EngineWarning, stacklevel=3)
        digest = tensors_digest(module.state_dict())
    elif weights == "imagenet":
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        filename = enum.url.rsplit("/", 1)[-1]
        cached = (hub / filename).is_file()
        try:
            # hub writes "Downloading: ..." to stdout, which may be carrying --json -
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                # weights_only: a file in the hub cache is data, never code to unpickle
                state = enum.get_state_dict(progress=False, check_hash=True, weights_only=True)
        except Exception as e:
            if cached:
                raise EngineError(f"{hub / filename}: not a loadable {name} state_dict "
                                  f"({type(e).__name__}); delete it and download it again") from None
            raise EngineError(
                f"ImageNet weights for {name} could not be downloaded from {enum.url}: place "
                f"{filename} in {hub} or pass --weights PATH") from None
        module.load_state_dict(state)
        digest = tensors_digest(module.state_dict())
    else:
        digest = load_weights_file(module, weights, name)
    if name == "alexnet":
        layer_map = alexnet_layers()
    elif name == "vgg16":
        layer_map = vgg_layers(module)
    else:
        layer_map = resnet_layers()
    return (module, layer_map, (3, 224, 224), list(enum.meta["categories"]), digest,
            imagenet_preprocess)


def _default(weights):
    try:
        from generator.vis.default import model as default_model
        module = default_model.build()
        path = default_model.WEIGHTS_PATH
        preprocess, labels = default_model.preprocess, list(default_model.CLASS_NAMES)
        size = int(default_model.INPUT_SIZE)
    except EngineError:
        raise
    except Exception as exc:
        raise EngineError(f"the default model is not available ({type(exc).__name__}: "
                          f"{_first_line(exc)})") from None
    if weights == "imagenet":
        raise EngineError("the default model has no ImageNet weights; omit --weights or "
                          "pass a weights file")
    if weights is None and not Path(path).is_file():
        raise EngineError(f"the default model's weights {path} are missing; run "
                          f"`python build.py train-default` or pass --weights PATH")
    digest = load_weights_file(module, weights if weights is not None else path, "default")
    return module, None, (1, size, size), labels, digest, preprocess


def _user(ref: str, weights):
    """A `file.py:factory` model; the file's code runs guarded (see `usercode`)."""
    file, _, factory = ref.rpartition(":")
    path = Path(file)
    if not path.is_file():
        raise EngineError(f"model file {file} not found (expected path/to/file.py:factory)")
    spec = importlib.util.spec_from_file_location(
        f"featuretree_user_model_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]}",
        path)
    source = importlib.util.module_from_spec(spec)
    usercode.run_user(file, "importing it", spec.loader.exec_module, source)
    fn = getattr(source, factory, None)
    if not callable(fn):
        names = [n for n, v in vars(source).items() if callable(v) and not n.startswith("_")]
        raise EngineError(f"{file} has no factory {factory!r}; callables there: "
                          f"{', '.join(names) or 'none'}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = usercode.run_user(ref, "the factory", fn)
    if not isinstance(module, nn.Module):
        raise EngineError(f"{ref}: the factory returned {type(module).__name__}, not an "
                          f"nn.Module")
    if weights == "imagenet":
        raise EngineError(f"{ref}: --weights imagenet is only for {', '.join(TORCHVISION)}; "
                          f"pass a weights file")
    if weights is not None:
        digest = load_weights_file(module, weights, ref)
    else:
        usercode.check_finite(module.state_dict(), f"{ref}: the factory's initial weights")
        digest = tensors_digest(module.state_dict())
    input_shape = usercode.input_shape(getattr(module, "input_shape", None)
                                       or getattr(source, "INPUT_SHAPE", (3, 224, 224)), file)
    labels = usercode.labels(getattr(source, "LABELS", None), file)
    preprocess = getattr(source, "preprocess", None)
    c = input_shape[0]
    if preprocess is None:
        mean = usercode.norm_values(getattr(source, "MEAN", IMAGENET_MEAN if c == 3 else (0.5,) * c),
                                    "MEAN", c, file)
        std = usercode.norm_values(getattr(source, "STD", IMAGENET_STD if c == 3 else (0.5,) * c),
                                   "STD", c, file)
        preprocess = Resize(input_shape, mean, std)
    elif not callable(preprocess):
        raise EngineError(f"{file}: preprocess must be a function preprocess(image) -> tensor")
    preprocess = usercode.GuardedPreprocess(preprocess, file, input_shape)
    _warn_defaults(module, source, file, input_shape)
    return module, None, input_shape, labels, digest, preprocess


def _warn_defaults(module, source, file: str, input_shape) -> None:
    """Say which defaults a model file falls back on: a silent 3x224x224 with ImageNet
    statistics would quietly upscale a 96-px input and shift its colours."""
    used = []
    if getattr(module, "input_shape", None) is None and not hasattr(source, "INPUT_SHAPE"):
        used.append("INPUT_SHAPE = (3, 224, 224)")
    if getattr(source, "preprocess", None) is None:
        c = input_shape[0]
        for key, value in (("MEAN", IMAGENET_MEAN if c == 3 else (0.5,) * c),
                           ("STD", IMAGENET_STD if c == 3 else (0.5,) * c)):
            if not hasattr(source, key):
                what = " (ImageNet's)" if c == 3 else ""
                used.append(f"{key} = {tuple(value)}{what}")
    if not hasattr(source, "LABELS"):
        used.append("LABELS = the class indices '0', '1', ...")
    if used:
        warnings.warn(f"{file} sets no {', '.join(u.split(' =')[0] for u in used)}: using "
                      f"{'; '.join(used)}", EngineWarning, stacklevel=3)


# ---------------------------------------------------------------- preprocessing

@dataclass(frozen=True)
class Resize:
    """Shorter side to `resize` (default H), center crop (H, W), scale to [0,1], normalize."""

    shape: tuple[int, int, int]
    mean: tuple
    std: tuple
    resize: int | None = None

    def __call__(self, image) -> torch.Tensor:
        import numpy as np
        from PIL import Image

        c, h, w = self.shape
        image = image.convert("L" if c == 1 else "RGB")
        side = self.resize or max(h, w)
        iw, ih = image.size
        scale = side / min(iw, ih)
        image = image.resize((max(w, round(iw * scale)), max(h, round(ih * scale))),
                             Image.Resampling.BILINEAR)
        iw, ih = image.size
        left, top = (iw - w) // 2, (ih - h) // 2
        image = image.crop((left, top, left + w, top + h))
        arr = np.asarray(image, dtype=np.float32) / 255.0
        x = torch.from_numpy(arr.reshape(h, w, -1).copy()).permute(2, 0, 1)
        mean = torch.tensor(self.mean, dtype=torch.float32).reshape(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).reshape(-1, 1, 1)
        return (x - mean) / std


imagenet_preprocess = Resize((3, 224, 224), IMAGENET_MEAN, IMAGENET_STD, resize=256)


# ---------------------------------------------------------------- weights

def tensors_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in sorted name order."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def load_weights_file(module: nn.Module, weights, model_name: str) -> str:
    """Load a .safetensors file or a torch.save'd state_dict into `module`; return its sha256."""
    path = Path(weights)
    if not path.is_file():
        raise EngineError(f"weights file {weights} not found (use a .safetensors file, a "
                          f"torch.save'd state_dict, or 'imagenet')")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            state = load_file(str(path), device="cpu")
        except Exception as exc:
            raise EngineError(f"{path}: not a readable safetensors file "
                              f"({_first_line(exc)})") from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise EngineError(f"{path}: not a state_dict saved with torch.save "
                              f"({type(exc).__name__}: {_first_line(exc)})") from None
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise EngineError(f"{path}: expected a state_dict (a dict of name -> tensor)")
    expected = module.state_dict()
    for key, want in expected.items():
        if key not in state:
            raise EngineError(f"{path} does not fit {model_name}: missing tensor {key} "
                              f"{tuple(want.shape)}")
        if tuple(state[key].shape) != tuple(want.shape):
            raise EngineError(f"{path} does not fit {model_name}: {key} has shape "
                              f"{tuple(state[key].shape)}, the model needs {tuple(want.shape)}")
    for key in state:
        if key not in expected:
            raise EngineError(f"{path} does not fit {model_name}: unexpected tensor {key}")
    usercode.check_finite(state, str(path))
    module.load_state_dict(state, strict=True)
    return sha256_file(path)


_first_line = usercode.first_line
