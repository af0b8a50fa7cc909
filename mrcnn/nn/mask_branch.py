"""The mask branch: which RoIs reach the mask head (Mask R-CNN sec. 3, 3.1).

Shape shorthand: B = batch, T = TRAIN_ROIS_PER_IMAGE, P = positive RoI
slots per image (int(T * ROI_POSITIVE_RATIO), at least 1), M = positive
RoIs of the whole batch, D = DETECTION_MAX_INSTANCES, N = detections of
the image with the most of them (1 <= N <= D), S = MASK_POOL_SIZE,
(mh, mw) = MASK_SHAPE, NC = NUM_CLASSES, C = TOP_DOWN_PYRAMID_SIZE.

Training: L_mask is "defined only on positive RoIs" (sec. 3), so the head
runs on the batch's positive RoIs alone. DetectionTargetLayer puts each
image's positives first and keeps at most P of them; `LeadingRois` keeps
those P slots, `GatherPositives` packs the positives of the whole batch
into one list for the head's convolutions, `ScatterPositives` puts each
mask back in its (image, slot). Same loss and gradients as running the head
on every slot (Matterport's computation), for a fraction of its cost.

Inference: masks are computed for the final detections only (sec. 3.1,
"Inference"): `DetectionBoxes` trims the detections to the batch's longest
list, `PadRois` zero-pads the masks back to D rows.

The mask head itself (the convolutions, `heads.fpn_mask_head` or a
config's MASK_HEAD) is passed in as `mask_head(features, num_classes,
train_bn=...)`: [B', N', S, S, C] -> [B', N', mh, mw, NC] float32.
"""

import keras
import tensorflow as tf
from keras import layers as KL

from mrcnn.nn.heads import fpn_mask_head
from mrcnn.nn.roi_align import PyramidROIAlign


def positive_slot_count(train_rois_per_image, roi_positive_ratio):
    """P, the leading RoI slots that can hold a positive (at least 1).

    DetectionTargetLayer keeps int(T * ROI_POSITIVE_RATIO) positives at most.
    """
    return max(1, int(train_rois_per_image * roi_positive_ratio))


@keras.saving.register_keras_serializable(package="mrcnn")
class LeadingRois(KL.Layer):
    """The first `count` rows of per-RoI tensors (the positive RoI slots).

    DetectionTargetLayer puts an image's positive RoIs first and keeps at
    most int(TRAIN_ROIS_PER_IMAGE * ROI_POSITIVE_RATIO) of them, so the
    first `count` rows hold every positive. The mask loss only looks at
    positives (Mask R-CNN sec. 3, L_mask "defined only on positive RoIs"),
    so running the mask head on these rows alone gives the same loss and
    gradients for about a third of the mask head's cost in training.

    Args:
        count: P, the rows kept.

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
        # [M, ...] + [1, ...] -> [1, M + 1, ...]
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
        # [M, ...] (the padding row dropped) -> [B, P, ...]
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

    Args:
        trim: False keeps all D slots (static shape; the mask branch with
            static crops trims the crops instead, LeadingDetections).

    Input: detections [B, D, (y1, x1, y2, x2, class_id, score)].
    Output: float32 [B, N, (y1, x1, y2, x2)] normalized, 1 <= N <= D
    (N = D when not trimming).
    """

    def __init__(self, name=None, trim=True, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(name=name, **kwargs)
        self.trim = bool(trim)

    def get_config(self):
        config = super().get_config()
        if not self.trim:
            config.update(trim=False)
        return config

    def call(self, detections):
        if not self.trim:
            return detections[..., :4]  # [B, D, 6] -> [B, D, 4]
        n = longest_detection_list(detections)
        return detections[:, :n, :4]  # [B, D, 6] -> [B, N, 4]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None if self.trim else input_shape[1], 4)


def longest_detection_list(detections):
    """int32 scalar N: the batch's largest valid detection count, at least 1.

    Args:
        detections: [B, D, (y1, x1, y2, x2, class_id, score)], valid rows
            first (class_id > 0), zero rows after.
    """
    counts = tf.reduce_sum(tf.cast(detections[..., 4] > 0, tf.int32), axis=1)  # [B]
    return tf.maximum(tf.reduce_max(counts), 1)


@keras.saving.register_keras_serializable(package="mrcnn")
class LeadingDetections(KL.Layer):
    """Rows of a per-detection tensor, trimmed as DetectionBoxes trims boxes.

    Inputs: [x, detections], x [B, D, ...] (one row per detection slot) and
    detections [B, D, 6] as DetectionBoxes takes them.
    Output: x[:, :N], [B, N, ...], N the batch's longest detection list.
    """

    def call(self, inputs):
        x, detections = inputs
        return x[:, :longest_detection_list(detections)]

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], None) + tuple(input_shape[0][2:])


