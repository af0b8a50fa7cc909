"""MaskRCNNModel, the functional keras.Model both graph builders return."""

import keras

from mrcnn.core.outputs import LOSS_NAMES


@keras.saving.register_keras_serializable(package="mrcnn")
class MaskRCNNModel(keras.Model):
    """The functional Mask R-CNN keras.Model.

    Built like any functional model (``MaskRCNNModel(inputs, outputs,
    name=...)``; `mrcnn.nn.graph` builds both). The one difference from
    keras.Model: ``metrics_names`` of a training model lists ``loss`` and
    the five loss names, as Matterport's compile() left it. Reading and
    writing Matterport's ``.h5`` files with ``save_weights`` /
    ``load_weights`` is added above this floor, by
    `mrcnn.modeling.weights.keras_model.MatterportKerasModel`.
    """

    @property
    def metrics_names(self):
        names = list(self.output_names)
        losses = [n for n in LOSS_NAMES if n in names]
        if losses:
            return ["loss"] + losses
        return super().metrics_names
