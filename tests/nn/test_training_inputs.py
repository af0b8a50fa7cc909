"""The training graph's input layers: anchors, normalized boxes, active class ids."""
import keras
import numpy as np
import pytest

from mrcnn.core.anchors import generate_pyramid_anchors
from mrcnn.core.boxes import norm_boxes
from mrcnn.core.image_meta import compose_image_meta
from mrcnn.nn.training_inputs import ActiveClassIds, AnchorsLayer, NormBoxesLayer


def test_anchors_layer_matches_numpy_and_round_trips():
    layer = AnchorsLayer([8, 16], [0.5, 1, 2], [4, 8], 1, [32, 32, 3])
    out = layer(np.zeros((3, 32, 32, 3), np.float32)).numpy()
    ref = norm_boxes(generate_pyramid_anchors([8, 16], [0.5, 1, 2], [[8, 8], [4, 4]],
                                              [4, 8], 1), (32, 32))
    assert out.shape == (3, ref.shape[0], 4)
    np.testing.assert_allclose(out[2], ref, rtol=1e-5, atol=1e-6)
    clone = AnchorsLayer.from_config(layer.get_config())
    np.testing.assert_array_equal(clone._anchors, layer._anchors)
    assert clone.name == "anchors" and not clone.weights


def test_norm_boxes_layer_uses_the_image_tensors_size():
    boxes = np.array([[[0, 0, 48, 64], [12, 16, 24, 32]]], np.float32)
    image = np.zeros((1, 48, 64, 3), np.float32)
    out = NormBoxesLayer()([boxes, image]).numpy()
    np.testing.assert_allclose(out[0], norm_boxes(boxes[0], (48, 64)), rtol=1e-6)
    assert out.dtype == np.float32


def test_active_class_ids_are_the_meta_rows_field():
    active = np.array([1, 1, 0, 1, 0])
    meta = np.stack([compose_image_meta(i, (10, 20, 3), (32, 32, 3),
                                        (0, 0, 32, 32), 1.5, active * (i + 1))
                     for i in range(2)]).astype(np.float32)
    out = ActiveClassIds()(meta)
    np.testing.assert_array_equal(out.numpy(), [active, 2 * active])
    assert ActiveClassIds().compute_output_shape((None, meta.shape[1])) == \
        (None, len(active))


@pytest.mark.parametrize("cls", [AnchorsLayer, NormBoxesLayer, ActiveClassIds])
def test_configs_saved_when_the_layers_lived_in_graph_py_still_load(cls):
    """Saved configs name the module mrcnn.nn.graph; the registered name
    "mrcnn>Class" finds the class in its new module."""
    layer = cls([8], [1], [4], 1, [16, 16, 3]) if cls is AnchorsLayer else cls()
    config = keras.saving.serialize_keras_object(layer)
    assert config["registered_name"] == "mrcnn>" + cls.__name__
    config["module"] = "mrcnn.nn.graph"
    assert type(keras.saving.deserialize_keras_object(config)) is cls
