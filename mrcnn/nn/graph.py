"""The Mask R-CNN Keras graphs: the one place a Config becomes layer arguments.

Shape shorthand: B = batch (any size; the graphs do not fix it),
H, W = molded image size, C = IMAGE_CHANNEL_COUNT, A = anchors of all levels,
N = RoIs per image (POST_NMS_ROIS_INFERENCE, or TRAIN_ROIS_PER_IMAGE in
training), D = DETECTION_MAX_INSTANCES, NC = NUM_CLASSES, G =
MAX_GT_INSTANCES, META = IMAGE_META_SIZE.

Both builders read like Mask R-CNN's fig. 1, left to right: backbone + FPN
and the RPN (`_backbone_and_rpn`), proposals (`_proposals`), then in
training the RoI sampling and its targets (`_detection_targets`), the box
head (`_box_head`), in inference the detections (`_detections`), the mask
branch (`mrcnn.nn.mask_branch`) and in training the five losses
(`_losses`). Each stage function reads its arguments from the Config and
calls the stage's module; layer names are Matterport's.

Inference model:
    inputs  input_image [B, H, W, C] float32 (mean-subtracted),
            input_image_meta [B, META],
            input_anchors [B, A, (y1, x1, y2, x2)] normalized
    outputs mrcnn_detection [B, D, (y1, x1, y2, x2, class_id, score)]
                normalized, zero-padded,
            mrcnn_class [B, N, NC], mrcnn_bbox [B, N, NC, 4],
            mrcnn_mask [B, D, 28, 28, NC], ROI [B, N, 4] normalized,
            rpn_class [B, A, 2], rpn_bbox [B, A, 4]

Training model: see build_training_model.
"""

import contextlib
import inspect

import keras
import numpy as np
from keras import layers as KL

from mrcnn.core.anchors import compute_backbone_shapes
from mrcnn.core.outputs import (
    INFERENCE_OUTPUTS, INPUT_ANCHORS, INPUT_GT_BOXES, INPUT_GT_CLASS_IDS,
    INPUT_GT_MASKS, INPUT_IMAGE, INPUT_IMAGE_META, INPUT_ROI, INPUT_RPN_BBOX,
    INPUT_RPN_MATCH, RPN_OUTPUTS, TRAINING_OUTPUTS)
from mrcnn.nn.backbone import backbone_graph
from mrcnn.nn.detection import DetectionLayer
from mrcnn.nn.detection_target import DetectionTargetLayer
from mrcnn.nn.heads import fpn_classifier_graph, fpn_mask_head
from mrcnn.nn.keras_model import MaskRCNNModel
from mrcnn.nn.losses import (MrcnnBboxLoss, MrcnnClassLoss, MrcnnMaskLoss,
                             RpnBboxLoss, RpnClassLoss)
from mrcnn.nn.mask_branch import (inference_mask_branch, positive_slot_count,
                                  training_mask_branch)
from mrcnn.nn.proposal import ProposalLayer
from mrcnn.nn.rpn import build_rpn_model
from mrcnn.nn.training_inputs import ActiveClassIds, AnchorsLayer, NormBoxesLayer


