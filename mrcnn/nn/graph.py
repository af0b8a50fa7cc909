"""The Mask R-CNN Keras graphs: the one place a Config becomes layer arguments.

Shape shorthand: B = batch (any size; the graphs do not fix it),
H, W = molded image size, C = IMAGE_CHANNEL_COUNT, A = anchors of all levels,
N = RoIs per image (POST_NMS_ROIS_INFERENCE, or TRAIN_ROIS_PER_IMAGE in
training), D = DETECTION_MAX_INSTANCES, NC = NUM_CLASSES, G =
MAX_GT_INSTANCES, META = IMAGE_META_SIZE.

Inference model (Mask R-CNN fig. 1 read left to right):
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
import tensorflow as tf
from keras import layers as KL

from mrcnn.core.anchors import compute_backbone_shapes, generate_pyramid_anchors
from mrcnn.core.image_meta import META_ACTIVE_CLASS_IDS
from mrcnn.core.outputs import (
    INFERENCE_OUTPUTS, INPUT_ANCHORS, INPUT_GT_BOXES, INPUT_GT_CLASS_IDS,
    INPUT_GT_MASKS, INPUT_IMAGE, INPUT_IMAGE_META, INPUT_ROI, INPUT_RPN_BBOX,
    INPUT_RPN_MATCH, LOSS_NAMES, RPN_OUTPUTS, TRAINING_OUTPUTS)
from mrcnn.nn.backbone import backbone_graph
from mrcnn.nn.box_ops import norm_boxes_graph
from mrcnn.nn.detection import DetectionLayer
from mrcnn.nn.detection_target import DetectionTargetLayer
from mrcnn.nn.heads import fpn_classifier_graph, fpn_mask_head
from mrcnn.nn.losses import (MrcnnBboxLoss, MrcnnClassLoss, MrcnnMaskLoss,
                             RpnBboxLoss, RpnClassLoss)
from mrcnn.nn.proposal import ProposalLayer
from mrcnn.nn.roi_align import PyramidROIAlign
from mrcnn.nn.rpn import build_rpn_model


@keras.saving.register_keras_serializable(package="mrcnn")
class MaskRCNNModel(keras.Model):
    """The functional Mask R-CNN keras.Model.

    Built like any functional model (``MaskRCNNModel(inputs, outputs,
    name=...)``). The one difference from keras.Model: ``metrics_names`` of
    a training model lists ``loss`` and the five loss names, as Matterport's
    compile() left it. Reading and writing Matterport's ``.h5`` files with
    ``save_weights`` / ``load_weights`` is added above this floor, by
    `mrcnn.weights.keras_model.MatterportKerasModel`.
    """

    @property
    def metrics_names(self):
        names = list(self.output_names)
        losses = [n for n in LOSS_NAMES if n in names]
        if losses:
            return ["loss"] + losses
        return super().metrics_names


@keras.saving.register_keras_serializable(package="mrcnn")
class AnchorsLayer(KL.Layer):
    """The pyramid anchors of a fixed image shape, tiled over the batch.

    Replaces Matterport's ``Lambda(lambda x: tf.Variable(anchors))``: the
    anchors are a constant computed from explicit arguments.

    Args:
        scales: one anchor side in pixels per level (RPN_ANCHOR_SCALES).
        ratios: width/height ratios (RPN_ANCHOR_RATIOS).
        feature_strides: stride of each level (BACKBONE_STRIDES).
        anchor_stride: RPN_ANCHOR_STRIDE.
        image_shape: (H, W[, C]) of the molded training images.
        feature_shapes: optional [levels, (h, w)]; default
            ceil(image size / stride) per level.

    Input: input_image [B, H, W, C] (only its batch size is used).
    Output: float32 [B, A, (y1, x1, y2, x2)] normalized anchors.
    """

    def __init__(self, scales, ratios, feature_strides, anchor_stride,
                 image_shape, feature_shapes=None, name="anchors", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(name=name, **kwargs)
        self.scales = [float(s) for s in np.atleast_1d(scales)]
        self.ratios = [float(r) for r in np.atleast_1d(ratios)]
        self.feature_strides = [int(s) for s in feature_strides]
        self.anchor_stride = int(anchor_stride)
        self.image_shape = [int(s) for s in image_shape]
        if feature_shapes is None:
            feature_shapes = [[int(np.ceil(self.image_shape[0] / s)),
                               int(np.ceil(self.image_shape[1] / s))]
                              for s in self.feature_strides]
        self.feature_shapes = [[int(h), int(w)] for h, w in feature_shapes]
        anchors = generate_pyramid_anchors(self.scales, self.ratios,
                                           self.feature_shapes,
                                           self.feature_strides,
                                           self.anchor_stride)
        h, w = self.image_shape[:2]
        scale = np.array([h - 1, w - 1, h - 1, w - 1], np.float64)
        shift = np.array([0, 0, 1, 1], np.float64)
        self._anchors = ((anchors - shift) / scale).astype(np.float32)  # [A, 4]

    def call(self, input_image):
        anchors = tf.constant(self._anchors)
        batch = tf.shape(input_image)[0]
        # [A, 4] -> [B, A, 4]
        return tf.tile(anchors[tf.newaxis], [batch, 1, 1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._anchors.shape[0], 4)

    def get_config(self):
        config = super().get_config()
        config.update(scales=self.scales, ratios=self.ratios,
                      feature_strides=self.feature_strides,
                      anchor_stride=self.anchor_stride,
                      image_shape=self.image_shape,
                      feature_shapes=self.feature_shapes)
        return config


@keras.saving.register_keras_serializable(package="mrcnn")
class NormBoxesLayer(KL.Layer):
    """Pixel boxes -> normalized boxes, using the image tensor's own size.

    Inputs: [boxes [B, G, (y1, x1, y2, x2)] pixels, image [B, H, W, C]].
    Output: float32 [B, G, (y1, x1, y2, x2)] normalized.
    """

    def __init__(self, name=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(name=name, **kwargs)

    def call(self, inputs):
        boxes, image = inputs
        return norm_boxes_graph(boxes, tf.shape(image)[1:3])

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[0])


@keras.saving.register_keras_serializable(package="mrcnn")
class ActiveClassIds(KL.Layer):
    """The active_class_ids field of image meta rows.

    Input: image_meta [B, META]. Output: float32 [B, NC].
    """

    def __init__(self, name=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(name=name, **kwargs)

    def call(self, image_meta):
        return tf.cast(image_meta, tf.float32)[:, META_ACTIVE_CLASS_IDS]

    def compute_output_shape(self, input_shape):
        fixed = META_ACTIVE_CLASS_IDS.start
        return (input_shape[0], None if input_shape[1] is None
                else input_shape[1] - fixed)


@keras.saving.register_keras_serializable(package="mrcnn")
class LeadingRois(KL.Layer):
    """The first `count` rows of per-RoI tensors (the positive RoI slots).

    DetectionTargetLayer puts an image's positive RoIs first and keeps at
    most int(TRAIN_ROIS_PER_IMAGE * ROI_POSITIVE_RATIO) of them, so the
    first `count` rows hold every positive. The mask loss only looks at
    positives (Mask R-CNN sec. 3, L_mask "defined only on positive RoIs"),
    so running the mask head on these rows alone gives the same loss and
    gradients for about a third of the mask head's cost in training.

    Inputs: a list of tensors [B, T, ...]. Outputs: the same list [B, count, ...].
    """

    def __init__(self, count, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.count = int(count)

    def call(self, inputs):
        return [x[:, :self.count] for x in inputs]

    def compute_output_shape(self, input_shapes):
        return [(s[0], self.count) + tuple(s[2:]) for s in input_shapes]

    def get_config(self):
        config = super().get_config()
        config["count"] = self.count
        return config


@keras.saving.register_keras_serializable(package="mrcnn")
class GatherPositives(KL.Layer):
    """The positive RoIs of the whole batch as one list (training).

    An image has 0 to P positive RoIs, first in its slots; the mask loss
    looks at nothing else. Packing the batch's positives into one list
    before the mask head's convolutions skips the negative and padding
    slots (22 % of the P slots after training on the shapes benchmark,
    half at the start) with the same loss and gradients. One zero row is
    appended so the list is never empty.

    Inputs: features [B, P, ...], class_ids [B, P] (> 0: positive).
    Output: [1, M + 1, ...], the M positives in (image, slot) order, then
        a row of zeros.
    """

    def call(self, inputs):
        x, class_ids = inputs
        where = tf.where(class_ids > 0)            # [M, 2] (image, slot)
        rows = tf.gather_nd(x, where)              # [M, ...]
        return tf.concat([rows, tf.zeros_like(x[:1, 0])], axis=0)[None]

    def compute_output_shape(self, input_shapes):
        return (1, None) + tuple(input_shapes[0][2:])


@keras.saving.register_keras_serializable(package="mrcnn")
class ScatterPositives(KL.Layer):
    """Puts GatherPositives' rows back in their (image, slot), zeros elsewhere.

    Inputs: rows [1, M + 1, ...], class_ids [B, P] (> 0: positive).
    Output: [B, P, ...].
    """

    def call(self, inputs):
        rows, class_ids = inputs
        where = tf.where(class_ids > 0)            # [M, 2]
        shape = tf.concat([tf.shape(class_ids, out_type=tf.int64),
                           tf.shape(rows, out_type=tf.int64)[2:]], axis=0)
        return tf.scatter_nd(where, rows[0, :tf.shape(where)[0]], shape)

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[1][:2]) + tuple(input_shapes[0][2:])


@keras.saving.register_keras_serializable(package="mrcnn")
class DetectionBoxes(KL.Layer):
    """Boxes of the detections, trimmed to the longest valid list in the batch.

    DetectionLayer sorts each image's detections first and zero-pads the
    rest, so columns past the batch's largest detection count hold only
    padding; the mask head skips them (with real weights an image has far
    fewer than DETECTION_MAX_INSTANCES detections).

    Input: detections [B, D, (y1, x1, y2, x2, class_id, score)].
    Output: float32 [B, N, (y1, x1, y2, x2)] normalized, 1 <= N <= D.
    """

    def __init__(self, name=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(name=name, **kwargs)

    def call(self, detections):
        counts = tf.reduce_sum(tf.cast(detections[..., 4] > 0, tf.int32), axis=1)  # [B]
        n = tf.maximum(tf.reduce_max(counts), 1)
        return detections[:, :n, :4]  # [B, D, 6] -> [B, N, 4]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None, 4)


@keras.saving.register_keras_serializable(package="mrcnn")
class PadRois(KL.Layer):
    """Zero-pad the RoI axis of a tensor to a fixed length.

    Input: [B, N, ...] with N <= count. Output: [B, count, ...].
    """

    def __init__(self, count, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.count = int(count)

    def call(self, inputs):
        pad = self.count - tf.shape(inputs)[1]
        paddings = tf.concat([[[0, 0], [0, pad]],
                              tf.zeros([len(inputs.shape) - 2, 2], tf.int32)], axis=0)
        out = tf.pad(inputs, paddings)
        return tf.ensure_shape(out, (None, self.count) + tuple(inputs.shape[2:]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.count) + tuple(input_shape[2:])

    def get_config(self):
        config = super().get_config()
        config["count"] = self.count
        return config


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


def _backbone_and_rpn(config, input_image):
    """Shared front of both graphs.

    Returns:
        mrcnn_feature_maps: [P2, P3, P4, P5].
        rpn_class_logits [B, A, 2], rpn_class [B, A, 2],
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
    rpn_class_logits, rpn_class, rpn_bbox = [
        KL.Concatenate(axis=1, dtype="float32", name=n)(list(o))
        for o, n in zip(zip(*level_outputs), RPN_OUTPUTS)]
    return [P2, P3, P4, P5], rpn_class_logits, rpn_class, rpn_bbox


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


