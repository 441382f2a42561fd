"""featuretree: a static-site generator for posts about how convolutional networks see.

`generator.vis` is the visualization engine (PyTorch); `generator.site` is the site
pipeline. The engine never imports the site.
"""

__version__ = "0.1.0"
