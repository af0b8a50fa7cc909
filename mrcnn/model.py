"""Matterport's ``mrcnn.model`` (``import mrcnn.model as modellib``): a façade.

Everything here is re-exported from the modules that implement it:
the model object (`mrcnn.maskrcnn`), the graph stages (`mrcnn.nn.*`), the
losses (`mrcnn.nn.losses`), image meta and molding (`mrcnn.core.image_meta`),
and the training data functions (`mrcnn.data.*`, imported on first use).
"""

import importlib

from mrcnn.core.anchors import compute_backbone_shapes  # noqa: F401
from mrcnn.core.image_meta import (compose_image_meta, mold_image,  # noqa: F401
                                   parse_image_meta, unmold_image)
from mrcnn.inference import log  # noqa: F401
from mrcnn.maskrcnn import MaskRCNN  # noqa: F401
from mrcnn.nn.backbone import (BatchNorm, conv_block, fpn_graph,  # noqa: F401
                               identity_block, resnet_graph)
from mrcnn.nn.heads import (RoiDistributed, build_fpn_mask_graph,  # noqa: F401
                            fpn_classifier_graph)
from mrcnn.nn.losses import (mrcnn_bbox_loss_graph,  # noqa: F401
                             mrcnn_class_loss_graph, mrcnn_mask_loss_graph,
                             rpn_bbox_loss_graph, rpn_class_loss_graph,
                             smooth_l1_loss)
from mrcnn.nn.rpn import build_rpn_model, rpn_graph  # noqa: F401

# Names implemented by other modules, imported when first used so that this
# façade imports even while one of them is missing or broken.
_LAZY = {
    "ProposalLayer": "mrcnn.nn.proposal",
    "PyramidROIAlign": "mrcnn.nn.roi_align",
    "DetectionTargetLayer": "mrcnn.nn.detection_target",
    "DetectionLayer": "mrcnn.nn.detection",
    "apply_box_deltas_graph": "mrcnn.nn.box_ops",
    "clip_boxes_graph": "mrcnn.nn.box_ops",
    "overlaps_graph": "mrcnn.nn.box_ops",
    "box_refinement_graph": "mrcnn.nn.box_ops",
    "norm_boxes_graph": "mrcnn.nn.box_ops",
    "denorm_boxes_graph": "mrcnn.nn.box_ops",
    "trim_zeros_graph": "mrcnn.nn.box_ops",
    "parse_image_meta_graph": "mrcnn.nn.box_ops",
    "load_image_gt": "mrcnn.data.pipeline",
    "data_generator": "mrcnn.data.pipeline",
    "build_rpn_targets": "mrcnn.data.targets",
    "build_detection_targets": "mrcnn.data.targets",
    "generate_random_rois": "mrcnn.data.targets",
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError("module 'mrcnn.model' has no attribute {!r}".format(name))
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
