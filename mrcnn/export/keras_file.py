"""The end-to-end export model as a native Keras 3 ``.keras`` file.

``save_keras`` writes the model of `mrcnn.export.pipeline` (uint8 image
[1, H, W, 3] in; boxes, class_ids, scores, masks out, batch axis of 1);
``load_keras`` reads it back with ``safe_mode=True``: only registered
layer classes are rebuilt from their configs, no Python code (lambda or
pickled function) is run from the file. Loading needs ``mrcnn`` installed
(its layers are registered when `mrcnn.export` is imported).
"""

import os

import keras

# Registers the layers of the export model (MoldImage, UnmoldDetections;
# the inference graph's layers come with mrcnn.nn.graph).
from mrcnn.core.atomic import atomic_path
from mrcnn.export.pipeline import build_export_model


def save_keras(model, path, fold_bn=True):
    """Write ``model`` (a MaskRCNN) end to end as a ``.keras`` file, atomically.

    Args:
        model: a MaskRCNN.
        path: destination, ending in ".keras".
        fold_bn: fold BatchNorm into the convolutions first.
    Returns:
        path.
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError("save_keras: the file name must end in .keras, "
                         "got {}".format(path))
    end_to_end = build_export_model(model, fold_bn=fold_bn)
    with atomic_path(path, suffix=".keras") as tmp:
        end_to_end.save(tmp)
    return path


def load_keras(path):
    """Load a ``.keras`` export with ``safe_mode=True``.

    Returns:
        the keras.Model; ``model(image[None])`` gives a dict of boxes
        [1, N, 4], class_ids [1, N], scores [1, N], masks [1, H, W, N].
    """
    return keras.models.load_model(os.fspath(path), safe_mode=True)
