"""featuretree's visualization engine: named layers, backward rules, unit images,
edges and image-specific hierarchies for PyTorch CNNs.

The engine never imports the site pipeline. Importing this package alone does not import
torch; import the submodules you need:

* `models`: `load_model(name, weights=None, layers=None, device=None) -> Model`,
  `model_names()`; `Model.layer(name)`, `Model.parse_unit(ref)`, `Model.preprocess(pil)`.
* `backprop`: `Backprop(model, x, rule="guided")` -- one forward; `seeds`, `backward`,
  `unit_images`, `acts`, `logits`.
* `hierarchy`: `hierarchy(bp, root, depth, children, path) -> Node`; `edge_weights`,
  `keep_channel`.
* `explore`: `explore(bp, root, depth, children, path, levels, budget)` -- a hierarchy
  expanded beyond its followed path, within a tile budget, for the page's explorer.
* `probes`: `top_predictions`, `feature_maps`, `maxacts`.
* `display`: `normalize`, `to_pixels`, `tile`, `feature_grid`, `hierarchy_figure`.
* `images`: `load_input(path, model)` (image file or preprocessed `.npy`).
* `errors`: `EngineError` (one user-facing line), `EngineWarning`.

Supported model shapes: any network whose nonlinearities below the visualized unit are
ReLUs -- `nn.ReLU` (inplace or not), `F.relu`, `torch.relu`, `Tensor.relu(_)` -- combined
with any differentiable linear or max-pooling ops (conv, linear, pooling, batch norm in
eval mode, dropout in eval mode, residual additions, concatenation). A GELU, SiLU,
sigmoid, tanh, leaky ReLU or ReLU6 below the unit raises `EngineError` (the rules are not
defined there). A named layer's module must run once per forward, and its output must not
be modified in place afterwards. Plain chains (AlexNet, VGG, the default model) take the
fast windowed path in `chain.py`; everything else the generic autograd path.
"""
