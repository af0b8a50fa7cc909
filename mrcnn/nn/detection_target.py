"""Training targets of the heads: sample RoIs, assign them to ground truth.

Mask R-CNN sec. 3.1 ("Training"): an RoI is positive when its IoU with a
ground-truth box is >= 0.5, negative otherwise; each image keeps T sampled
RoIs with a positive ratio (Fast R-CNN's 1:3). Positive RoIs get the class,
the box deltas (divided by BBOX_STD_DEV) and the mask of their best
ground-truth box; the mask target is the ground-truth mask cropped to the
RoI and resized to MASK_SHAPE.

Shape shorthand: B images, N proposals per image, G = MAX_GT_INSTANCES
ground-truth slots, T = train_rois_per_image, (mh, mw) = mask_shape, (h, w)
the ground-truth mask size (mini-mask or image).

Semantics are Matterport's detection_targets_graph, computed for the whole
batch at once with fixed shapes instead of per image with boolean masks:
random subsets come from top-k over uniform random keys, which samples
without replacement exactly like tf.random.shuffle followed by a slice.
"""

import keras
import numpy as np
import tensorflow as tf

from mrcnn.nn.box_ops import batch_overlaps_graph, box_refinement_graph
from mrcnn.nn.roi_align import SAMPLERS, check_sampler, crop_and_resize

# A proposal whose IoU with any crowd box reaches this is never a negative.
_CROWD_IOU = 0.001
_POSITIVE_IOU = 0.5


def _random_subset(candidates, k):
    """Random subset of the True entries of each row (without replacement).

    Args:
        candidates: [B, N] bool.
        k: int32 scalar <= N, number of indices returned per row.
    Returns:
        int32 [B, k] indices into N; each row starts with its True entries
        (in random order, as many as there are, at most k).
    """
    keys = tf.random.uniform(tf.shape(candidates), 0.0, 1.0)
    keys = tf.where(candidates, keys, -1.0)  # non-candidates sort last
    return tf.nn.top_k(keys, k, sorted=True).indices


