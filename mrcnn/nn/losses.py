"""Training losses of Mask R-CNN (Mask R-CNN sec. 3, Faster R-CNN sec. 3.1.2).

Shape shorthand: B = batch, A = anchors, T = RPN_TRAIN_ANCHORS_PER_IMAGE,
R = TRAIN_ROIS_PER_IMAGE, NC = NUM_CLASSES, h, w = MASK_SHAPE.

Every loss is a float32 scalar computed in float32 (inputs are cast, so a
mixed-precision graph gives the same numbers), and is exactly 0, never NaN,
when there is nothing to average over (no positive anchors or RoIs).
Reductions are Matterport's: means over all selected elements of the batch.
"""

import keras
import tensorflow as tf


def _f32(x):
    return tf.cast(x, tf.float32)


def _mean_or_zero(x):
    """Mean of all elements of x, 0.0 when x is empty."""
    x = tf.reshape(_f32(x), [-1])
    return tf.math.divide_no_nan(tf.reduce_sum(x), tf.cast(tf.size(x), tf.float32))


def smooth_l1_loss(y_true, y_pred):
    """Elementwise smooth-L1 (Huber with delta 1) loss.

    Args:
        y_true, y_pred: tensors of the same shape, e.g. [N, 4].
    Returns:
        float32 tensor of that shape: 0.5 d^2 where |d| < 1, else |d| - 0.5.
    """
    diff = tf.abs(_f32(y_true) - _f32(y_pred))
    less_than_one = tf.cast(diff < 1.0, tf.float32)
    return less_than_one * 0.5 * diff ** 2 + (1.0 - less_than_one) * (diff - 0.5)


def rpn_class_loss_graph(rpn_match, rpn_class_logits):
    """RPN anchor classifier loss (softmax cross-entropy over non-neutral anchors).

    Args:
        rpn_match: [B, A, 1] int: 1 positive, -1 negative, 0 neutral anchor.
        rpn_class_logits: [B, A, 2] logits of (background, foreground).
    Returns:
        float32 scalar, mean over positive and negative anchors of the batch.
    """
    rpn_match = tf.squeeze(tf.cast(rpn_match, tf.int32), -1)  # [B, A]
    anchor_class = tf.cast(tf.equal(rpn_match, 1), tf.int32)
    # Neutral anchors (0) do not contribute.
    indices = tf.where(tf.not_equal(rpn_match, 0))
    logits = tf.gather_nd(_f32(rpn_class_logits), indices)  # [K, 2]
    labels = tf.gather_nd(anchor_class, indices)  # [K]
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                          logits=logits)
    return _mean_or_zero(loss)


def rpn_bbox_loss_graph(config, target_bbox, rpn_match, rpn_bbox):
    """RPN box regression loss (smooth-L1 over positive anchors).

    Args:
        config: unused (Matterport used IMAGES_PER_GPU to loop over the
            batch; this version is vectorised). Kept for the signature.
        target_bbox: [B, T, (dy, dx, log(dh), log(dw))] targets of the
            positive anchors in anchor order, zero-padded.
        rpn_match: [B, A, 1] int: 1 positive, -1 negative, 0 neutral.
        rpn_bbox: [B, A, (dy, dx, log(dh), log(dw))] predicted deltas.
    Returns:
        float32 scalar, mean over the 4 coordinates of all positive anchors.
    """
    del config
    rpn_match = tf.squeeze(tf.cast(rpn_match, tf.int32), -1)  # [B, A]
    positive = tf.cast(tf.equal(rpn_match, 1), tf.int32)
    # Rank of each positive anchor within its image = its row in target_bbox.
    rank = tf.cumsum(positive, axis=1, exclusive=True)  # [B, A]
    n_targets = tf.shape(target_bbox)[1]
    keep = tf.logical_and(tf.equal(positive, 1), rank < n_targets)
    indices = tf.where(keep)  # [P, (b, a)]
    pred = tf.gather_nd(_f32(rpn_bbox), indices)  # [P, 4]
    target_ix = tf.stack([indices[:, 0],
                          tf.cast(tf.gather_nd(rank, indices), tf.int64)], axis=1)
    target = tf.gather_nd(_f32(target_bbox), target_ix)  # [P, 4]
    return _mean_or_zero(smooth_l1_loss(target, pred))


def mrcnn_class_loss_graph(target_class_ids, pred_class_logits,
                           active_class_ids):
    """Classifier loss of the box head.

    RoIs whose predicted class is not active for the image's dataset are
    ignored (Matterport's multi-dataset rule).

    Args:
        target_class_ids: [B, R] int, 0 for background and padding.
        pred_class_logits: [B, R, NC].
        active_class_ids: [B, NC] 1 for classes of the image's dataset.
    Returns:
        float32 scalar: sum of cross-entropies of counted RoIs / their count.
    """
    target_class_ids = tf.cast(target_class_ids, tf.int32)
    logits = _f32(pred_class_logits)
    pred_class_ids = tf.argmax(logits, axis=2, output_type=tf.int32)  # [B, R]
    # [B, NC] gathered per image -> [B, R]
    pred_active = tf.gather(_f32(active_class_ids), pred_class_ids,
                            batch_dims=1)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=target_class_ids, logits=logits)
    loss = loss * pred_active
    return tf.math.divide_no_nan(tf.reduce_sum(loss), tf.reduce_sum(pred_active))