def build_inference_model(config, model_class=MaskRCNNModel,
                          static_crops=False):
    """The inference keras.Model (inputs and outputs in the module docstring).

    Args:
        config: a Config.
        model_class: the functional keras.Model class to build (MaskRCNN
            passes one that reads and writes Matterport's .h5 files).
        static_crops: RoIAlign crops every box at every pyramid level, so
            each crop's box count is static (nn/roi_align.py): the same
            detections, more crop work, and no "Error in PredictCost()"
            logs where TensorFlow optimizes the graph (the exports).
    Returns:
        model_class named "mask_rcnn"; outputs in the order of
        mrcnn.core.outputs.INFERENCE_OUTPUTS.
    """
    with dtype_policy_scope(getattr(config, "MIXED_PRECISION", None)):
        inputs = _image_inputs(config) + [
            KL.Input(shape=[None, 4], name=INPUT_ANCHORS)]
        input_image, input_image_meta, input_anchors = inputs

        feature_maps, rpn = _backbone_and_rpn(config, input_image)
        # [B, N, (y1, x1, y2, x2)] normalized, zero-padded
        rpn_rois = _proposals(config, rpn, input_anchors,
                              config.POST_NMS_ROIS_INFERENCE)
        box = _box_head(config, rpn_rois, feature_maps, input_image_meta,
                        static_crops=static_crops)
        # [B, D, (y1, x1, y2, x2, class_id, score)] normalized
        detections = _detections(config, rpn_rois, box, input_image_meta)
        # Masks of the final detections only (Mask R-CNN sec. 3.1,
        # inference): [B, D, 28, 28, NC]
        mrcnn_mask = inference_mask_branch(
            detections, feature_maps, input_image_meta, config.MASK_POOL_SIZE,
            config.DETECTION_MAX_INSTANCES, config.NUM_CLASSES,
            mask_head=_mask_head(config), train_bn=config.TRAIN_BN,
            static_crops=static_crops)

        outputs = dict(rpn, **box, detections=detections,
                       mrcnn_mask=mrcnn_mask, rpn_rois=rpn_rois)
        return model_class(inputs, [outputs[n] for n in INFERENCE_OUTPUTS],
                           name="mask_rcnn")


def build_training_model(config, model_class=MaskRCNNModel):
    """The training keras.Model.

    Inputs (Matterport order):
        input_image [B, H, W, C] float32, input_image_meta [B, META],
        input_rpn_match [B, A, 1] int32 (1 pos, -1 neg, 0 neutral),
        input_rpn_bbox [B, RPN_TRAIN_ANCHORS_PER_IMAGE, 4] float32,
        input_gt_class_ids [B, G] int32 (< 0 crowd, 0 padding),
        input_gt_boxes [B, G, (y1, x1, y2, x2)] float32 pixels,
        input_gt_masks [B, h, w, G] bool (MINI_MASK_SHAPE when USE_MINI_MASK,
            else IMAGE_SHAPE[:2]),
        and input_roi [B, POST_NMS_ROIS_TRAINING, 4] int32 pixels when
        USE_RPN_ROIS is False.
    Outputs (Matterport order): rpn_class_logits, rpn_class, rpn_bbox,
        mrcnn_class_logits [B, R, NC], mrcnn_class, mrcnn_bbox [B, R, NC, 4],
        mrcnn_mask [B, P, 28, 28, NC] (the P = int(R * ROI_POSITIVE_RATIO)
        leading, positive RoI slots only; rows of non-positive RoIs are
        zeros: the head runs on positives only), ROI [B, POST_NMS_ROIS_TRAINING, 4],
        output_rois [B, R, 4], then the five losses (float32 scalars):
        rpn_class_loss, rpn_bbox_loss, mrcnn_class_loss, mrcnn_bbox_loss,
        mrcnn_mask_loss.

    Args:
        config: a Config (validated for training: NUM_CLASSES >= 2).
        model_class: the functional keras.Model class to build.
    Returns:
        model_class named "mask_rcnn"; outputs in the order of
        mrcnn.core.outputs.TRAINING_OUTPUTS.
    """
    config.validate(training=True)
    with dtype_policy_scope(getattr(config, "MIXED_PRECISION", None)):
        inputs = _image_inputs(config) + _target_inputs(config)
        input_image, input_image_meta, input_rpn_match, input_rpn_bbox, \
            input_gt_class_ids, input_gt_boxes, input_gt_masks = inputs[:7]

        feature_maps, rpn = _backbone_and_rpn(config, input_image)
        rpn_rois = _proposals(config, rpn, _training_anchors(config, input_image),
                              config.POST_NMS_ROIS_TRAINING,
                              padded_nms=bool(config.JIT_COMPILE))
        # RoIs to sample from: the proposals, or input_roi (the last input)
        if config.USE_RPN_ROIS:
            target_rois = rpn_rois
        else:
            target_rois = NormBoxesLayer(name="norm_input_roi")(
                [inputs[-1], input_image])
        rois, target_class_ids, target_bbox, target_mask = _detection_targets(
            config, target_rois, input_gt_class_ids, input_gt_boxes,
            input_gt_masks, input_image)
        box = _box_head(config, rois, feature_maps, input_image_meta,
                        sampler=roi_sampler(config))
        # The mask branch on the batch's positive RoIs only: [B, P, 28, 28, NC]
        mask_class_ids, mask_targets, mrcnn_mask = training_mask_branch(
            rois, target_class_ids, target_mask, feature_maps, input_image_meta,
            positive_slot_count(config.TRAIN_ROIS_PER_IMAGE,
                                config.ROI_POSITIVE_RATIO),
            config.MASK_POOL_SIZE, config.NUM_CLASSES,
            mask_head=_mask_head(config), train_bn=config.TRAIN_BN,
            sampler=roi_sampler(config))
        output_rois = KL.Identity(name="output_rois", dtype="float32")(rois)

        losses = _losses(input_image_meta, input_rpn_match, input_rpn_bbox, rpn,
                         target_class_ids, target_bbox, box,
                         mask_targets, mask_class_ids, mrcnn_mask)
        outputs = dict(rpn, **box, **losses, mrcnn_mask=mrcnn_mask,
                       rpn_rois=rpn_rois, output_rois=output_rois)
        return model_class(inputs, [outputs[n] for n in TRAINING_OUTPUTS],
                           name="mask_rcnn")