@keras.saving.register_keras_serializable(package="mrcnn")
class PadRois(KL.Layer):
    """Zero-pad the RoI axis of a tensor to a fixed length.

    Args:
        count: the padded length (DETECTION_MAX_INSTANCES).

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


def training_mask_branch(rois, target_class_ids, target_masks, feature_maps,
                         image_meta, positive_slots, pool_size, num_classes,
                         mask_head=fpn_mask_head, train_bn=True,
                         sampler="crop_and_resize"):
    """The mask branch of the training graph, on the positive RoIs only.

    Args:
        rois: [B, T, (y1, x1, y2, x2)] normalized, DetectionTargetLayer's
            (positives first, then negatives, then zero rows).
        target_class_ids: int32 [B, T], > 0 for positives.
        target_masks: float32 [B, T, mh, mw] mask targets.
        feature_maps: [P2, P3, P4, P5], each [B, h_i, w_i, C].
        image_meta: [B, IMAGE_META_SIZE].
        positive_slots: P (`positive_slot_count`).
        pool_size: S, the side of the RoIAlign output.
        num_classes: NC.
        mask_head: the head's convolutions (see the module docstring).
        train_bn: passed to mask_head.
        sampler: PyramidROIAlign's bilinear sampler ("crop_and_resize", or
            "gather", which XLA compiles).

    Returns:
        mask_class_ids: int32 [B, P], the targets' class ids of the P slots.
        mask_targets: float32 [B, P, mh, mw].
        mrcnn_mask: float32 [B, P, mh, mw, NC], zero rows where a slot is
            not positive. Layers "positive_rois", "roi_align_mask",
            "gather_positives", the head's, "scatter_positives".
    """
    # [B, T, ...] -> [B, P, ...]
    mask_rois, mask_class_ids, mask_targets = LeadingRois(
        positive_slots, name="positive_rois")(
            [rois, target_class_ids, target_masks])
    # [B, P, S, S, C]
    features = PyramidROIAlign([pool_size, pool_size], name="roi_align_mask",
                               sampler=sampler)(
        [mask_rois, image_meta] + list(feature_maps))
    # [B, P, S, S, C] -> [1, M + 1, S, S, C] -> [1, M + 1, mh, mw, NC]
    positives = GatherPositives(name="gather_positives")(
        [features, mask_class_ids])
    scatter = ScatterPositives(name="scatter_positives", dtype="float32")
    masks = mask_head(positives, num_classes, train_bn=train_bn)
    # -> [B, P, mh, mw, NC]
    mrcnn_mask = scatter([masks, mask_class_ids])
    return mask_class_ids, mask_targets, mrcnn_mask


def inference_mask_branch(detections, feature_maps, image_meta, pool_size,
                          max_instances, num_classes, mask_head=fpn_mask_head,
                          train_bn=True, static_crops=False):
    """The mask branch of the inference graph, on the final detections.

    Args:
        detections: [B, D, (y1, x1, y2, x2, class_id, score)] normalized,
            DetectionLayer's (valid rows first, zero-padded).
        feature_maps: [P2, P3, P4, P5], each [B, h_i, w_i, C].
        image_meta: [B, IMAGE_META_SIZE].
        pool_size: S, the side of the RoIAlign output.
        max_instances: D.
        num_classes: NC.
        mask_head: the head's convolutions (see the module docstring).
        train_bn: passed to mask_head.
        static_crops: crop all D slots, every box at every pyramid level
            (PyramidROIAlign's crop_every_level), then keep the N leading
            ones: static crop shapes (no "Error in PredictCost()" logs in
            a SavedModel), same values, more crop work (the export).

    Returns:
        mrcnn_mask: float32 [B, D, mh, mw, NC], rows of the detections'
            masks, zero rows past the batch's longest detection list.
            Layers "detection_boxes", "roi_align_mask", the head's,
            "mrcnn_mask_padded" (and "leading_detection_crops" between
            RoIAlign and the head with static_crops).
    """
    # [B, D, 6] -> [B, N, 4], or all D slots with static crops
    boxes = DetectionBoxes(name="detection_boxes",
                           trim=not static_crops)(detections)
    # [B, N (or D), S, S, C]
    features = PyramidROIAlign([pool_size, pool_size], name="roi_align_mask",
                               crop_every_level=static_crops)(
        [boxes, image_meta] + list(feature_maps))
    if static_crops:
        # the crops of the detections only: [B, D, ...] -> [B, N, ...]
        features = LeadingDetections(name="leading_detection_crops")(
            [features, detections])
    # [B, N, mh, mw, NC] -> [B, D, mh, mw, NC]
    masks = mask_head(features, num_classes, train_bn=train_bn)
    return PadRois(max_instances, name="mrcnn_mask_padded",
                   dtype="float32")(masks)
