"""Conversion between Matterport's ``.h5`` layout and Keras 3 ``.weights.h5``."""

import os

from mrcnn.core.atomic import atomic_path
from mrcnn.nn.graph import build_inference_model
from mrcnn.modeling.weights.h5layout import check_path, save_weights
from mrcnn.modeling.weights.loading import load_weights_into


def convert_to_keras(src_h5, dst_weights_h5, config):
    """Matterport ``.h5`` -> Keras 3 native ``.weights.h5``.

    Builds the inference model for ``config``, loads ``src_h5`` (every
    weighted layer must be in it) and writes ``dst_weights_h5`` with
    ``keras_model.save_weights`` (loadable by plain
    ``keras_model.load_weights``).

    Args:
        src_h5: Matterport / Keras 2 weight file.
        dst_weights_h5: destination; must end with ``.weights.h5``.
        config: the Config the weights belong to (NUM_CLASSES, BACKBONE).
    Returns:
        dst_weights_h5.
    """
    dst = os.fspath(dst_weights_h5)
    if not dst.endswith(".weights.h5"):
        raise ValueError("Keras 3 native weight files must end with "
                         "'.weights.h5'; got {!r}".format(dst))
    keras_model = build_inference_model(config)
    load_weights_into(keras_model, src_h5, by_name=False, verbose=0)
    with atomic_path(dst, suffix=".weights.h5") as tmp:
        keras_model.save_weights(tmp)
    return dst


def convert_from_keras(src, dst, config):
    """Keras 3 native ``.weights.h5`` -> Matterport ``.h5`` layout.

    Args:
        src: a ``.weights.h5`` written by ``keras_model.save_weights`` of the
            model for ``config``.
        dst: destination ``.h5`` (Matterport / Keras 2 layout, atomic).
        config: the Config the weights belong to.
    Returns:
        dst.
    """
    src = check_path(src)
    keras_model = build_inference_model(config)
    keras_model.load_weights(src)
    return save_weights(keras_model, dst)
