"""In-graph molding: what ``MaskRCNN.detect`` does on the host before the
network (resize, pad, subtract the mean pixel, anchors, image meta), as
TensorFlow ops, so that an exported model takes a plain uint8 image.

Each function follows its numpy twin line by line (named in its
docstring); tests/nn/test_molding.py checks them against each other.
Shapes: H, W = the original image, h, w = the molded image, C = channels,
A = anchors.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers as KL

from mrcnn.core.anchors import pyramid_anchors
from mrcnn.core.image_meta import META_FIELDS, image_meta_size
from mrcnn.nn.box_ops import box_scale_shift_graph

RESIZE_MODES_IN_GRAPH = ("square", "pad64", "none")


def linear_taps_graph(n_in, n_out):
    """TF twin of ``mrcnn.core.images.linear_taps`` (the same float64 steps).

    Args:
        n_in, n_out: int32 scalars, input and output length of one axis.
    Returns:
        lower, upper: int32 [n_out] sample indices; w_lower, w_upper:
        float64 [n_out] weights (0 for samples outside the input).
    """
    n_in_f = tf.cast(n_in, tf.float64)
    coords = (tf.range(n_out, dtype=tf.float64) + 0.5) * (
        n_in_f / tf.cast(n_out, tf.float64)) - 0.5
    lower = tf.floor(coords)
    frac = coords - lower
    upper = lower + 1
    zero = tf.zeros_like(frac)
    w_lower = tf.where((lower >= 0) & (lower < n_in_f), 1.0 - frac, zero)
    w_upper = tf.where((upper >= 0) & (upper < n_in_f), frac, zero)
    last = n_in_f - 1
    return (tf.cast(tf.clip_by_value(lower, 0.0, last), tf.int32),
            tf.cast(tf.clip_by_value(upper, 0.0, last), tf.int32),
            w_lower, w_upper)


def resize_linear_graph(image, height, width):
    """TF twin of ``mrcnn.core.images.resize_linear``, bit for bit.

    Two separable passes of float64 multiplies and adds (columns, then
    rows) in the numpy function's order, zero outside the input, clipped
    to the input's value range.

    Args:
        image: float32 [H, W, C].
        height, width: int32 scalars >= 1.
    Returns:
        float32 [height, width, C].
    """
    source = tf.cast(image, tf.float64)
    shape = tf.shape(source)
    lo, hi, w_lo, w_hi = linear_taps_graph(shape[1], width)
    out = (tf.gather(source, lo, axis=1) * w_lo[None, :, None] +
           tf.gather(source, hi, axis=1) * w_hi[None, :, None])
    lo, hi, w_lo, w_hi = linear_taps_graph(shape[0], height)
    out = (tf.gather(out, lo, axis=0) * w_lo[:, None, None] +
           tf.gather(out, hi, axis=0) * w_hi[:, None, None])
    low, high = tf.reduce_min(source), tf.reduce_max(source)
    # skimage widens the clip range to 0 (its cval) when 0 is outside the
    # input's range but inside the output's.
    widen = tf.logical_not((low <= 0) & (0 <= high)) & \
        (tf.reduce_min(out) <= 0) & (0 <= tf.reduce_max(out))
    low = tf.where(widen, tf.minimum(low, 0.0), low)
    high = tf.where(widen, tf.maximum(high, 0.0), high)
    return tf.cast(tf.clip_by_value(out, low, high), tf.float32)


def _pad64_graph(size):
    """TF twin of ``mrcnn.core.images._pad64``: (before, after) int32."""
    total = (64 - size % 64) % 64
    return total // 2, total - total // 2


def resize_image_graph(image, min_dim, max_dim, min_scale, mode):
    """TF twin of ``mrcnn.core.images.resize_image`` for inference modes.

    Args:
        image: uint8 [H, W, C].
        min_dim, max_dim, min_scale: IMAGE_MIN_DIM, IMAGE_MAX_DIM,
            IMAGE_MIN_SCALE (Python numbers; 0 / None = unset).
        mode: "square", "pad64" or "none" ("crop" is for training only).
    Returns:
        image: float32 [h, w, C], whole values 0..255 (the resized pixels
            truncated, as resize_image's ``astype(uint8)``), zero padding.
        window: int32 [(y1, x1, y2, x2)] of the image inside it.
        scale: float64 scalar.
    """
    if mode not in RESIZE_MODES_IN_GRAPH:
        raise ValueError("IMAGE_RESIZE_MODE {!r} cannot be exported; use one "
                         "of {}".format(mode, RESIZE_MODES_IN_GRAPH))
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    pixels = tf.cast(image, tf.float32)
    if mode == "none":
        return pixels, tf.stack([0, 0, h, w]), tf.constant(1.0, tf.float64)

    hf, wf = tf.cast(h, tf.float64), tf.cast(w, tf.float64)
    scale = tf.constant(1.0, tf.float64)
    if min_dim:
        scale = tf.maximum(scale, min_dim / tf.minimum(hf, wf))
    if min_scale:
        scale = tf.maximum(scale, float(min_scale))
    if max_dim and mode == "square":
        image_max = tf.maximum(hf, wf)
        scale = tf.where(tf.round(image_max * scale) > max_dim,
                         max_dim / image_max, scale)
    # Python's round() and tf.round both round half to even.
    new_h = tf.cast(tf.round(hf * scale), tf.int32)
    new_w = tf.cast(tf.round(wf * scale), tf.int32)
    pixels = tf.cond(
        tf.equal(scale, 1.0), lambda: pixels,
        lambda: tf.floor(resize_linear_graph(pixels, new_h, new_w)))

    if mode == "square":
        if not max_dim:
            raise ValueError("IMAGE_RESIZE_MODE 'square' needs IMAGE_MAX_DIM")
        top = (max_dim - new_h) // 2
        left = (max_dim - new_w) // 2
        bottom, right = max_dim - new_h - top, max_dim - new_w - left
    else:  # pad64
        if not min_dim or min_dim % 64:
            raise ValueError("IMAGE_RESIZE_MODE 'pad64' needs IMAGE_MIN_DIM a "
                             "multiple of 64, got {}".format(min_dim))
        top, bottom = _pad64_graph(new_h)
        left, right = _pad64_graph(new_w)
    pixels = tf.pad(pixels, [[top, bottom], [left, right], [0, 0]])
    window = tf.stack([top, left, new_h + top, new_w + left])
    return pixels, window, scale


def pyramid_anchors_graph(scales, ratios, feature_strides, anchor_stride,
                          image_height, image_width):
    """TF twin of ``generate_pyramid_anchors`` + ``norm_boxes`` for a molded
    size known only at run time (feature maps ceil(size / stride)).

    Args:
        scales: one anchor side per level (RPN_ANCHOR_SCALES).
        ratios: width / height ratios (RPN_ANCHOR_RATIOS).
        feature_strides: BACKBONE_STRIDES.
        anchor_stride: RPN_ANCHOR_STRIDE.
        image_height, image_width: int32 scalars, the molded size.
    Returns:
        float32 [A, (y1, x1, y2, x2)] normalized, P2 anchors first.
    """
    ratios = np.asarray(ratios, np.float64).ravel()
    levels = []
    for scale, stride in zip(scales, feature_strides):
        # The level's anchor shapes, ratio-major as np.meshgrid orders them.
        heights = tf.constant(float(scale) / np.sqrt(ratios))     # [R]
        widths = tf.constant(float(scale) * np.sqrt(ratios))      # [R]
        fh = tf.cast(tf.math.ceil(tf.cast(image_height, tf.float64) / stride), tf.int32)
        fw = tf.cast(tf.math.ceil(tf.cast(image_width, tf.float64) / stride), tf.int32)
        ys = tf.cast(tf.range(0, fh, anchor_stride), tf.float64) * stride
        xs = tf.cast(tf.range(0, fw, anchor_stride), tf.float64) * stride
        cy, cx = tf.meshgrid(ys, xs, indexing="ij")               # [fh, fw]
        cy = tf.reshape(cy, [-1, 1])                              # [cells, 1]
        cx = tf.reshape(cx, [-1, 1])
        y1 = cy - 0.5 * heights[None]                             # [cells, R]
        x1 = cx - 0.5 * widths[None]
        y2 = cy + 0.5 * heights[None]
        x2 = cx + 0.5 * widths[None]
        levels.append(tf.reshape(tf.stack([y1, x1, y2, x2], axis=-1), [-1, 4]))
    anchors = tf.concat(levels, axis=0)                          # [A, 4] pixels
    scale, shift = box_scale_shift_graph(image_height, image_width, tf.float64)
    return tf.cast((anchors - shift) / scale, tf.float32)


@keras.saving.register_keras_serializable(package="mrcnn")
class MoldImage(KL.Layer):
    """One uint8 image -> the inference model's three inputs, in the graph.

    What ``MaskRCNN.detect`` does before ``predict`` (``mold_image_one``,
    ``get_anchors``): resize and pad as IMAGE_RESIZE_MODE, subtract the mean
    pixel, compose the image meta (image id 0, no active class ids) and the
    anchors of the molded size.

    Args:
        min_dim, max_dim, min_scale, resize_mode: IMAGE_MIN_DIM,
            IMAGE_MAX_DIM, IMAGE_MIN_SCALE, IMAGE_RESIZE_MODE.
        mean_pixel: MEAN_PIXEL, one value per channel.
        num_classes: NUM_CLASSES.
        anchor_scales, anchor_ratios, feature_strides, anchor_stride:
            RPN_ANCHOR_SCALES, RPN_ANCHOR_RATIOS, BACKBONE_STRIDES,
            RPN_ANCHOR_STRIDE.

    Input: uint8 [1, H, W, C].
    Outputs: molded float32 [1, h, w, C], image_meta float32 [1, IMAGE_META_SIZE],
        anchors float32 [1, A, 4] normalized.
    """

    def __init__(self, min_dim, max_dim, min_scale, resize_mode, mean_pixel,
                 num_classes, anchor_scales, anchor_ratios, feature_strides,
                 anchor_stride, name="mold_image", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(name=name, **kwargs)
        if resize_mode not in RESIZE_MODES_IN_GRAPH:
            raise ValueError("IMAGE_RESIZE_MODE {!r} cannot be exported; use "
                             "one of {}".format(resize_mode, RESIZE_MODES_IN_GRAPH))
        self.min_dim = int(min_dim or 0)
        self.max_dim = int(max_dim or 0)
        self.min_scale = float(min_scale or 0)
        self.resize_mode = str(resize_mode)
        self.mean_pixel = [float(v) for v in np.ravel(mean_pixel)]
        self.num_classes = int(num_classes)
        self.anchor_scales = [float(s) for s in anchor_scales]
        self.anchor_ratios = [float(r) for r in np.ravel(anchor_ratios)]
        self.feature_strides = [int(s) for s in feature_strides]
        self.anchor_stride = int(anchor_stride)
        self._fixed_anchors = None
        if self.resize_mode == "square":
            # Every image molds to [max_dim, max_dim]: the anchors are the
            # very array detect() computes (core.anchors.pyramid_anchors).
            self._fixed_anchors = pyramid_anchors(
                self.anchor_scales, self.anchor_ratios, self.feature_strides,
                self.anchor_stride, (self.max_dim, self.max_dim))

    def call(self, image):
        image = image[0]
        shape = tf.shape(image)
        pixels, window, scale = resize_image_graph(
            image, self.min_dim, self.max_dim, self.min_scale, self.resize_mode)
        molded = pixels - tf.constant(self.mean_pixel, tf.float32)
        molded_shape = tf.shape(molded)
        # The fields of core/image_meta.py, concatenated in its layout order.
        fields = {"image_id": tf.zeros([1], tf.float64),
                  "original_image_shape": tf.cast(shape, tf.float64),
                  "image_shape": tf.cast(molded_shape, tf.float64),
                  "window": tf.cast(window, tf.float64),
                  "scale": scale[None],
                  "active_class_ids": tf.zeros([self.num_classes], tf.float64)}
        meta = tf.concat([fields[name] for name, _ in META_FIELDS], axis=0)
        if self._fixed_anchors is not None:
            anchors = tf.constant(self._fixed_anchors)
        else:
            anchors = pyramid_anchors_graph(
                self.anchor_scales, self.anchor_ratios, self.feature_strides,
                self.anchor_stride, molded_shape[0], molded_shape[1])
        return molded[None], tf.cast(meta, tf.float32)[None], anchors[None]

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return ((1, None, None, channels), (1, image_meta_size(self.num_classes)),
                (1, None, 4))

    def get_config(self):
        config = super().get_config()
        config.update(min_dim=self.min_dim, max_dim=self.max_dim,
                      min_scale=self.min_scale, resize_mode=self.resize_mode,
                      mean_pixel=self.mean_pixel, num_classes=self.num_classes,
                      anchor_scales=self.anchor_scales,
                      anchor_ratios=self.anchor_ratios,
                      feature_strides=self.feature_strides,
                      anchor_stride=self.anchor_stride)
        return config