# ------------------------------------------------------------ the stages
def _image_inputs(config):
    """[input_image [B, H, W, C] float32, input_image_meta [B, META]]."""
    return [KL.Input(shape=[None, None, config.IMAGE_CHANNEL_COUNT],
                     name=INPUT_IMAGE),
            KL.Input(shape=[config.IMAGE_META_SIZE], name=INPUT_IMAGE_META)]


def _target_inputs(config):
    """The training inputs after the image's, in Matterport's order.

    Returns:
        [input_rpn_match, input_rpn_bbox, input_gt_class_ids,
        input_gt_boxes, input_gt_masks] (+ [input_roi] when USE_RPN_ROIS
        is False); shapes in build_training_model.
    """
    if config.USE_MINI_MASK:
        mask_hw = list(config.MINI_MASK_SHAPE)
    else:
        mask_hw = [int(s) for s in config.IMAGE_SHAPE[:2]]
    inputs = [
        # RPN targets
        KL.Input(shape=[None, 1], name=INPUT_RPN_MATCH, dtype="int32"),
        KL.Input(shape=[None, 4], name=INPUT_RPN_BBOX, dtype="float32"),
        # Ground truth
        KL.Input(shape=[None], name=INPUT_GT_CLASS_IDS, dtype="int32"),
        KL.Input(shape=[None, 4], name=INPUT_GT_BOXES, dtype="float32"),
        KL.Input(shape=mask_hw + [None], name=INPUT_GT_MASKS, dtype="bool")]
    if not config.USE_RPN_ROIS:
        inputs.append(KL.Input(shape=[config.POST_NMS_ROIS_TRAINING, 4],
                               name=INPUT_ROI, dtype="int32"))
    return inputs


