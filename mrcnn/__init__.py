"""mrcnn: Mask R-CNN for TensorFlow 2.16+ / Keras 3 / numpy 2.

A rebuild of Matterport's ``mrcnn`` with the same public API:

    from mrcnn.config import Config
    from mrcnn import utils, visualize
    import mrcnn.model as modellib
"""
import os

# Keep TensorFlow's C++ start-up chatter out of user output, unless the user
# asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Matterport code does `import imgaug` after mrcnn: give imgaug 0.4 the numpy
# names it needs and numpy 2 removed (see mrcnn/core/numpy_compat.py).
from mrcnn.core import numpy_compat as _numpy_compat

_numpy_compat.install()

__version__ = "1.0.0"
