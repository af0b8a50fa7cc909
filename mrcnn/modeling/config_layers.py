"""Matterport's ``Layer(config)`` forms of the custom layers, for user graphs.

Matterport's code builds its layers from the whole Config
(``DetectionLayer(config, name="mrcnn_detection")``,
``ProposalLayer(proposal_count=..., nms_threshold=..., config=config)``).
The layers of `mrcnn.nn` take explicit arguments only; these subclasses,
re-exported by ``mrcnn.model``, translate a Config into those arguments at
construction (the Config is not stored), so user code written for Matterport
keeps working. Explicit arguments win over the config; without a config the
Config class defaults are used. Serialized, they hold the explicit arguments
only, so a saved model reloads without the user's Config class.
"""

import keras

from mrcnn.config import Config
from mrcnn.nn import detection, detection_target, proposal


def _arg(value, config, attr):
    """The explicit value, else config.<attr>, else the Config default."""
    if value is not None:
        return value
    return getattr(config if config is not None else Config, attr)


@keras.saving.register_keras_serializable(package="mrcnn.model")
class ProposalLayer(proposal.ProposalLayer):
    """`mrcnn.nn.proposal.ProposalLayer` accepting Matterport's ``config=``
    (RPN_BBOX_STD_DEV, PRE_NMS_LIMIT)."""

    def __init__(self, proposal_count, nms_threshold, config=None, *,
                 rpn_bbox_std_dev=None, pre_nms_limit=None, **kwargs):
        super().__init__(
            proposal_count, nms_threshold,
            rpn_bbox_std_dev=_arg(rpn_bbox_std_dev, config, "RPN_BBOX_STD_DEV"),
            pre_nms_limit=_arg(pre_nms_limit, config, "PRE_NMS_LIMIT"),
            **kwargs)


@keras.saving.register_keras_serializable(package="mrcnn.model")
class DetectionLayer(detection.DetectionLayer):
    """`mrcnn.nn.detection.DetectionLayer` accepting Matterport's
    ``DetectionLayer(config, name=...)`` (DETECTION_MAX_INSTANCES,
    DETECTION_MIN_CONFIDENCE, DETECTION_NMS_THRESHOLD, BBOX_STD_DEV)."""

    def __init__(self, detection_max_instances=None,
                 detection_min_confidence=None, detection_nms_threshold=None,
                 bbox_std_dev=None, config=None, **kwargs):
        if isinstance(detection_max_instances, Config) or hasattr(
                detection_max_instances, "DETECTION_MAX_INSTANCES"):
            # Matterport's call: DetectionLayer(config, name=...)
            config, detection_max_instances = detection_max_instances, None
        super().__init__(
            _arg(detection_max_instances, config, "DETECTION_MAX_INSTANCES"),
            _arg(detection_min_confidence, config, "DETECTION_MIN_CONFIDENCE"),
            _arg(detection_nms_threshold, config, "DETECTION_NMS_THRESHOLD"),
            _arg(bbox_std_dev, config, "BBOX_STD_DEV"), **kwargs)


@keras.saving.register_keras_serializable(package="mrcnn.model")
class DetectionTargetLayer(detection_target.DetectionTargetLayer):
    """`mrcnn.nn.detection_target.DetectionTargetLayer` accepting Matterport's
    ``DetectionTargetLayer(config, name=...)`` (TRAIN_ROIS_PER_IMAGE,
    ROI_POSITIVE_RATIO, BBOX_STD_DEV, MASK_SHAPE, USE_MINI_MASK)."""

    def __init__(self, train_rois_per_image=None, roi_positive_ratio=None,
                 bbox_std_dev=None, mask_shape=None, use_mini_mask=None,
                 config=None, **kwargs):
        if hasattr(train_rois_per_image, "TRAIN_ROIS_PER_IMAGE"):
            # Matterport's call: DetectionTargetLayer(config, name=...)
            config, train_rois_per_image = train_rois_per_image, None
        super().__init__(
            _arg(train_rois_per_image, config, "TRAIN_ROIS_PER_IMAGE"),
            _arg(roi_positive_ratio, config, "ROI_POSITIVE_RATIO"),
            _arg(bbox_std_dev, config, "BBOX_STD_DEV"),
            _arg(mask_shape, config, "MASK_SHAPE"),
            _arg(use_mini_mask, config, "USE_MINI_MASK"), **kwargs)
