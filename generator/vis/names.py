"""Names the engine accepts, torch-free, in one place: the site checks directives and
resolves files with them before any model loads, and the engine checks with the same."""
from __future__ import annotations

RULES = ("guided", "deconv", "gradient")
BUILTIN_MODELS = ("default", "alexnet", "vgg16", "resnet18")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
