"""Matterport's ``mrcnn.model`` (``import mrcnn.model as modellib``): a façade.

Everything here is re-exported from the modules that implement it:
the model object (`mrcnn.modeling.mask_rcnn`), the graph stages (`mrcnn.nn.*`), the
losses (`mrcnn.nn.losses`), image meta and molding (`mrcnn.core.image_meta`),
and the training data functions (`mrcnn.data.*`, imported on first use).
"""

from mrcnn.core.anchors import compute_backbone_shapes  # noqa: F401
from mrcnn.core.image_meta import (compose_image_meta, mold_image,  # noqa: F401
                                   parse_image_meta, unmold_image)
from mrcnn.modeling.inference import log  # noqa: F401
from mrcnn.modeling.mask_rcnn import MaskRCNN  # noqa: F401
from mrcnn.nn.backbone import (BatchNorm, conv_block, fpn_graph,  # noqa: F401
                               identity_block, resnet_graph)
from mrcnn.nn.heads import (RoiDistributed, build_fpn_mask_graph,  # noqa: F401
                            fpn_classifier_graph)
from mrcnn.nn.losses import (mrcnn_bbox_loss_graph,  # noqa: F401
                             mrcnn_class_loss_graph, mrcnn_mask_loss_graph,
                             rpn_bbox_loss_graph, rpn_class_loss_graph,
                             smooth_l1_loss)
from mrcnn.nn.rpn import build_rpn_model, rpn_graph  # noqa: F401

from mrcnn.nn.box_ops import (apply_box_deltas_graph,  # noqa: F401
                              box_refinement_graph, clip_boxes_graph,
                              denorm_boxes_graph, norm_boxes_graph,
                              overlaps_graph, parse_image_meta_graph,
                              trim_zeros_graph)
# The custom layers in Matterport's Layer(config) form (explicit arguments
# also work): mrcnn.modeling.config_layers translates the Config.
from mrcnn.modeling.config_layers import (DetectionLayer,  # noqa: F401
                                 DetectionTargetLayer, ProposalLayer)
from mrcnn.nn.roi_align import PyramidROIAlign  # noqa: F401
from mrcnn.data.pipeline import data_generator, load_image_gt  # noqa: F401
from mrcnn.data.targets import (build_detection_targets,  # noqa: F401
                                build_rpn_targets, generate_random_rois)
