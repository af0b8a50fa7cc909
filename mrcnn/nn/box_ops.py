"""Box math in TensorFlow: the graph twins of ``mrcnn/core/boxes.py``.

One box convention for the whole package (see docs/ARCHITECTURE.md):

- boxes are ``[..., (y1, x1, y2, x2)]``; in pixels y2/x2 are exclusive,
  normalized boxes map pixel ``(0, 0, h - 1, w - 1)`` to ``(0, 0, 1, 1)``.
- deltas are ``[..., (dy, dx, log(dh), log(dw))]`` relative to a reference
  box (Faster R-CNN eq. 2); as targets they are divided by ``*_BBOX_STD_DEV``
  by the caller.

Every function works on float32 (inputs are cast) and on any number of
leading dimensions unless its docstring says otherwise, so the same code
serves one image ``[N, 4]`` and a batch ``[B, N, 4]``.

Shape shorthand: B images, N / N1 / N2 boxes, META image meta length.
"""

import tensorflow as tf

from mrcnn.core.image_meta import META_FIELDS


def _split_boxes(boxes):
    """[..., 4] -> four [...] tensors (y1, x1, y2, x2)."""
    return tf.unstack(boxes, num=4, axis=-1)


def _centers_and_sizes(boxes):
    """[..., (y1, x1, y2, x2)] -> (center_y, center_x, height, width), each [...]."""
    y1, x1, y2, x2 = _split_boxes(boxes)
    height = y2 - y1
    width = x2 - x1
    return y1 + 0.5 * height, x1 + 0.5 * width, height, width


def apply_box_deltas_graph(boxes, deltas):
    """Apply refinement deltas to boxes (Faster R-CNN eq. 2, inverted).

    Args:
        boxes: [..., (y1, x1, y2, x2)] boxes to update.
        deltas: [..., (dy, dx, log(dh), log(dw))] refinements to apply
            (already multiplied by the std dev if they came from a head).

    Returns:
        float32 [..., (y1, x1, y2, x2)] refined boxes, same frame as `boxes`.
    """
    boxes = tf.cast(boxes, tf.float32)
    deltas = tf.cast(deltas, tf.float32)
    center_y, center_x, height, width = _centers_and_sizes(boxes)
    dy, dx, dh, dw = tf.unstack(deltas, num=4, axis=-1)
    center_y = center_y + dy * height
    center_x = center_x + dx * width
    height = height * tf.exp(dh)
    width = width * tf.exp(dw)
    y1 = center_y - 0.5 * height
    x1 = center_x - 0.5 * width
    # [...] x 4 -> [..., 4]
    return tf.stack([y1, x1, y1 + height, x1 + width], axis=-1,
                    name="apply_box_deltas_out")


def clip_boxes_graph(boxes, window):
    """Clip boxes so that they lie inside a window.

    Args:
        boxes: [..., (y1, x1, y2, x2)].
        window: [(y1, x1, y2, x2)] or any shape broadcastable to `boxes`
            (e.g. [B, 1, 4] for per-image windows of a [B, N, 4] batch).

    Returns:
        float32 [..., (y1, x1, y2, x2)] clipped boxes.
    """
    boxes = tf.cast(boxes, tf.float32)
    window = tf.cast(window, tf.float32)
    wy1, wx1, wy2, wx2 = _split_boxes(window)
    y1, x1, y2, x2 = _split_boxes(boxes)
    y1 = tf.maximum(tf.minimum(y1, wy2), wy1)
    x1 = tf.maximum(tf.minimum(x1, wx2), wx1)
    y2 = tf.maximum(tf.minimum(y2, wy2), wy1)
    x2 = tf.maximum(tf.minimum(x2, wx2), wx1)
    # [...] x 4 -> [..., 4]
    return tf.stack([y1, x1, y2, x2], axis=-1, name="clipped_boxes")


def box_refinement_graph(box, gt_box):
    """Deltas that turn `box` into `gt_box` (Faster R-CNN eq. 2).

    Args:
        box: [..., (y1, x1, y2, x2)] reference boxes (e.g. positive ROIs).
        gt_box: [..., (y1, x1, y2, x2)] target boxes, same shape.

    Returns:
        float32 [..., (dy, dx, log(dh), log(dw))], not divided by any std dev.
    """
    box = tf.cast(box, tf.float32)
    gt_box = tf.cast(gt_box, tf.float32)
    center_y, center_x, height, width = _centers_and_sizes(box)
    gt_center_y, gt_center_x, gt_height, gt_width = _centers_and_sizes(gt_box)
    dy = (gt_center_y - center_y) / height
    dx = (gt_center_x - center_x) / width
    dh = tf.math.log(gt_height / height)
    dw = tf.math.log(gt_width / width)
    # [...] x 4 -> [..., 4]
    return tf.stack([dy, dx, dh, dw], axis=-1)


