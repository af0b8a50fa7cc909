"""Box geometry in numpy: extraction from masks, IoU, NMS, delta coding.

The one box convention of this package (the TF twins live in
``mrcnn/nn/box_ops.py`` and are kept in step by a parity test):

- boxes are ``[N, (y1, x1, y2, x2)]`` in pixels, y2/x2 EXCLUSIVE, so a box's
  height is ``y2 - y1`` and a one-pixel box is ``(y, x, y + 1, x + 1)``;
- normalized boxes map pixel ``(0, 0, h - 1, w - 1)`` to ``(0, 0, 1, 1)``:
  ``norm = (box - [0, 0, 1, 1]) / [h - 1, w - 1, h - 1, w - 1]``;
- deltas are ``[N, (dy, dx, log(dh), log(dw))]`` (Faster R-CNN eq. 2): the
  centre shift in units of the box size and the log of the size ratio.
  Targets are further divided by ``*_BBOX_STD_DEV`` by the callers.

Shape shorthand: N, N1, N2 = numbers of boxes; H, W = image height, width.
"""

import numpy as np


def _as_boxes(boxes, name):
    """Validate a box array: returns it as an ndarray of shape [N, 4+]."""
    boxes = np.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape[1] < 4:
        raise ValueError(
            "{} must have shape [N, (y1, x1, y2, x2)], got shape {}".format(
                name, boxes.shape))
    return boxes


