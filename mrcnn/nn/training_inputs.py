"""Layers deriving what the training graph needs from its inputs.

Shape shorthand: B = batch, H, W = molded image size (IMAGE_SHAPE), C =
channels, A = anchors of all levels, G = MAX_GT_INSTANCES, NC = NUM_CLASSES,
META = IMAGE_META_SIZE.

The training graph takes pixel boxes and a fixed image shape (Matterport's
inputs); these layers turn them into the normalized anchors, the
normalized ground-truth boxes (or given RoIs) and the active class ids the
RoI sampling and the losses read. The inference graph takes its anchors
as an input (input_anchors) and needs none of them.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers as KL

from mrcnn.core.anchors import pyramid_anchors
from mrcnn.core.image_meta import META_ACTIVE_CLASS_IDS
from mrcnn.nn.box_ops import norm_boxes_graph


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
        # [A, 4] normalized, the one anchor function's (read-only) array
        self._anchors = pyramid_anchors(
            self.scales, self.ratios, self.feature_strides,
            self.anchor_stride, self.image_shape,
            feature_shapes=self.feature_shapes)

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