@keras.saving.register_keras_serializable(package="mrcnn")
class DetectionTargetLayer(keras.layers.Layer):
    """Subsamples proposals and generates target class ids, deltas and masks.

    Args:
        train_rois_per_image: T, RoIs per image fed to the heads.
        roi_positive_ratio: fraction of positives among the T RoIs.
        bbox_std_dev: [4] the deltas targets are divided by.
        mask_shape: (mh, mw) of the mask targets.
        use_mini_mask: whether gt_masks are mini-masks (each mask resized to
            its own box) rather than full-image masks.
        name: layer name ("proposal_targets", as in Matterport).
        sampler: how the mask targets are cropped: "crop_and_resize"
            (default) or "gather" (compiles with XLA; see
            nn.roi_align.crop_and_resize_gather).

    Inputs (a list):
        proposals: [B, N, (y1, x1, y2, x2)] normalized, zero-padded rows.
        gt_class_ids: int32 [B, G]; 0 = padding, negative = crowd.
        gt_boxes: [B, G, (y1, x1, y2, x2)] normalized, zero-padded rows.
        gt_masks: [B, h, w, G] bool (or float) masks.

    Returns (a list):
        rois: float32 [B, T, (y1, x1, y2, x2)] normalized: positives first,
            then negatives, then zero rows.
        target_class_ids: int32 [B, T], 0 for negatives and padding.
        target_deltas: float32 [B, T, (dy, dx, log(dh), log(dw))] divided by
            bbox_std_dev, zero except for positives.
        target_mask: float32 [B, T, mh, mw] in {0, 1}, zero except for
            positives.

    Images without ground truth (or without positive proposals) give all-zero
    rows, as in Matterport (no positives means no negatives are kept either).
    """

    def __init__(self, train_rois_per_image, roi_positive_ratio, bbox_std_dev,
                 mask_shape, use_mini_mask, name="proposal_targets",
                 sampler="crop_and_resize", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(name=name, **kwargs)
        self.train_rois_per_image = int(train_rois_per_image)
        self.roi_positive_ratio = float(roi_positive_ratio)
        self.bbox_std_dev = [float(s) for s in np.reshape(bbox_std_dev, [-1])]
        self.mask_shape = [int(s) for s in mask_shape]
        self.use_mini_mask = bool(use_mini_mask)
        self.sampler = check_sampler(sampler, name)
        if self.train_rois_per_image < 1:
            raise ValueError("DetectionTargetLayer '{}': train_rois_per_image must "
                             "be >= 1, got {}".format(name, self.train_rois_per_image))
        if not 0.0 < self.roi_positive_ratio <= 1.0:
            raise ValueError("DetectionTargetLayer '{}': roi_positive_ratio must be "
                             "in (0, 1], got {}".format(name, self.roi_positive_ratio))
        if len(self.bbox_std_dev) != 4:
            raise ValueError("DetectionTargetLayer '{}': bbox_std_dev must have 4 "
                             "values, got {}".format(name, self.bbox_std_dev))
        if len(self.mask_shape) != 2 or min(self.mask_shape) < 1:
            raise ValueError("DetectionTargetLayer '{}': mask_shape must be two "
                             "positive ints, got {}".format(name, self.mask_shape))

    def get_config(self):
        config = super().get_config()
        config.update(train_rois_per_image=self.train_rois_per_image,
                      roi_positive_ratio=self.roi_positive_ratio,
                      bbox_std_dev=list(self.bbox_std_dev),
                      mask_shape=list(self.mask_shape),
                      use_mini_mask=self.use_mini_mask)
        if self.sampler != SAMPLERS[0]:
            config.update(sampler=self.sampler)
        return config

    def call(self, inputs):
        proposals = tf.cast(inputs[0], tf.float32)  # [B, N, 4]
        gt_class_ids = tf.cast(inputs[1], tf.int32)  # [B, G]
        gt_boxes = tf.cast(inputs[2], tf.float32)  # [B, G, 4]
        gt_masks = inputs[3]  # [B, h, w, G]
        T = self.train_rois_per_image
        batch = tf.shape(proposals)[0]
        num_proposals = tf.shape(proposals)[1]
        num_gt = tf.shape(gt_boxes)[1]

        # Zero rows are padding (Matterport's trim_zeros_graph).
        valid_proposal = tf.reduce_any(tf.not_equal(proposals, 0.0), axis=-1)  # [B, N]
        valid_gt = tf.reduce_any(tf.not_equal(gt_boxes, 0.0), axis=-1)  # [B, G]
        is_gt = tf.logical_and(valid_gt, gt_class_ids > 0)  # [B, G]
        is_crowd = tf.logical_and(valid_gt, gt_class_ids < 0)  # [B, G]

        overlaps = batch_overlaps_graph(proposals, gt_boxes)  # [B, N, G]
        # Crowd boxes are not ground truth, but proposals touching them are
        # not clean negatives either.
        crowd_iou_max = tf.reduce_max(
            tf.where(is_crowd[:, None, :], overlaps, 0.0), axis=2)  # [B, N]
        no_crowd = crowd_iou_max < _CROWD_IOU
        gt_overlaps = tf.where(is_gt[:, None, :], overlaps, -1.0)  # [B, N, G]
        roi_iou_max = tf.reduce_max(gt_overlaps, axis=2)  # [B, N]; -1 without gt
        positive = tf.logical_and(valid_proposal, roi_iou_max >= _POSITIVE_IOU)
        negative = tf.logical_and(
            valid_proposal, tf.logical_and(roi_iou_max < _POSITIVE_IOU, no_crowd))

        # Counts, as Matterport: at most int(T * ratio) positives, then
        # negatives to keep the ratio: int(pos / ratio) - pos.
        max_positives = int(T * self.roi_positive_ratio)
        positive_count = tf.minimum(
            tf.reduce_sum(tf.cast(positive, tf.int32), axis=1), max_positives)  # [B]
        r = 1.0 / self.roi_positive_ratio
        negative_count = tf.cast(r * tf.cast(positive_count, tf.float32),
                                 tf.int32) - positive_count
        negative_count = tf.minimum(negative_count,
                                    tf.reduce_sum(tf.cast(negative, tf.int32), axis=1))
        negative_count = tf.minimum(negative_count, T - positive_count)  # [B]

        # Random subsets; pad the index lists to T columns.
        k_pos = tf.minimum(max_positives, num_proposals)
        k_neg = tf.minimum(T, num_proposals)
        # [B, k] -> [B, T]
        positive_ix = tf.pad(_random_subset(positive, k_pos), [[0, 0], [0, T - k_pos]])
        negative_ix = tf.pad(_random_subset(negative, k_neg), [[0, 0], [0, T - k_neg]])

        # Row t of the output: positive t, negative t - P, or padding.
        rows = tf.range(T)[None, :]  # [1, T]
        row_is_positive = rows < positive_count[:, None]  # [B, T]
        row_is_negative = tf.logical_and(
            tf.logical_not(row_is_positive),
            rows < (positive_count + negative_count)[:, None])  # [B, T]
        negative_slot = tf.clip_by_value(rows - positive_count[:, None], 0, T - 1)
        # [B, T] gathered from [B, T] -> [B, T]
        roi_ix = tf.where(row_is_positive, positive_ix,
                          tf.gather(negative_ix, negative_slot, batch_dims=1))
        row_used = tf.logical_or(row_is_positive, row_is_negative)  # [B, T]

        # [B, N, 4] gathered by [B, T] -> [B, T, 4]
        rois = tf.gather(proposals, roi_ix, batch_dims=1)
        rois = tf.where(row_used[..., None], rois, 0.0)

        # Best ground truth of each RoI: [B, N, G] -> [B, N] -> [B, T]
        assignment = tf.gather(tf.argmax(gt_overlaps, axis=2, output_type=tf.int32),
                               roi_ix, batch_dims=1)
        assignment = tf.where(row_is_positive, assignment, 0)
        # [B, G, 4] gathered by [B, T] -> [B, T, 4]
        roi_gt_boxes = tf.gather(gt_boxes, assignment, batch_dims=1)
        # [B, G] gathered by [B, T] -> [B, T]
        target_class_ids = tf.where(
            row_is_positive, tf.gather(gt_class_ids, assignment, batch_dims=1), 0)

        # Deltas on positives only; other rows use a dummy unit box so that
        # no NaN/inf is ever computed (the padding rows are zero boxes).
        unit = tf.constant([0.0, 0.0, 1.0, 1.0])
        positive_rois = tf.where(row_is_positive[..., None], rois, unit)
        positive_gt = tf.where(row_is_positive[..., None], roi_gt_boxes, unit)
        target_deltas = box_refinement_graph(positive_rois, positive_gt) / tf.constant(
            self.bbox_std_dev, tf.float32)  # [B, T, 4]
        target_deltas = tf.where(row_is_positive[..., None], target_deltas, 0.0)

        target_mask = self._mask_targets(gt_masks, positive_rois, positive_gt,
                                         assignment, batch, num_gt)
        target_mask = tf.where(row_is_positive[..., None, None], target_mask, 0.0)

        rois = tf.stop_gradient(rois)
        target_deltas = tf.stop_gradient(target_deltas)
        target_mask = tf.stop_gradient(target_mask)
        return [rois, target_class_ids, target_deltas, target_mask]

    def _mask_targets(self, gt_masks, rois, roi_gt_boxes, assignment, batch, num_gt):
        """Crop each RoI's assigned gt mask and resize it to mask_shape.

        Args:
            gt_masks: [B, h, w, G] bool/float.
            rois: [B, T, (y1, x1, y2, x2)] normalized image coordinates.
            roi_gt_boxes: [B, T, (y1, x1, y2, x2)] the assigned gt boxes.
            assignment: int32 [B, T] gt slot of each RoI.
        Returns:
            float32 [B, T, mh, mw] in {0, 1}.
        """
        T = self.train_rois_per_image
        masks = tf.cast(gt_masks, tf.float32)
        masks = tf.transpose(masks, [0, 3, 1, 2])  # [B, h, w, G] -> [B, G, h, w]
        mask_hw = tf.shape(masks)[2:4]
        # [B, G, h, w] -> [B*G, h, w, 1]
        masks = tf.reshape(masks, tf.concat([[-1], mask_hw, [1]], axis=0))
        boxes = rois
        if self.use_mini_mask:
            # A mini-mask covers exactly its gt box: express the RoI in the
            # gt box's frame.
            y1, x1, y2, x2 = tf.unstack(rois, num=4, axis=-1)
            gy1, gx1, gy2, gx2 = tf.unstack(roi_gt_boxes, num=4, axis=-1)
            gh, gw = gy2 - gy1, gx2 - gx1
            boxes = tf.stack([tf.math.divide_no_nan(y1 - gy1, gh),
                              tf.math.divide_no_nan(x1 - gx1, gw),
                              tf.math.divide_no_nan(y2 - gy1, gh),
                              tf.math.divide_no_nan(x2 - gx1, gw)], axis=-1)  # [B, T, 4]
        box_ind = tf.range(batch)[:, None] * num_gt + assignment  # [B, T] into B*G
        crops = crop_and_resize(
            masks, tf.reshape(boxes, [-1, 4]), tf.reshape(box_ind, [-1]),
            self.mask_shape, self.sampler)  # [B*T, mh, mw, 1]
        # Binarize at 0.5 (a sample exactly half way counts as inside;
        # Matterport's tf.round would send it to 0).
        crops = tf.cast(crops >= 0.5, tf.float32)
        # [B*T, mh, mw, 1] -> [B, T, mh, mw]
        return tf.reshape(crops, [batch, T] + self.mask_shape)

    def compute_output_shape(self, input_shape):
        batch = input_shape[0][0]
        T = self.train_rois_per_image
        return [(batch, T, 4), (batch, T), (batch, T, 4),
                (batch, T) + tuple(self.mask_shape)]

    def compute_output_spec(self, inputs):
        shapes = self.compute_output_shape([tuple(x.shape) for x in inputs])
        dtypes = ["float32", "int32", "float32", "float32"]
        return [keras.KerasTensor(s, dtype=d) for s, d in zip(shapes, dtypes)]
