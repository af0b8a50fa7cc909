"""Second-stage heads: box classifier/regressor and mask head (Mask R-CNN sec. 3).

Shape shorthand: B = batch, N = RoIs per image, NC = NUM_CLASSES,
P = pool size (POOL_SIZE for the classifier, MASK_POOL_SIZE for masks),
F = FPN_CLASSIF_FC_LAYERS_SIZE, D = TOP_DOWN_PYRAMID_SIZE.

Per-RoI layers are wrapped in `RoiDistributed`, which folds the RoI axis into
the batch axis ([B, N, ...] -> [B*N, ...]) and runs the inner layer once.
Keras 3's TimeDistributed would instead loop over the N RoIs in Python.

The two "fully connected" layers of the classifier are `FullyConnectedConv2D`
layers: Conv2D layers (Matterport's names, kernels and .h5 weights) whose
kernel covers their whole input, computed as one matrix product over all
RoIs. As a convolution, TensorFlow's Eigen kernels (CPUs where oneDNN is
off, e.g. AVX2-only ones) compute the input gradient of the 7x7 layer as
one matrix-vector product per RoI: 67 % of a training step there.
"""

import inspect

import keras
import tensorflow as tf
from keras import layers as KL

from mrcnn.nn.backbone import BatchNorm
from mrcnn.nn.roi_align import PyramidROIAlign


