"""The Keras model class MaskRCNN builds: Matterport's ``.h5`` habits on Keras 3.

User code written for Keras 2.0.8 calls ``model.keras_model.save_weights(
"x.h5")`` and ``model.keras_model.load_weights(path, by_name=True)``; Keras 3
accepts only ``.weights.h5``. `MatterportKerasModel` routes plain ``.h5`` /
``.hdf5`` paths through this package's Matterport-layout reader and writer
and leaves Keras 3's own formats to Keras. It lives here, above the graph
floor (`mrcnn.nn.graph` knows nothing of files): MaskRCNN passes it to the
graph builders as ``model_class``.
"""

import os

import keras

from mrcnn.nn.keras_model import MaskRCNNModel
from mrcnn.modeling.weights.h5layout import save_weights
from mrcnn.modeling.weights.loading import load_weights_into


def _is_keras3_weights_path(filepath):
    """True for Keras 3's native ``.weights.h5`` / ``.keras`` files."""
    path = str(filepath)
    return path.endswith(".weights.h5") or path.endswith(".keras")


@keras.saving.register_keras_serializable(package="mrcnn")
class MatterportKerasModel(MaskRCNNModel):
    """MaskRCNNModel whose save_weights/load_weights speak Matterport's .h5.

    - ``save_weights(path)`` with a plain ``.h5`` (or ``.hdf5``) path writes
      Matterport's Keras 2 layout, atomically.
    - ``load_weights(path, by_name=False, exclude=None)`` reads it, with
      Keras 2's ``by_name`` and an ``exclude`` list of layer names.
    ``.weights.h5`` and ``.keras`` paths go to Keras unchanged.
    """

    def save_weights(self, filepath, overwrite=True, **kwargs):
        if _is_keras3_weights_path(filepath):
            return super().save_weights(filepath, overwrite=overwrite,
                                        **kwargs)
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError("save_weights: {} exists and overwrite=False"
                                  .format(filepath))
        save_weights(self, filepath)

    def load_weights(self, filepath, skip_mismatch=False, by_name=False,
                     exclude=None, allow_nonfinite=False, **kwargs):
        if _is_keras3_weights_path(filepath):
            return super().load_weights(filepath, skip_mismatch=skip_mismatch,
                                        **kwargs)
        if skip_mismatch:
            raise ValueError(
                "load_weights({}): skip_mismatch is not supported for "
                "Matterport .h5 files; use exclude=[layer names] for layers "
                "whose shapes differ".format(filepath))
        load_weights_into(self, filepath, by_name=by_name, exclude=exclude,
                          allow_nonfinite=allow_nonfinite)
