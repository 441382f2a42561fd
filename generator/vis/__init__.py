"""featuretree's visualization engine: named layers, backward rules, unit images,
edges and image-specific hierarchies for PyTorch CNNs.

The engine never imports the site pipeline. Importing this package alone does not import
torch; import the submodules you need:

Folders by role (see docs/ARCHITECTURE.md):

* `core/`: `models` (registry, layer naming, weights), `rules` (ReLU backward rules),
  `backprop` (one forward, batched backwards), `chain` (the windowed fast path),
  `hierarchy`, `explore`, `probes` (read-outs), `inputs` (image files to tensors).
* `data/`: `datasets`, `mining` (top-K over a dataset), `receptive`, `patches`.
* `render/`: `display` (normalization and pixels).
* `kinds/`: one module per figure kind.
* `default/`: the embedded default model, its training, the Fashion-MNIST reader, assets.
* `api`: the one torch-free API the site imports; `errors`: `EngineError`, `EngineWarning`.

Supported model shapes: any network whose nonlinearities below the visualized unit are
ReLUs -- `nn.ReLU` (inplace or not), `F.relu`, `torch.relu`, `Tensor.relu(_)` -- combined
with any differentiable linear or max-pooling ops (conv, linear, pooling, batch norm in
eval mode, dropout in eval mode, residual additions, concatenation). A GELU, SiLU,
sigmoid, tanh, leaky ReLU or ReLU6 below the unit raises `EngineError` (the rules are not
defined there). A named layer's module must run once per forward, and its output must not
be modified in place afterwards. Plain chains (AlexNet, VGG, the default model) take the
fast windowed path in `chain.py`; everything else the generic autograd path.
"""