def batch_overlaps_graph(boxes1, boxes2):
    """IoU between every pair of boxes, any matching leading dimensions.

    Args:
        boxes1: [..., N1, (y1, x1, y2, x2)].
        boxes2: [..., N2, (y1, x1, y2, x2)].

    Returns:
        float32 [..., N1, N2] IoU. Pairs whose union is empty (two
        zero-area boxes, e.g. zero padding) get 0 instead of NaN.
    """
    boxes1 = tf.cast(boxes1, tf.float32)
    boxes2 = tf.cast(boxes2, tf.float32)
    # [..., N1, 4] -> 4 x [..., N1, 1];  [..., N2, 4] -> 4 x [..., 1, N2]
    b1_y1, b1_x1, b1_y2, b1_x2 = [c[..., :, None] for c in _split_boxes(boxes1)]
    b2_y1, b2_x1, b2_y2, b2_x2 = [c[..., None, :] for c in _split_boxes(boxes2)]
    y1 = tf.maximum(b1_y1, b2_y1)
    x1 = tf.maximum(b1_x1, b2_x1)
    y2 = tf.minimum(b1_y2, b2_y2)
    x2 = tf.minimum(b1_x2, b2_x2)
    intersection = tf.maximum(y2 - y1, 0.0) * tf.maximum(x2 - x1, 0.0)
    b1_area = (b1_y2 - b1_y1) * (b1_x2 - b1_x1)
    b2_area = (b2_y2 - b2_y1) * (b2_x2 - b2_x1)
    union = b1_area + b2_area - intersection
    return tf.math.divide_no_nan(intersection, union)


def overlaps_graph(boxes1, boxes2):
    """IoU overlaps between two sets of boxes (Matterport's overlaps_graph).

    Args:
        boxes1: [N1, (y1, x1, y2, x2)].
        boxes2: [N2, (y1, x1, y2, x2)].

    Returns:
        float32 [N1, N2] IoU (0 where the union is empty).
    """
    return batch_overlaps_graph(boxes1, boxes2)


#: The one box convention's shift (core/boxes.py): pixel (0, 0, h - 1,
#: w - 1) is normalized (0, 0, 1, 1) as (box - shift) / scale.
_NORM_SHIFT = (0.0, 0.0, 1.0, 1.0)


def box_scale_shift_graph(height, width, dtype=tf.float32):
    """Scale and shift of the one box convention for an image size.

    ``norm = (box - shift) / scale``, ``box = norm * scale + shift``.

    Args:
        height, width: scalars (tensors or numbers), the image size.
        dtype: of the results (nn/unmolding.py and nn/molding.py use
            float64, to match the numpy twins bit for bit).
    Returns:
        scale [(h - 1, w - 1, h - 1, w - 1)], shift [(0, 0, 1, 1)].
    """
    h, w = tf.cast(height, dtype), tf.cast(width, dtype)
    return tf.stack([h - 1, w - 1, h - 1, w - 1]), tf.constant(_NORM_SHIFT, dtype)


def norm_boxes_graph(boxes, shape):
    """Pixel boxes -> normalized boxes.

    Pixel (0, 0, h - 1, w - 1) maps to (0, 0, 1, 1); y2/x2 are exclusive in
    pixels, inclusive in normalized coordinates.

    Args:
        boxes: [..., (y1, x1, y2, x2)] in pixels.
        shape: [(height, width)] of the image, or [..., 2] broadcastable
            against `boxes` once the last axis becomes 4.

    Returns:
        float32 [..., (y1, x1, y2, x2)] normalized.
    """
    boxes = tf.cast(boxes, tf.float32)
    shape = tf.cast(shape, tf.float32)
    h = shape[..., 0:1]
    w = shape[..., 1:2]
    # [..., 1] x 4 -> [..., 4]
    scale = tf.concat([h, w, h, w], axis=-1) - 1.0
    shift = tf.constant(_NORM_SHIFT)
    return (boxes - shift) / scale


def denorm_boxes_graph(boxes, shape):
    """Normalized boxes -> pixel boxes (inverse of norm_boxes_graph).

    Args:
        boxes: [..., (y1, x1, y2, x2)] normalized.
        shape: [(height, width)] of the image, or [..., 2] broadcastable.

    Returns:
        int32 [..., (y1, x1, y2, x2)] in pixels (rounded).
    """
    boxes = tf.cast(boxes, tf.float32)
    shape = tf.cast(shape, tf.float32)
    h = shape[..., 0:1]
    w = shape[..., 1:2]
    # [..., 1] x 4 -> [..., 4]
    scale = tf.concat([h, w, h, w], axis=-1) - 1.0
    shift = tf.constant(_NORM_SHIFT)
    return tf.cast(tf.round(boxes * scale + shift), tf.int32)


def trim_zeros_graph(boxes, name="trim_zeros"):
    """Drop all-zero rows (padding) of a box list.

    Args:
        boxes: [N, 4] box list, zero padded.

    Returns:
        boxes: [M, 4] the non-zero rows, in order.
        non_zeros: [N] bool, True for the rows kept.
    """
    non_zeros = tf.cast(tf.reduce_sum(tf.abs(boxes), axis=1), tf.bool)
    boxes = tf.boolean_mask(boxes, non_zeros, name=name)
    return boxes, non_zeros


def parse_image_meta_graph(meta):
    """Split image meta rows into their fields (layout in core/image_meta.py).

    Args:
        meta: [B, META] image meta rows.

    Returns:
        dict of float32 tensors (as Matterport: no integer casts):
        image_id [B], original_image_shape [B, (H, W, C)],
        image_shape [B, (H, W, C)], window [B, (y1, x1, y2, x2)] pixels,
        scale [B], active_class_ids [B, NUM_CLASSES].
    """
    meta = tf.cast(meta, tf.float32)
    return {name: meta[:, where] for name, where in META_FIELDS}
