"""In-graph unmolding: the inference model's outputs -> detections in the
original image's pixels, as ``MaskRCNN.detect`` returns them
(``mrcnn.modeling.inference.unmold_detections``), as TensorFlow ops, for export.

Shapes: D = DETECTION_MAX_INSTANCES, NC = NUM_CLASSES, m = mask side (28),
N = detections kept, H, W = the original image.
"""

import keras
import tensorflow as tf
from keras import layers as KL

from mrcnn.core.image_meta import (META_IMAGE_SHAPE, META_ORIGINAL_IMAGE_SHAPE,
                                   META_WINDOW)
from mrcnn.nn.box_ops import box_scale_shift_graph
from mrcnn.nn.molding import resize_linear_graph


def paste_masks_graph(masks, boxes, height, width):
    """TF twin of ``mrcnn.core.masks.paste_mask`` for every detection.

    Each small mask is resized to its box (``resize_linear_2d``),
    thresholded at 0.5 and written into a zero image, clipped to it.

    Args:
        masks: float32 [N, m, m] probabilities.
        boxes: int32 [N, (y1, x1, y2, x2)] pixels, positive area.
        height, width: int32 scalars, H and W.
    Returns:
        uint8 [H, W, N] of 0 and 1.
    """
    def paste(args):
        mask, box = args
        # paste_mask writes nothing for an inverted box: paste it as empty.
        valid = (box[2] > box[0]) & (box[3] > box[1])
        box = tf.where(valid, box, tf.zeros_like(box))
        y1, x1, y2, x2 = box[0], box[1], box[2], box[3]
        patch = resize_linear_graph(mask[:, :, None], tf.maximum(y2 - y1, 1),
                                    tf.maximum(x2 - x1, 1))[:, :, 0]
        patch = tf.cast(patch >= 0.5, tf.uint8)               # [y2-y1, x2-x1]
        ty1, tx1 = tf.maximum(y1, 0), tf.maximum(x1, 0)
        ty2 = tf.maximum(tf.minimum(y2, height), ty1)
        tx2 = tf.maximum(tf.minimum(x2, width), tx1)
        patch = patch[ty1 - y1:ty2 - y1, tx1 - x1:tx2 - x1]
        return tf.pad(patch, [[ty1, height - ty2], [tx1, width - tx2]])

    def paste_all():
        return tf.map_fn(paste, (masks, boxes), fn_output_signature=tf.TensorSpec(
            [None, None], tf.uint8))
    # map_fn cannot stack zero elements of an unknown shape.
    count = tf.shape(boxes)[0]
    pasted = tf.cond(count > 0, paste_all,
                     lambda: tf.zeros(tf.stack([0, height, width]), tf.uint8))
    pasted = tf.reshape(pasted, tf.stack([count, height, width]))
    return tf.transpose(pasted, [1, 2, 0])                    # [H, W, N]


def unmold_detections_graph(detections, mrcnn_mask, image_meta):
    """TF twin of ``mrcnn.modeling.inference.unmold_detections`` for one image.

    Args:
        detections: float32 [D, (y1, x1, y2, x2, class_id, score)]
            normalized, zero-padded (the first class_id 0 ends the list).
        mrcnn_mask: float32 [D, m, m, NC] mask probabilities.
        image_meta: float32 [IMAGE_META_SIZE] (original shape, molded shape, window).
    Returns:
        boxes int32 [N, (y1, x1, y2, x2)] original pixels, class_ids int32
        [N], scores float32 [N], masks uint8 [H, W, N] (0/1).
    """
    meta = tf.cast(image_meta, tf.float64)
    original = tf.cast(meta[META_ORIGINAL_IMAGE_SHAPE], tf.int32)
    molded = tf.cast(meta[META_IMAGE_SHAPE], tf.int32)
    window = meta[META_WINDOW]

    padding = tf.concat([tf.equal(detections[:, 4], 0.0), [True]], axis=0)
    n = tf.cast(tf.argmax(tf.cast(padding, tf.int32)), tf.int32)
    class_ids = tf.cast(detections[:n, 4], tf.int32)
    scores = detections[:n, 5]
    boxes = tf.cast(detections[:n, :4], tf.float64)
    masks = tf.gather(tf.transpose(mrcnn_mask[:n], [0, 3, 1, 2]),
                      class_ids, axis=1, batch_dims=1)      # [n, m, m]

    # Normalized molded-image coords -> normalized window coords -> pixels,
    # with norm_boxes' float32 window as in unmold_detections.
    scale, shift = box_scale_shift_graph(molded[0], molded[1], tf.float64)
    wy1, wx1, wy2, wx2 = tf.unstack(tf.cast(tf.cast(
        (window - shift) / scale, tf.float32), tf.float64))
    wh = tf.cast(tf.cast(wy2, tf.float32) - tf.cast(wy1, tf.float32), tf.float64)
    ww = tf.cast(tf.cast(wx2, tf.float32) - tf.cast(wx1, tf.float32), tf.float64)
    boxes = (boxes - tf.stack([wy1, wx1, wy1, wx1])) / tf.stack([wh, ww, wh, ww])
    scale, shift = box_scale_shift_graph(original[0], original[1], tf.float64)
    boxes = tf.cast(tf.round(boxes * scale + shift), tf.int32)

    # Drop boxes of zero area (collapsed by rounding or clipping).
    keep = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > 0
    boxes = tf.boolean_mask(boxes, keep)
    class_ids = tf.boolean_mask(class_ids, keep)
    scores = tf.boolean_mask(scores, keep)
    masks = tf.boolean_mask(masks, keep)
    return boxes, class_ids, scores, paste_masks_graph(
        masks, boxes, original[0], original[1])


@keras.saving.register_keras_serializable(package="mrcnn")
class UnmoldDetections(KL.Layer):
    """The inference model's detections and masks -> original pixels.

    Inputs: [detections [1, D, 6], mrcnn_mask [1, D, m, m, NC],
        image_meta [1, IMAGE_META_SIZE]] (batch of one image).
    Outputs: boxes int32 [1, N, 4], class_ids int32 [1, N], scores float32
        [1, N], masks uint8 [1, H, W, N].
    """

    def __init__(self, name="unmold_detections", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(name=name, **kwargs)

    def call(self, inputs):
        detections, mrcnn_mask, image_meta = inputs
        outputs = unmold_detections_graph(
            tf.cast(detections[0], tf.float32),
            tf.cast(mrcnn_mask[0], tf.float32), image_meta[0])
        return [x[None] for x in outputs]

    def compute_output_shape(self, input_shapes):
        return ((1, None, 4), (1, None), (1, None), (1, None, None, None))

    def compute_output_spec(self, inputs):
        shapes = self.compute_output_shape(None)
        dtypes = ("int32", "int32", "float32", "uint8")
        return [keras.KerasTensor(s, dtype=d) for s, d in zip(shapes, dtypes)]