def _backbone_and_rpn(config, input_image):
    """Backbone + FPN (FPN sec. 3) and the RPN on P2..P6 (FPN sec. 4.1).

    Returns:
        feature_maps: [P2, P3, P4, P5], each [B, h_i, w_i, TOP_DOWN_PYRAMID_SIZE].
        rpn: dict rpn_class_logits [B, A, 2], rpn_class [B, A, 2],
            rpn_bbox [B, A, (dy, dx, log(dh), log(dw))], all float32.
    """
    P2, P3, P4, P5, P6 = backbone_graph(
        input_image, _config_callable(config, "BACKBONE"),
        train_bn=config.TRAIN_BN,
        pyramid_size=config.TOP_DOWN_PYRAMID_SIZE)
    rpn = build_rpn_model(config.RPN_ANCHOR_STRIDE,
                          len(config.RPN_ANCHOR_RATIOS),
                          config.TOP_DOWN_PYRAMID_SIZE)
    # One RPN, shared over the levels: per level [logits, probs, bbox].
    level_outputs = [rpn([p]) for p in (P2, P3, P4, P5, P6)]
    # Concatenate each output over levels: [B, sum_i(h_i*w_i*A), ...]
    return [P2, P3, P4, P5], {
        n: KL.Concatenate(axis=1, dtype="float32", name=n)(list(o))
        for o, n in zip(zip(*level_outputs), RPN_OUTPUTS)}


def _training_anchors(config, input_image):
    """The anchors of the fixed training shape: [B, A, (y1, x1, y2, x2)]
    normalized (inference takes them as input_anchors)."""
    image_shape = [int(s) for s in config.IMAGE_SHAPE]
    return AnchorsLayer(
        config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
        config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE, image_shape,
        feature_shapes=compute_backbone_shapes(config, image_shape).tolist(),
        name="anchors")(input_image)


def _proposals(config, rpn, anchors, count, padded_nms=False):
    """RPN scores and deltas -> [B, count, (y1, x1, y2, x2)] normalized,
    zero-padded proposals (layer "ROI"); padded_nms: the fixed-size NMS
    XLA compiles (training with JIT_COMPILE)."""
    return ProposalLayer(
        count, config.RPN_NMS_THRESHOLD,
        rpn_bbox_std_dev=np.asarray(config.RPN_BBOX_STD_DEV, np.float32),
        pre_nms_limit=config.PRE_NMS_LIMIT, padded_nms=padded_nms,
        name="ROI")([rpn["rpn_class"], rpn["rpn_bbox"], anchors])


def _detection_targets(config, target_rois, gt_class_ids, gt_boxes, gt_masks,
                       input_image):
    """Sample RoIs and build their targets (Mask R-CNN sec. 3.1, training).

    Args:
        target_rois: [B, R', (y1, x1, y2, x2)] normalized.
        gt_class_ids, gt_boxes (pixels), gt_masks: the ground-truth inputs.
        input_image: [B, H, W, C], whose size normalizes gt_boxes.
    Returns:
        rois [B, R, 4] normalized (positives first), target_class_ids
        [B, R] int32, target_bbox [B, R, 4], target_mask [B, R, 28, 28].
    """
    # [B, G, 4] pixels -> normalized
    gt_boxes = NormBoxesLayer(name="norm_gt_boxes")([gt_boxes, input_image])
    return DetectionTargetLayer(
        config.TRAIN_ROIS_PER_IMAGE, config.ROI_POSITIVE_RATIO,
        np.asarray(config.BBOX_STD_DEV, np.float32),
        list(config.MASK_SHAPE), config.USE_MINI_MASK,
        name="proposal_targets", sampler=roi_sampler(config))(
            [target_rois, gt_class_ids, gt_boxes, gt_masks])


def _box_head(config, rois, feature_maps, image_meta,
              sampler="crop_and_resize", static_crops=False):
    """Classifier and box regressor on the RoIs (Mask R-CNN sec. 3);
    sampler: PyramidROIAlign's ("gather" in a JIT_COMPILE training graph);
    static_crops: its crop_every_level.

    Returns:
        dict mrcnn_class_logits [B, N, NC], mrcnn_class [B, N, NC],
        mrcnn_bbox [B, N, NC, (dy, dx, log(dh), log(dw))].
    """
    logits, probs, deltas = fpn_classifier_graph(
        rois, feature_maps, image_meta, config.POOL_SIZE,
        config.NUM_CLASSES, train_bn=config.TRAIN_BN,
        fc_layers_size=config.FPN_CLASSIF_FC_LAYERS_SIZE,
        roi_sampler=sampler, static_crops=static_crops)
    return dict(mrcnn_class_logits=logits, mrcnn_class=probs,
                mrcnn_bbox=deltas)