def build_inference_model(config, model_class=MaskRCNNModel):
    """The inference keras.Model (inputs and outputs in the module docstring).

    Args:
        config: a Config.
        model_class: the functional keras.Model class to build (MaskRCNN
            passes one that reads and writes Matterport's .h5 files).
    Returns:
        model_class named "mask_rcnn"; outputs in the order of
        mrcnn.core.outputs.INFERENCE_OUTPUTS.
    """
    with dtype_policy_scope(getattr(config, "MIXED_PRECISION", None)):
        input_image = KL.Input(shape=[None, None, config.IMAGE_CHANNEL_COUNT],
                               name=INPUT_IMAGE)
        input_image_meta = KL.Input(shape=[config.IMAGE_META_SIZE],
                                    name=INPUT_IMAGE_META)
        input_anchors = KL.Input(shape=[None, 4], name=INPUT_ANCHORS)

        mrcnn_feature_maps, rpn_class_logits, rpn_class, rpn_bbox = \
            _backbone_and_rpn(config, input_image)

        # [B, N, (y1, x1, y2, x2)] normalized, zero-padded
        rpn_rois = ProposalLayer(
            config.POST_NMS_ROIS_INFERENCE, config.RPN_NMS_THRESHOLD,
            rpn_bbox_std_dev=np.asarray(config.RPN_BBOX_STD_DEV, np.float32),
            pre_nms_limit=config.PRE_NMS_LIMIT,
            name="ROI")([rpn_class, rpn_bbox, input_anchors])

        mrcnn_class_logits, mrcnn_class, mrcnn_bbox = fpn_classifier_graph(
            rpn_rois, mrcnn_feature_maps, input_image_meta, config.POOL_SIZE,
            config.NUM_CLASSES, train_bn=config.TRAIN_BN,
            fc_layers_size=config.FPN_CLASSIF_FC_LAYERS_SIZE)

        # [B, D, (y1, x1, y2, x2, class_id, score)] normalized
        detections = DetectionLayer(
            config.DETECTION_MAX_INSTANCES, config.DETECTION_MIN_CONFIDENCE,
            config.DETECTION_NMS_THRESHOLD,
            np.asarray(config.BBOX_STD_DEV, np.float32),
            name="mrcnn_detection")(
                [rpn_rois, mrcnn_class, mrcnn_bbox, input_image_meta])

        # Masks of the final detections only (Mask R-CNN sec. 3.1, inference),
        # computed for the N valid columns and zero-padded back to D:
        # [B, N, 4] -> [B, N, 28, 28, NC] -> [B, D, 28, 28, NC]
        detection_boxes = DetectionBoxes(name="detection_boxes")(detections)
        mask_features = PyramidROIAlign(
            [config.MASK_POOL_SIZE, config.MASK_POOL_SIZE],
            name="roi_align_mask")(
                [detection_boxes, input_image_meta] + mrcnn_feature_maps)
        mrcnn_mask = _mask_head(config)(mask_features, config.NUM_CLASSES,
                                        train_bn=config.TRAIN_BN)
        mrcnn_mask = PadRois(config.DETECTION_MAX_INSTANCES,
                             name="mrcnn_mask_padded", dtype="float32")(mrcnn_mask)

        outputs = dict(detections=detections, mrcnn_class=mrcnn_class,
                       mrcnn_bbox=mrcnn_bbox, mrcnn_mask=mrcnn_mask,
                       rpn_rois=rpn_rois, rpn_class=rpn_class,
                       rpn_bbox=rpn_bbox)
        return model_class(
            [input_image, input_image_meta, input_anchors],
            [outputs[name] for name in INFERENCE_OUTPUTS], name="mask_rcnn")


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
    image_shape = [int(s) for s in config.IMAGE_SHAPE]
    with dtype_policy_scope(getattr(config, "MIXED_PRECISION", None)):
        input_image = KL.Input(shape=[None, None, config.IMAGE_CHANNEL_COUNT],
                               name=INPUT_IMAGE)
        input_image_meta = KL.Input(shape=[config.IMAGE_META_SIZE],
                                    name=INPUT_IMAGE_META)
        # RPN targets
        input_rpn_match = KL.Input(shape=[None, 1], name=INPUT_RPN_MATCH,
                                   dtype="int32")
        input_rpn_bbox = KL.Input(shape=[None, 4], name=INPUT_RPN_BBOX,
                                  dtype="float32")
        # Ground truth
        input_gt_class_ids = KL.Input(shape=[None], name=INPUT_GT_CLASS_IDS,
                                      dtype="int32")
        input_gt_boxes = KL.Input(shape=[None, 4], name=INPUT_GT_BOXES,
                                  dtype="float32")
        if config.USE_MINI_MASK:
            mask_hw = list(config.MINI_MASK_SHAPE)
        else:
            mask_hw = image_shape[:2]
        input_gt_masks = KL.Input(shape=mask_hw + [None], name=INPUT_GT_MASKS,
                                  dtype="bool")
        # [B, G, 4] pixels -> normalized
        gt_boxes = NormBoxesLayer(name="norm_gt_boxes")(
            [input_gt_boxes, input_image])

        mrcnn_feature_maps, rpn_class_logits, rpn_class, rpn_bbox = \
            _backbone_and_rpn(config, input_image)

        anchors = AnchorsLayer(
            config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
            config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE, image_shape,
            feature_shapes=compute_backbone_shapes(config, image_shape).tolist(),
            name="anchors")(input_image)

        rpn_rois = ProposalLayer(
            config.POST_NMS_ROIS_TRAINING, config.RPN_NMS_THRESHOLD,
            rpn_bbox_std_dev=np.asarray(config.RPN_BBOX_STD_DEV, np.float32),
            pre_nms_limit=config.PRE_NMS_LIMIT,
            padded_nms=bool(getattr(config, "JIT_COMPILE", False)),
            name="ROI")([rpn_class, rpn_bbox, anchors])

        extra_inputs = []
        if config.USE_RPN_ROIS:
            target_rois = rpn_rois
        else:
            input_rois = KL.Input(shape=[config.POST_NMS_ROIS_TRAINING, 4],
                                  name=INPUT_ROI, dtype="int32")
            extra_inputs = [input_rois]
            target_rois = NormBoxesLayer(name="norm_input_roi")(
                [input_rois, input_image])

        active_class_ids = ActiveClassIds(name="active_class_ids")(
            input_image_meta)

        # Sample RoIs and build their targets (Mask R-CNN sec. 3.1, training).
        # rois [B, R, 4] normalized, target_class_ids [B, R],
        # target_bbox [B, R, 4], target_mask [B, R, 28, 28]
        rois, target_class_ids, target_bbox, target_mask = DetectionTargetLayer(
            config.TRAIN_ROIS_PER_IMAGE, config.ROI_POSITIVE_RATIO,
            np.asarray(config.BBOX_STD_DEV, np.float32),
            list(config.MASK_SHAPE), config.USE_MINI_MASK,
            name="proposal_targets", sampler=roi_sampler(config))(
                [target_rois, input_gt_class_ids, gt_boxes, input_gt_masks])

        mrcnn_class_logits, mrcnn_class, mrcnn_bbox = fpn_classifier_graph(
            rois, mrcnn_feature_maps, input_image_meta, config.POOL_SIZE,
            config.NUM_CLASSES, train_bn=config.TRAIN_BN,
            fc_layers_size=config.FPN_CLASSIF_FC_LAYERS_SIZE,
            roi_sampler=roi_sampler(config))
        # The mask branch runs on the positive slots only (see LeadingRois):
        # [B, T, ...] -> [B, P, ...], P = int(T * ROI_POSITIVE_RATIO).
        positive_slots = max(1, int(config.TRAIN_ROIS_PER_IMAGE *
                                    config.ROI_POSITIVE_RATIO))
        mask_rois, mask_target_class_ids, mask_targets = LeadingRois(
            positive_slots, name="positive_rois")(
                [rois, target_class_ids, target_mask])
        # ... and its convolutions on the batch's positives only:
        # [B, P, 14, 14, D] -> [1, M + 1, 14, 14, D] -> [B, P, 28, 28, NC]
        mask_features = PyramidROIAlign(
            [config.MASK_POOL_SIZE, config.MASK_POOL_SIZE],
            name="roi_align_mask", sampler=roi_sampler(config))(
                [mask_rois, input_image_meta] + mrcnn_feature_maps)
        positives = GatherPositives(name="gather_positives")(
            [mask_features, mask_target_class_ids])
        mrcnn_mask = ScatterPositives(name="scatter_positives",
                                      dtype="float32")(
            [_mask_head(config)(positives, config.NUM_CLASSES,
                                train_bn=config.TRAIN_BN),
             mask_target_class_ids])

        output_rois = KL.Identity(name="output_rois", dtype="float32")(rois)

        rpn_class_loss = RpnClassLoss(name="rpn_class_loss")(
            [input_rpn_match, rpn_class_logits])
        rpn_bbox_loss = RpnBboxLoss(name="rpn_bbox_loss")(
            [input_rpn_bbox, input_rpn_match, rpn_bbox])
        class_loss = MrcnnClassLoss(name="mrcnn_class_loss")(
            [target_class_ids, mrcnn_class_logits, active_class_ids])
        bbox_loss = MrcnnBboxLoss(name="mrcnn_bbox_loss")(
            [target_bbox, target_class_ids, mrcnn_bbox])
        mask_loss = MrcnnMaskLoss(name="mrcnn_mask_loss")(
            [mask_targets, mask_target_class_ids, mrcnn_mask])

        inputs = [input_image, input_image_meta, input_rpn_match,
                  input_rpn_bbox, input_gt_class_ids, input_gt_boxes,
                  input_gt_masks] + extra_inputs
        outputs = dict(rpn_class_logits=rpn_class_logits, rpn_class=rpn_class,
                       rpn_bbox=rpn_bbox, mrcnn_class_logits=mrcnn_class_logits,
                       mrcnn_class=mrcnn_class, mrcnn_bbox=mrcnn_bbox,
                       mrcnn_mask=mrcnn_mask, rpn_rois=rpn_rois,
                       output_rois=output_rois, rpn_class_loss=rpn_class_loss,
                       rpn_bbox_loss=rpn_bbox_loss, mrcnn_class_loss=class_loss,
                       mrcnn_bbox_loss=bbox_loss, mrcnn_mask_loss=mask_loss)
        return model_class(inputs, [outputs[n] for n in TRAINING_OUTPUTS],
                           name="mask_rcnn")
