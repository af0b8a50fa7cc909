"""Draw detections onto an image array with OpenCV/numpy (no matplotlib).

For files and video frames, where a matplotlib figure is too slow and adds
margins: `render_detections` returns a uint8 image of the input's size.

Shapes: ``boxes: [N, (y1, x1, y2, x2)]`` in pixels (y2, x2 exclusive),
``masks: [height, width, N]`` bool (or the `mrcnn.core.masks.BoxMasks` of
``detect(..., masks="boxes")``, drawn box by box with the same pixels),
``class_ids: [N]`` int.
"""
import colorsys

import cv2
import numpy as np

from mrcnn.core.images import to_rgb_uint8
from mrcnn.core.masks import BoxMasks


def class_color(class_id, bright=True):
    """A fixed color for a class id, stable across frames and runs.

    Hues step by the golden ratio so that neighbouring ids differ.

    Args:
        class_id: int.
        bright: full brightness if True, else 0.7.
    Returns:
        (r, g, b) floats in [0, 1].
    """
    hue = (int(class_id) * 0.618033988749895) % 1.0
    return colorsys.hsv_to_rgb(hue, 1.0, 1.0 if bright else 0.7)


def _to_uint8_rgb(image):
    """The image as RGB uint8 [H, W, 3] (`core.images.to_rgb_uint8`: a float
    image in [0, 1] is scaled by 255), errors naming render_detections."""
    try:
        return to_rgb_uint8(image)
    except ValueError as e:
        raise ValueError("render_detections: {}".format(e)) from None


def render_detections(image, boxes, masks, class_ids, class_names,
                      scores=None, colors=None, show_mask=True, show_bbox=True,
                      alpha=0.5):
    """Draw masks, outlines, boxes and "class score" labels on a copy of image.

    Mask pixels are blended as in ``visualize.apply_mask``:
    ``pixel * (1 - alpha) + alpha * color * 255``; pixels outside every mask,
    outline, box and label are left unchanged.

    Args:
        image: [height, width, 3] RGB uint8, or any image
            `core.images.to_rgb_uint8` converts (gray, RGBA, 16-bit,
            float in [0, 1] or [0, 255]).
        boxes: [N, (y1, x1, y2, x2)] pixels; all-zero rows are skipped.
        masks: [height, width, N] bool, or None.
        class_ids: [N] int, indices into ``class_names``.
        class_names: list of names ("BG" first).
        scores: optional [N] floats, shown after the class name.
        colors: optional list of N (r, g, b) floats in [0, 1]; default: one
            fixed color per class (`class_color`).
        show_mask, show_bbox: draw masks / boxes.
        alpha: mask opacity.
    Returns:
        [height, width, 3] uint8 RGB image (a new array).
    """
    out = _to_uint8_rgb(image).copy()
    height, width = out.shape[:2]
    boxes = np.zeros((0, 4)) if boxes is None else np.asarray(boxes)
    class_ids = np.asarray(class_ids).astype(np.int64).reshape(-1)
    n = boxes.shape[0]
    if class_ids.shape[0] != n:
        raise ValueError("render_detections: {} boxes but {} class_ids".format(
            n, class_ids.shape[0]))
    if masks is not None:
        if not isinstance(masks, BoxMasks):
            masks = np.asarray(masks)
        if masks.ndim != 3 or masks.shape[-1] != n or \
                masks.shape[:2] != (height, width):
            raise ValueError(
                "render_detections: masks must be [{}, {}, {}] (image size, "
                "one per box), got {}".format(height, width, n, masks.shape))
    if scores is not None and len(scores) != n:
        raise ValueError("render_detections: {} boxes but {} scores".format(
            n, len(scores)))
    if colors is None:
        colors = [class_color(c) for c in class_ids]
    elif len(colors) < n:
        raise ValueError("render_detections: {} boxes but {} colors".format(
            n, len(colors)))
    thickness = max(1, int(round(min(height, width) / 300)))
    font_scale = max(0.35, min(height, width) / 1000.0)

    # Masks first (blended), so boxes and labels stay crisp on top.
    if isinstance(masks, BoxMasks):
        if show_mask:
            out = _blend_box_masks(out, masks, colors, alpha)
        for i in range(n):
            y, x, crop = masks.crop(i)
            if not crop.any():
                continue
            # A zero border around the box: contours as on the full mask.
            padded = np.pad(crop.astype(np.uint8), 1)
            contours, _ = cv2.findContours(padded, cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_SIMPLE,
                                           offset=(x - 1, y - 1))
            cv2.drawContours(out, contours, -1, _color255(colors[i]),
                             thickness)
    elif masks is not None and show_mask:
        work = out.astype(np.float32)
        for i in range(n):
            m = masks[:, :, i].astype(bool)
            if not m.any():
                continue
            color = np.array(colors[i][:3], np.float32) * 255
            work[m] = work[m] * (1 - alpha) + alpha * color
        out = work.astype(np.uint8)
    if masks is not None and not isinstance(masks, BoxMasks):
        for i in range(n):
            m = masks[:, :, i].astype(np.uint8)
            if not m.any():
                continue
            contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_SIMPLE)
            bgr = _color255(colors[i])
            cv2.drawContours(out, contours, -1, bgr, thickness)
    for i in range(n):
        if not np.any(boxes[i]):
            continue
        y1, x1, y2, x2 = [int(round(v)) for v in boxes[i][:4]]
        color = _color255(colors[i])
        if show_bbox:
            cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), color, thickness)
        cid = int(class_ids[i])
        label = class_names[cid] if 0 <= cid < len(class_names) else str(cid)
        if scores is not None:
            label = "{} {:.2f}".format(label, float(scores[i]))
        _label(out, label, x1, y1, color, font_scale, thickness)
    return out


def _blend_box_masks(out, masks, colors, alpha, pixels=1 << 20):
    """The mask blend of render_detections for BoxMasks, in place on
    ``out`` [H, W, 3] uint8: a block of rows at a time in float32, each
    mask in order (the same float steps as on the whole image)."""
    height, width = out.shape[:2]
    step = max(1, pixels // max(width, 1))
    for start in range(0, height, step):
        stop = min(start + step, height)
        work = out[start:stop].astype(np.float32)
        for i in range(len(masks)):
            y, x, block = masks.rows(i, start, stop)
            if not block.any():
                continue
            color = np.array(colors[i][:3], np.float32) * 255
            region = work[y - start:y - start + block.shape[0],
                          x:x + block.shape[1]]
            region[block] = region[block] * (1 - alpha) + alpha * color
        out[start:stop] = work.astype(np.uint8)
    return out


def _color255(color):
    """(r, g, b) in [0, 1] -> tuple of ints 0..255 (image is RGB)."""
    return tuple(int(round(float(c) * 255)) for c in color[:3])


def _label(image, text, x, y, color, font_scale, thickness):
    """Write ``text`` in white on a filled box of ``color`` at (x, y)."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, font_scale, 1)
    height, width = image.shape[:2]
    top = y - th - base - 2
    if top < 0:  # no room above the box: write inside it
        top = y
    x = min(max(0, x), max(0, width - tw - 2))
    cv2.rectangle(image, (x, top), (x + tw + 2, top + th + base + 2), color,
                  cv2.FILLED)
    cv2.putText(image, text, (x + 1, top + th + 1), font, font_scale,
                (255, 255, 255), 1, cv2.LINE_AA)