def _detections(config, rois, box, image_meta):
    """The box head's refined, NMS-filtered boxes (layer "mrcnn_detection"):
    [B, D, (y1, x1, y2, x2, class_id, score)] normalized, zero-padded."""
    return DetectionLayer(
        config.DETECTION_MAX_INSTANCES, config.DETECTION_MIN_CONFIDENCE,
        config.DETECTION_NMS_THRESHOLD,
        np.asarray(config.BBOX_STD_DEV, np.float32),
        name="mrcnn_detection")(
            [rois, box["mrcnn_class"], box["mrcnn_bbox"], image_meta])


def _losses(image_meta, rpn_match, rpn_bbox_targets, rpn, target_class_ids,
            target_bbox, box, mask_targets, mask_class_ids, mrcnn_mask):
    """The five losses (float32 scalars), as a dict by loss name.

    Args:
        image_meta, rpn_match, rpn_bbox_targets: the training inputs
            input_image_meta, input_rpn_match, input_rpn_bbox.
        rpn: _backbone_and_rpn's dict.
        target_class_ids [B, R], target_bbox [B, R, 4]: _detection_targets'.
        box: _box_head's dict.
        mask_targets [B, P, 28, 28], mask_class_ids [B, P], mrcnn_mask
            [B, P, 28, 28, NC]: training_mask_branch's.
    """
    active_class_ids = ActiveClassIds(name="active_class_ids")(image_meta)
    return dict(
        rpn_class_loss=RpnClassLoss(name="rpn_class_loss")(
            [rpn_match, rpn["rpn_class_logits"]]),
        rpn_bbox_loss=RpnBboxLoss(name="rpn_bbox_loss")(
            [rpn_bbox_targets, rpn_match, rpn["rpn_bbox"]]),
        mrcnn_class_loss=MrcnnClassLoss(name="mrcnn_class_loss")(
            [target_class_ids, box["mrcnn_class_logits"], active_class_ids]),
        mrcnn_bbox_loss=MrcnnBboxLoss(name="mrcnn_bbox_loss")(
            [target_bbox, target_class_ids, box["mrcnn_bbox"]]),
        mrcnn_mask_loss=MrcnnMaskLoss(name="mrcnn_mask_loss")(
            [mask_targets, mask_class_ids, mrcnn_mask]))


# ------------------------------------------------------------ helpers
@contextlib.contextmanager
def dtype_policy_scope(policy_name):
    """Build layers under a Keras dtype policy, restoring the global one after.

    Args:
        policy_name: None/"float32", "mixed_bfloat16" or "mixed_float16".
    """
    previous = keras.config.dtype_policy()
    if policy_name:
        keras.config.set_dtype_policy(policy_name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _config_callable(config, attr):
    """config.<attr>, a function set as a plain class attribute included
    (Python binds those to the instance; Matterport asked for staticmethod)."""
    value = getattr(config, attr, None)
    if inspect.ismethod(value) and value.__self__ is config:
        return value.__func__
    return value


def roi_sampler(config):
    """The training graph's bilinear sampler (PyramidROIAlign, mask
    targets): "gather" when Config.JIT_COMPILE (XLA has no CropAndResize),
    else "crop_and_resize"."""
    return "gather" if getattr(config, "JIT_COMPILE", False) else \
        "crop_and_resize"


def _mask_head(config):
    """The mask head's convolutions: config.MASK_HEAD or fpn_mask_head.

    A MASK_HEAD callable ``f(roi_features, num_classes, train_bn)`` maps
    RoIAlign features [B, N, MASK_POOL_SIZE, MASK_POOL_SIZE, D] to float32
    per-class mask probabilities [B, N, MASK_SHAPE[0], MASK_SHAPE[1], NC].
    """
    return _config_callable(config, "MASK_HEAD") or fpn_mask_head
