"""MaskRCNNModel: Matterport's metrics_names on a functional keras.Model."""
import keras
from keras import layers as KL

from mrcnn.core.outputs import LOSS_NAMES
from mrcnn.nn.keras_model import MaskRCNNModel


def _model(output_names):
    x = KL.Input(shape=[2])
    outputs = [KL.Identity(name=n)(x) for n in output_names]
    return MaskRCNNModel(x, outputs, name="mask_rcnn")


def test_metrics_names_list_loss_then_the_loss_outputs():
    model = _model(["rpn_class", LOSS_NAMES[1], LOSS_NAMES[4], "mrcnn_bbox"])
    assert model.metrics_names == ["loss", LOSS_NAMES[1], LOSS_NAMES[4]]


def test_a_model_without_loss_outputs_keeps_keras_metrics_names():
    # Keras' own answer for an uncompiled model: no metrics.
    assert _model(["detections", "mrcnn_mask"]).metrics_names == []


def test_registered_name_is_unchanged_by_the_move():
    assert keras.saving.get_registered_name(MaskRCNNModel) == "mrcnn>MaskRCNNModel"
    model = _model([LOSS_NAMES[0]])
    config = keras.saving.serialize_keras_object(model)
    config["module"] = "mrcnn.nn.graph"
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is MaskRCNNModel and clone.metrics_names == ["loss", LOSS_NAMES[0]]
