"""featuretree's visualization engine: named layers, backward rules, unit images,
edges and image-specific hierarchies for PyTorch CNNs.

The engine never imports the site pipeline. Import the submodules you need; importing this
package alone does not import torch.
"""