def extract_bboxes(mask):
    """Tight bounding boxes of instance masks.

    Args:
        mask: [H, W, N] bool (or 0/1) instance masks, one channel per instance.

    Returns:
        int32 [N, (y1, x1, y2, x2)] in pixels, y2/x2 exclusive. An empty
        mask gives the all-zero box (0, 0, 0, 0).
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError("mask must have shape [H, W, N], got shape {}".format(mask.shape))
    mask = mask.astype(bool, copy=False)
    height, width, _ = mask.shape
    rows = np.any(mask, axis=1)                     # [H, N]: instance present in row y
    cols = np.any(mask, axis=0)                     # [W, N]: instance present in column x
    present = np.any(rows, axis=0)                  # [N]
    # First True from the top/left; last True via the reversed arrays.
    y1 = np.argmax(rows, axis=0)                    # [N]
    y2 = height - np.argmax(rows[::-1], axis=0)     # [N], exclusive
    x1 = np.argmax(cols, axis=0)
    x2 = width - np.argmax(cols[::-1], axis=0)
    boxes = np.stack([y1, x1, y2, x2], axis=1)      # 4 x [N] -> [N, 4]
    boxes[~present] = 0
    return boxes.astype(np.int32)


def compute_iou(box, boxes, box_area, boxes_area):
    """IoU of one box against an array of boxes.

    Args:
        box: [(y1, x1, y2, x2)] one box.
        boxes: [N, (y1, x1, y2, x2)].
        box_area: float, area of ``box``.
        boxes_area: [N] areas of ``boxes``.
        (Areas are passed in rather than computed, for efficiency: callers
        compute them once.)

    Returns:
        [N] IoU, float. A pair whose union is empty (two zero-area boxes)
        has IoU 0.
    """
    boxes = np.asarray(boxes)
    y1 = np.maximum(box[0], boxes[:, 0])
    y2 = np.minimum(box[2], boxes[:, 2])
    x1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[3], boxes[:, 3])
    intersection = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = box_area + np.asarray(boxes_area) - intersection
    return _safe_divide(intersection, union)


def _safe_divide(numerator, denominator):
    """numerator / denominator as float, 0 where the denominator is <= 0."""
    numerator = np.asarray(numerator)
    denominator = np.asarray(denominator)
    dtype = np.result_type(numerator.dtype, denominator.dtype, np.float32)
    out = np.zeros(np.broadcast_shapes(numerator.shape, denominator.shape), dtype)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def box_areas(boxes):
    """[N] areas of [N, (y1, x1, y2, x2)] boxes (pixels, y2/x2 exclusive)."""
    boxes = np.asarray(boxes)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def compute_overlaps(boxes1, boxes2):
    """IoU of every pair of boxes, vectorised.

    Args:
        boxes1: [N1, (y1, x1, y2, x2)].
        boxes2: [N2, (y1, x1, y2, x2)].
        For better performance pass the larger set first.

    Returns:
        [N1, N2] IoU, float (float64 for integer or float64 input, float32
        for float32 input). Pairs with an empty union have IoU 0.
    """
    boxes1 = _as_boxes(boxes1, "boxes1")
    boxes2 = _as_boxes(boxes2, "boxes2")
    area1 = box_areas(boxes1)                       # [N1]
    area2 = box_areas(boxes2)                       # [N2]
    # [N1, 1] against [1, N2] -> [N1, N2]
    y1 = np.maximum(boxes1[:, None, 0], boxes2[None, :, 0])
    x1 = np.maximum(boxes1[:, None, 1], boxes2[None, :, 1])
    y2 = np.minimum(boxes1[:, None, 2], boxes2[None, :, 2])
    x2 = np.minimum(boxes1[:, None, 3], boxes2[None, :, 3])
    intersection = np.maximum(y2 - y1, 0) * np.maximum(x2 - x1, 0)
    union = area1[:, None] + area2[None, :] - intersection
    return _safe_divide(intersection, union)


def non_max_suppression(boxes, scores, threshold):
    """Greedy non-maximum suppression.

    Args:
        boxes: [N, (y1, x1, y2, x2)]. Notice that (y2, x2) lays outside the box.
        scores: [N] box scores.
        threshold: float, IoU above which a lower-scored box is suppressed.

    Returns:
        int32 [K] indices into ``boxes`` of the kept boxes, highest score
        first. Empty input gives an empty array. Ties in score are broken by
        the lower index first.

    Raises:
        ValueError: boxes is not [N, 4], scores is not [N], or scores hold NaN.
    """
    boxes = _as_boxes(boxes, "non_max_suppression: boxes")
    scores = np.asarray(scores)
    if scores.ndim != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(
            "non_max_suppression: scores must have shape [N] = [{}] to match "
            "boxes {}, got shape {}".format(boxes.shape[0], boxes.shape, scores.shape))
    if boxes.shape[0] == 0:
        return np.zeros([0], np.int32)
    if scores.dtype.kind == "f" and np.isnan(scores).any():
        raise ValueError("non_max_suppression: scores contain NaN at indices {}".format(
            np.flatnonzero(np.isnan(scores))[:10].tolist()))
    if boxes.dtype.kind != "f":
        boxes = boxes.astype(np.float32)
    if boxes.dtype == np.float16:
        # float16 areas overflow beyond 65504 (a 256 x 256 box).
        boxes = boxes.astype(np.float32)
    area = box_areas(boxes)                          # [N]
    order = np.argsort(-scores.astype(np.float64), kind="stable")  # [N] best first
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iou = compute_iou(boxes[i], boxes[rest], area[i], area[rest])
        order = rest[iou <= threshold]
    return np.array(keep, dtype=np.int32)


def apply_box_deltas(boxes, deltas):
    """Apply refinement deltas to boxes (inverse of box_refinement).

    Args:
        boxes: [N, (y1, x1, y2, x2)] boxes to update.
        deltas: [N, (dy, dx, log(dh), log(dw))] refinements to apply.

    Returns:
        float32 [N, (y1, x1, y2, x2)] refined boxes.
    """
    boxes = _as_boxes(boxes, "boxes").astype(np.float32)
    deltas = np.asarray(deltas, dtype=np.float32)
    if deltas.shape != boxes.shape[:1] + (4,):
        raise ValueError("deltas must have shape [N, 4] = [{}, 4], got {}".format(
            boxes.shape[0], deltas.shape))
    height = boxes[:, 2] - boxes[:, 0]
    width = boxes[:, 3] - boxes[:, 1]
    center_y = boxes[:, 0] + 0.5 * height
    center_x = boxes[:, 1] + 0.5 * width
    center_y = center_y + deltas[:, 0] * height
    center_x = center_x + deltas[:, 1] * width
    height = height * np.exp(deltas[:, 2])
    width = width * np.exp(deltas[:, 3])
    y1 = center_y - 0.5 * height
    x1 = center_x - 0.5 * width
    return np.stack([y1, x1, y1 + height, x1 + width], axis=1)  # 4 x [N] -> [N, 4]


def box_refinement(box, gt_box):
    """Deltas that turn ``box`` into ``gt_box`` (Faster R-CNN eq. 2).

    Args:
        box: [N, (y1, x1, y2, x2)] source boxes; must have positive size.
        gt_box: [N, (y1, x1, y2, x2)] target boxes.

    Returns:
        float32 [N, (dy, dx, log(dh), log(dw))].
    """
    box = _as_boxes(box, "box").astype(np.float32)
    gt_box = _as_boxes(gt_box, "gt_box").astype(np.float32)
    height = box[:, 2] - box[:, 0]
    width = box[:, 3] - box[:, 1]
    center_y = box[:, 0] + 0.5 * height
    center_x = box[:, 1] + 0.5 * width

    gt_height = gt_box[:, 2] - gt_box[:, 0]
    gt_width = gt_box[:, 3] - gt_box[:, 1]
    gt_center_y = gt_box[:, 0] + 0.5 * gt_height
    gt_center_x = gt_box[:, 1] + 0.5 * gt_width

    dy = (gt_center_y - center_y) / height
    dx = (gt_center_x - center_x) / width
    dh = np.log(gt_height / height)
    dw = np.log(gt_width / width)
    return np.stack([dy, dx, dh, dw], axis=1).astype(np.float32)  # 4 x [N] -> [N, 4]


def _norm_scale_shift(shape):
    height, width = shape[:2]
    scale = np.array([height - 1, width - 1, height - 1, width - 1], np.float64)
    shift = np.array([0, 0, 1, 1], np.float64)
    return scale, shift


def norm_boxes(boxes, shape):
    """Pixel boxes -> normalized coordinates.

    Args:
        boxes: [N, (y1, x1, y2, x2)] in pixels.
        shape: (height, width[, ...]) of the image, in pixels.

    Note: in pixel coordinates (y2, x2) is outside the box; in normalized
    coordinates it is inside (pixel (h - 1, w - 1) maps to (1, 1)).

    Returns:
        float32 [N, (y1, x1, y2, x2)] normalized.
    """
    scale, shift = _norm_scale_shift(shape)
    return np.divide(np.asarray(boxes) - shift, scale).astype(np.float32)


def denorm_boxes(boxes, shape):
    """Normalized boxes -> pixel coordinates (inverse of norm_boxes).

    Args:
        boxes: [N, (y1, x1, y2, x2)] normalized.
        shape: (height, width[, ...]) of the image, in pixels.

    Returns:
        int32 [N, (y1, x1, y2, x2)] in pixels, rounded, y2/x2 exclusive.
    """
    scale, shift = _norm_scale_shift(shape)
    return np.around(np.multiply(boxes, scale) + shift).astype(np.int32)


def trim_zeros(x):
    """Drop the all-zero rows (padding) of a 2D array.

    Args:
        x: [rows, columns], e.g. zero-padded boxes [N, (y1, x1, y2, x2)].

    Returns:
        [rows kept, columns]: the rows that are not all zeros, in order.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError("trim_zeros expects a 2D array, got shape {}".format(x.shape))
    return x[~np.all(x == 0, axis=1)]
