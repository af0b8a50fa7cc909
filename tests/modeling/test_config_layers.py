"""The Layer(config) forms of the custom layers (mrcnn.modeling.config_layers), as
Matterport's code calls them; the mrcnn.nn layers take explicit arguments."""
import keras
import numpy as np
import pytest

from conftest import make_tiny_config
from mrcnn import model as modellib
from mrcnn.modeling.config_layers import (DetectionLayer, DetectionTargetLayer,
                                 ProposalLayer)
from mrcnn.nn import detection, detection_target, proposal

STD = [0.1, 0.1, 0.2, 0.2]


def test_facade_exports_the_config_forms_subclassing_the_nn_layers():
    assert modellib.DetectionLayer is DetectionLayer
    assert issubclass(DetectionLayer, detection.DetectionLayer)
    assert issubclass(ProposalLayer, proposal.ProposalLayer)
    assert issubclass(DetectionTargetLayer, detection_target.DetectionTargetLayer)


def test_nn_layers_take_explicit_arguments_only():
    config = make_tiny_config()
    with pytest.raises(TypeError):
        detection.DetectionLayer(config)
    with pytest.raises(TypeError):
        proposal.ProposalLayer(10, 0.7, config)
    with pytest.raises(TypeError):
        detection_target.DetectionTargetLayer(config)


def test_proposal_layer_config_fills_missing_values_and_roundtrip():
    config = make_tiny_config(PRE_NMS_LIMIT=123, RPN_BBOX_STD_DEV=np.array([0.1, 0.1, 0.3, 0.3]))
    layer = ProposalLayer(proposal_count=config.POST_NMS_ROIS_TRAINING,
                          nms_threshold=config.RPN_NMS_THRESHOLD, config=config)
    assert layer.name == "ROI"
    assert layer.pre_nms_limit == 123
    assert layer.rpn_bbox_std_dev == pytest.approx([0.1, 0.1, 0.3, 0.3])
    # explicit values win over the config
    assert ProposalLayer(5, 0.7, config, pre_nms_limit=7).pre_nms_limit == 7
    clone = ProposalLayer.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    # registered: deserializes by name, no custom_objects needed
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is type(layer) and revived.get_config() == layer.get_config()
    assert clone.proposal_count == 200 and clone.pre_nms_limit == 123
    # defaults from Matterport's Config when neither is given
    plain = ProposalLayer(10, 0.7)
    assert plain.pre_nms_limit == 6000
    assert plain.rpn_bbox_std_dev == pytest.approx([0.1, 0.1, 0.2, 0.2])
    with pytest.raises(ValueError, match="rpn_bbox_std_dev"):
        ProposalLayer(10, 0.7, rpn_bbox_std_dev=[0.1, 0.2])


def test_detection_layer_matterport_style_config_and_roundtrip():
    config = make_tiny_config(DETECTION_MAX_INSTANCES=7, DETECTION_MIN_CONFIDENCE=0.6,
                              DETECTION_NMS_THRESHOLD=0.4)
    layer = DetectionLayer(config, name="mrcnn_detection")
    assert (layer.detection_max_instances, layer.detection_min_confidence,
            layer.detection_nms_threshold) == (7, 0.6, 0.4)
    assert layer.bbox_std_dev == pytest.approx(list(STD))
    assert DetectionLayer(config=config, detection_max_instances=3).detection_max_instances == 3
    clone = DetectionLayer.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    # registered: deserializes by name, no custom_objects needed
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is type(layer) and revived.get_config() == layer.get_config() and clone.name == "mrcnn_detection"
    with pytest.raises(ValueError, match="bbox_std_dev"):
        DetectionLayer(5, 0.5, 0.3, [1, 2])


def test_detection_target_layer_matterport_style_config_and_roundtrip():
    config = make_tiny_config(TRAIN_ROIS_PER_IMAGE=24, ROI_POSITIVE_RATIO=0.5,
                              MASK_POOL_SIZE=7, MASK_SHAPE=[14, 14], USE_MINI_MASK=False)
    layer = DetectionTargetLayer(config, name="proposal_targets")
    assert (layer.train_rois_per_image, layer.roi_positive_ratio, layer.mask_shape,
            layer.use_mini_mask) == (24, 0.5, [14, 14], False)
    assert layer.bbox_std_dev == pytest.approx(STD)
    layer2 = DetectionTargetLayer(config=config, mask_shape=[7, 7])
    assert layer2.mask_shape == [7, 7] and layer2.train_rois_per_image == 24
    clone = DetectionTargetLayer.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    # registered: deserializes by name, no custom_objects needed
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is type(layer) and revived.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="roi_positive_ratio"):
        DetectionTargetLayer(10, 0.0, STD, [4, 4], True)