def mrcnn_bbox_loss_graph(target_bbox, target_class_ids, pred_bbox):
    """Box refinement loss: smooth-L1 on the deltas of the true class of positive RoIs.

    Args:
        target_bbox: [B, R, (dy, dx, log(dh), log(dw))].
        target_class_ids: [B, R] int, > 0 for positive RoIs.
        pred_bbox: [B, R, NC, (dy, dx, log(dh), log(dw))].
    Returns:
        float32 scalar, mean over the 4 coordinates of positive RoIs.
    """
    target_class_ids = tf.reshape(tf.cast(target_class_ids, tf.int32), [-1])
    target_bbox = tf.reshape(_f32(target_bbox), [-1, 4])  # [B*R, 4]
    num_classes = tf.shape(pred_bbox)[2]
    pred_bbox = tf.reshape(_f32(pred_bbox), [-1, num_classes, 4])  # [B*R, NC, 4]

    positive_ix = tf.where(target_class_ids > 0)[:, 0]  # [P]
    positive_class_ids = tf.gather(target_class_ids, positive_ix)
    indices = tf.stack([tf.cast(positive_ix, tf.int32), positive_class_ids],
                       axis=1)  # [P, (roi, class)]
    y_true = tf.gather(target_bbox, positive_ix)  # [P, 4]
    y_pred = tf.gather_nd(pred_bbox, indices)  # [P, 4]
    return _mean_or_zero(smooth_l1_loss(y_true, y_pred))


def mrcnn_mask_loss_graph(target_masks, target_class_ids, pred_masks):
    """Mask loss: per-pixel binary cross-entropy on the gt-class channel of positive RoIs.

    Args:
        target_masks: [B, R, h, w] float 0/1 mask targets.
        target_class_ids: [B, R] int, > 0 for positive RoIs.
        pred_masks: [B, R, h, w, NC] float sigmoid probabilities.
    Returns:
        float32 scalar, mean over the pixels of positive RoIs' masks.
    """
    target_class_ids = tf.reshape(tf.cast(target_class_ids, tf.int32), [-1])
    mask_shape = tf.shape(target_masks)
    target_masks = tf.reshape(_f32(target_masks),
                              tf.concat([[-1], mask_shape[2:4]], 0))  # [B*R, h, w]
    pred_shape = tf.shape(pred_masks)
    pred_masks = tf.reshape(_f32(pred_masks),
                            tf.concat([[-1], pred_shape[2:5]], 0))  # [B*R, h, w, NC]
    pred_masks = tf.transpose(pred_masks, [0, 3, 1, 2])  # [B*R, NC, h, w]

    positive_ix = tf.where(target_class_ids > 0)[:, 0]  # [P]
    positive_class_ids = tf.gather(target_class_ids, positive_ix)
    indices = tf.stack([tf.cast(positive_ix, tf.int32), positive_class_ids],
                       axis=1)  # [P, (roi, class)]
    y_true = tf.gather(target_masks, positive_ix)  # [P, h, w]
    y_pred = tf.gather_nd(pred_masks, indices)  # [P, h, w]
    # Keras' binary cross-entropy on probabilities, clipped as Keras 2 did.
    eps = 1e-7
    y_pred = tf.clip_by_value(y_pred, eps, 1.0 - eps)
    bce = -(y_true * tf.math.log(y_pred) + (1.0 - y_true) * tf.math.log(1.0 - y_pred))
    return _mean_or_zero(bce)


class _LossLayer(keras.layers.Layer):
    """Base of the loss layers: float32 computation, scalar output ()."""

    def __init__(self, name, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(name=name, **kwargs)

    def compute_output_shape(self, input_shape):
        return ()

    def compute_output_spec(self, inputs, **kwargs):
        return keras.KerasTensor((), dtype="float32")


@keras.saving.register_keras_serializable(package="mrcnn")
class RpnClassLoss(_LossLayer):
    """Layer form of rpn_class_loss_graph; inputs [rpn_match, rpn_class_logits]."""

    def __init__(self, name="rpn_class_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, inputs):
        rpn_match, rpn_class_logits = inputs
        return rpn_class_loss_graph(rpn_match, rpn_class_logits)


@keras.saving.register_keras_serializable(package="mrcnn")
class RpnBboxLoss(_LossLayer):
    """Layer form of rpn_bbox_loss_graph; inputs [target_bbox, rpn_match, rpn_bbox]."""

    def __init__(self, name="rpn_bbox_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, inputs):
        target_bbox, rpn_match, rpn_bbox = inputs
        return rpn_bbox_loss_graph(None, target_bbox, rpn_match, rpn_bbox)


@keras.saving.register_keras_serializable(package="mrcnn")
class MrcnnClassLoss(_LossLayer):
    """Layer form of mrcnn_class_loss_graph; inputs
    [target_class_ids, mrcnn_class_logits, active_class_ids]."""

    def __init__(self, name="mrcnn_class_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, inputs):
        return mrcnn_class_loss_graph(*inputs)


@keras.saving.register_keras_serializable(package="mrcnn")
class MrcnnBboxLoss(_LossLayer):
    """Layer form of mrcnn_bbox_loss_graph; inputs
    [target_bbox, target_class_ids, mrcnn_bbox]."""

    def __init__(self, name="mrcnn_bbox_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, inputs):
        return mrcnn_bbox_loss_graph(*inputs)


@keras.saving.register_keras_serializable(package="mrcnn")
class MrcnnMaskLoss(_LossLayer):
    """Layer form of mrcnn_mask_loss_graph; inputs
    [target_masks, target_class_ids, mrcnn_mask]."""

    def __init__(self, name="mrcnn_mask_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, inputs):
        return mrcnn_mask_loss_graph(*inputs)