@keras.saving.register_keras_serializable(package="mrcnn")
class FullyConnectedConv2D(KL.Conv2D):
    """A Conv2D whose kernel covers its whole input, as a matrix product.

    Same weights as `keras.layers.Conv2D(filters, kernel_size)` (kernel
    [kh, kw, C, filters], bias [filters], the same names and .h5 layout)
    and the same outputs to float32 rounding: the input [M, kh, kw, C] is
    flattened to [M, kh*kw*C] and multiplied by the kernel reshaped to
    [kh*kw*C, filters], the order in which both are laid out in memory.

    Args:
        filters: output channels (F).
        kernel_size: (kh, kw), which must equal the input's spatial size.
        **kwargs: Conv2D's (activation, use_bias, initializers, dtype,
            name, ...); padding "valid", strides and dilation 1 only.

    Inputs: [M, kh, kw, C]; outputs: [M, 1, 1, F].
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        if self.padding != "valid" or tuple(self.strides) != (1, 1) or \
                tuple(self.dilation_rate) != (1, 1) or \
                self.data_format != "channels_last" or self.groups != 1:
            raise ValueError(
                "{}: FullyConnectedConv2D takes padding='valid', strides 1, "
                "dilation 1, groups 1 and channels_last only (got padding={!r}, "
                "strides={}, dilation_rate={}, groups={}, data_format={!r})"
                .format(self.name, self.padding, self.strides,
                        self.dilation_rate, self.groups, self.data_format))

    def build(self, input_shape):
        if tuple(input_shape[1:3]) != tuple(self.kernel_size):
            raise ValueError(
                "{}: FullyConnectedConv2D needs inputs [M, {}, {}, C] (its "
                "kernel size), got {}".format(
                    self.name, self.kernel_size[0], self.kernel_size[1],
                    tuple(input_shape)))
        super().build(input_shape)

    def convolution_op(self, inputs, kernel):
        """[M, kh, kw, C] x [kh, kw, C, F] -> [M, 1, 1, F] as one MatMul."""
        kh, kw, c, f = kernel.shape
        # [M, kh*kw*C] x [kh*kw*C, F] -> [M, F]
        flat = tf.reshape(inputs, [-1, kh * kw * c])
        y = tf.matmul(flat, tf.reshape(kernel, [kh * kw * c, f]))
        return tf.reshape(y, [-1, 1, 1, f])


@keras.saving.register_keras_serializable(package="mrcnn")
class RoiDistributed(KL.Wrapper):
    """Apply a layer to every RoI of every image in one call.

    The wrapper carries the Matterport layer name (e.g. "mrcnn_class_conv1")
    and its weights are exactly the inner layer's, in the inner layer's order
    (kernel, bias / gamma, beta, moving_mean, moving_variance), as the
    TimeDistributed layers of Matterport's weight files.

    Args:
        layer: the keras layer to apply to [B*N, ...] inputs.

    Inputs: [B, N, ...]; outputs: [B, N, ...inner output dims].
    """

    def __init__(self, layer, **kwargs):
        super().__init__(layer, **kwargs)
        self._inner_takes_training = "training" in inspect.signature(
            layer.call).parameters

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build((None,) + tuple(input_shape[2:]))
        self.built = True

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return tuple(input_shape[:2]) + tuple(inner[1:])

    def call(self, inputs, training=None):
        shape = tf.shape(inputs)
        # [B, N, ...] -> [B*N, ...]
        merged = tf.reshape(inputs, tf.concat([[-1], shape[2:]], axis=0))
        if self._inner_takes_training:
            y = self.layer(merged, training=training)
        else:
            y = self.layer(merged)
        # [B*N, ...out] -> [B, N, ...out]
        return tf.reshape(y, tf.concat([shape[:2], tf.shape(y)[1:]], axis=0))


def fpn_classifier_graph(rois, feature_maps, image_meta, pool_size,
                         num_classes, train_bn=True, fc_layers_size=1024,
                         roi_sampler="crop_and_resize", static_crops=False):
    """Classifier and box-regressor head of the feature pyramid.

    Args:
        rois: [B, N, (y1, x1, y2, x2)] proposal boxes, normalized coordinates,
            zero-padded rows allowed.
        feature_maps: [P2, P3, P4, P5], each [B, h_i, w_i, D].
        image_meta: [B, IMAGE_META_SIZE] (see compose_image_meta).
        pool_size: P, side of the square RoIAlign output (7).
        num_classes: NC, background included.
        train_bn: False freezes the head's BatchNorm layers.
        fc_layers_size: F, width of the two "fully connected" layers
            (a PxP and a 1x1 FullyConnectedConv2D: Conv2D weights,
            computed as matrix products).
        roi_sampler: PyramidROIAlign's sampler, "crop_and_resize" or
            "gather" (for XLA; see nn/roi_align.py).
        static_crops: PyramidROIAlign's crop_every_level (static crop
            shapes, more crop work; the export).

    Returns:
        mrcnn_class_logits: [B, N, NC] classifier logits (before softmax).
        mrcnn_probs: [B, N, NC] class probabilities (float32).
        mrcnn_bbox: [B, N, NC, (dy, dx, log(dh), log(dw))] deltas, divided
            by BBOX_STD_DEV, one set per class.
    """
    # [B, N, P, P, D]
    x = PyramidROIAlign([pool_size, pool_size], name="roi_align_classifier",
                        sampler=roi_sampler, crop_every_level=static_crops)(
        [rois, image_meta] + list(feature_maps))
    # Two 1024-wide "FC" layers, Conv2D layers computed as matrix
    # products: [B, N, 1, 1, F]
    x = RoiDistributed(FullyConnectedConv2D(fc_layers_size,
                                            (pool_size, pool_size)),
                       name="mrcnn_class_conv1")(x)
    x = RoiDistributed(BatchNorm(train_bn=train_bn), name="mrcnn_class_bn1")(x)
    x = KL.Activation("relu")(x)
    x = RoiDistributed(FullyConnectedConv2D(fc_layers_size, (1, 1)),
                       name="mrcnn_class_conv2")(x)
    x = RoiDistributed(BatchNorm(train_bn=train_bn), name="mrcnn_class_bn2")(x)
    x = KL.Activation("relu")(x)
    # [B, N, 1, 1, F] -> [B, N, F]
    shared = KL.Reshape((-1, fc_layers_size), name="pool_squeeze")(x)

    # Classifier head: [B, N, NC]
    # The last layers compute in float32 under mixed precision (their
    # outputs feed softmax, box decoding and the losses).
    mrcnn_class_logits = RoiDistributed(KL.Dense(num_classes, dtype="float32"),
                                        dtype="float32",
                                        name="mrcnn_class_logits")(shared)
    mrcnn_probs = KL.Activation("softmax", dtype="float32",
                                name="mrcnn_class")(mrcnn_class_logits)

    # Box head: [B, N, NC*4] -> [B, N, NC, (dy, dx, log(dh), log(dw))]
    x = RoiDistributed(KL.Dense(num_classes * 4, activation="linear"),
                       name="mrcnn_bbox_fc")(shared)
    mrcnn_bbox = KL.Reshape((-1, num_classes, 4), dtype="float32",
                            name="mrcnn_bbox")(x)
    return mrcnn_class_logits, mrcnn_probs, mrcnn_bbox


def build_fpn_mask_graph(rois, feature_maps, image_meta, pool_size,
                         num_classes, train_bn=True,
                         roi_sampler="crop_and_resize"):
    """Mask head of the feature pyramid (Mask R-CNN fig. 4, right).

    Args:
        rois: [B, N, (y1, x1, y2, x2)] normalized boxes, zero-padded.
        feature_maps: [P2, P3, P4, P5], each [B, h_i, w_i, D].
        image_meta: [B, IMAGE_META_SIZE].
        pool_size: side of the RoIAlign output (MASK_POOL_SIZE, 14).
        num_classes: NC.
        train_bn: False freezes the head's BatchNorm layers.
        roi_sampler: PyramidROIAlign's sampler ("crop_and_resize" or
            "gather").

    Returns:
        [B, N, 2*pool_size, 2*pool_size, NC] per-class mask probabilities
        (sigmoid), 28x28 by default.
    """
    # [B, N, P, P, D]
    x = PyramidROIAlign([pool_size, pool_size], name="roi_align_mask",
                        sampler=roi_sampler)(
        [rois, image_meta] + list(feature_maps))
    return fpn_mask_head(x, num_classes, train_bn=train_bn)


def fpn_mask_head(x, num_classes, train_bn=True):
    """The mask head's convolutions on RoIAlign features.

    Args:
        x: [B, N, P, P, D] RoIAlign features (output of roi_align_mask).
        num_classes: NC.
        train_bn: False freezes the head's BatchNorm layers.

    Returns:
        [B, N, 2P, 2P, NC] per-class mask probabilities (sigmoid).
    """
    for i in range(1, 5):
        x = RoiDistributed(KL.Conv2D(256, (3, 3), padding="same"),
                           name="mrcnn_mask_conv{}".format(i))(x)
        x = RoiDistributed(BatchNorm(train_bn=train_bn),
                           name="mrcnn_mask_bn{}".format(i))(x)
        x = KL.Activation("relu")(x)
    # [B, N, P, P, 256] -> [B, N, 2P, 2P, 256]
    x = RoiDistributed(KL.Conv2DTranspose(256, (2, 2), strides=2,
                                          activation="relu"),
                       name="mrcnn_mask_deconv")(x)
    # [B, N, 2P, 2P, NC]
    x = RoiDistributed(KL.Conv2D(num_classes, (1, 1), strides=1,
                                 activation="sigmoid", dtype="float32"),
                       dtype="float32", name="mrcnn_mask")(x)
    return x
