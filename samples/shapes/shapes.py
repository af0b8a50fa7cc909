"""
Mask R-CNN
Configurations and data loading code for the synthetic Shapes dataset.
This is a duplicate of the code in the train_shapes notebook, kept as a
module so other notebooks and scripts can import it:

    import sys
    sys.path.append("samples/shapes")
    import shapes
    config = shapes.ShapesConfig()
    dataset = shapes.ShapesDataset()
    dataset.load_shapes(500, config.IMAGE_SHAPE[0], config.IMAGE_SHAPE[1])
    dataset.prepare()

Licensed under the MIT License (see LICENSE for details)
"""

import os
import sys

# Root directory of the project (so the sample runs from a source checkout)
ROOT_DIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
if ROOT_DIR not in sys.path:
    sys.path.append(ROOT_DIR)  # To find local version of the library

from mrcnn.config import Config  # noqa: E402
from mrcnn.data import shapes as _shapes  # noqa: E402


class ShapesConfig(Config):
    """Configuration for training on the toy shapes dataset.
    Derives from the base Config class and overrides values specific
    to the toy shapes dataset.
    """
    # Give the configuration a recognizable name
    NAME = "shapes"

    # Train on 1 GPU and 8 images per GPU. We can put multiple images on each
    # GPU because the images are small. Batch size is 8 (GPUs * images/GPU).
    GPU_COUNT = 1
    IMAGES_PER_GPU = 8

    # Number of classes (including background)
    NUM_CLASSES = 1 + 3  # background + 3 shapes

    # Use small images for faster training. Set the limits of the small side
    # the large side, and that determines the image shape.
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128

    # Use smaller anchors because our image and objects are small
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)  # anchor side in pixels

    # Reduce training ROIs per image because the images are small and have
    # few objects. Aim to allow ROI sampling to pick 33% positive ROIs.
    TRAIN_ROIS_PER_IMAGE = 32

    # Use a small epoch since the data is simple
    STEPS_PER_EPOCH = 100

    # use small validation steps since the epoch is small
    VALIDATION_STEPS = 5


class ShapesDataset(_shapes.ShapesDataset):
    """Generates the shapes synthetic dataset. The dataset consists of simple
    shapes (triangles, squares, circles) placed randomly on a blank surface.
    The images are generated on the fly. No file access required.

    ``load_shapes(count, height, width, seed=None)``, ``load_image``,
    ``load_mask``, ``image_reference``, ``draw_shape``, ``random_shape``
    and ``random_image`` come from ``mrcnn.data.shapes.ShapesDataset``.
    """


_default = ShapesDataset()


def draw_shape(image, shape, dims, color):
    """Draws a shape from the given specs (see ShapesDataset.draw_shape)."""
    return _default.draw_shape(image, shape, dims, color)


def random_shape(height, width):
    """Generates specifications of a random shape that lies within the given
    height and width boundaries (uses Python's global ``random``).
    Returns a tuple of three values: the shape name, (r, g, b) color and
    (x, y, s) centre and size.
    """
    return _default.random_shape(height, width)


def random_image(height, width):
    """Creates random specifications of an image with multiple shapes.
    Returns the background color of the image and a list of shape
    specifications that can be used to draw the image.
    """
    return _default.random_image(height, width)
