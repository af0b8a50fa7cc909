"""Instance masks in numpy: IoU, resizing, mini-masks and unmolding.

Shape shorthand: H, W = image height and width; N = instances; masks are
stacked on the LAST axis, [H, W, N] bool, as in Matterport. Boxes follow
the package convention, [N, (y1, x1, y2, x2)] pixels, y2/x2 exclusive.

Mini-masks (Mask R-CNN training trick from Matterport): each instance mask
is cropped to its box and resized to MINI_MASK_SHAPE, e.g. [56, 56, N],
which saves memory for large images. ``expand_mask`` undoes it.
"""

import numpy as np

from mrcnn.core.images import resize, resize_linear_2d


def compute_overlaps_masks(masks1, masks2):
    """IoU of every pair of masks.

    Args:
        masks1: [H, W, N1] bool or float (thresholded at 0.5).
        masks2: [H, W, N2], same H, W.

    Returns:
        float [N1, N2] IoU; zeros of shape [N1, N2] when either set is
        empty. A pair of two empty masks has IoU 0.
    """
    masks1 = np.asarray(masks1)
    masks2 = np.asarray(masks2)
    n1, n2 = masks1.shape[-1], masks2.shape[-1]
    if n1 == 0 or n2 == 0:
        return np.zeros((n1, n2))
    if masks1.shape[:-1] != masks2.shape[:-1]:
        raise ValueError("compute_overlaps_masks: masks1 {} and masks2 {} differ in [H, W]".format(
            masks1.shape, masks2.shape))
    # float32 counts are exact up to 2**24 pixels; use float64 beyond.
    dtype = np.float32 if masks1[..., 0].size <= 2 ** 24 else np.float64
    flat1 = np.reshape(masks1 > .5, (-1, n1)).astype(dtype)   # [H, W, N1] -> [H*W, N1]
    flat2 = np.reshape(masks2 > .5, (-1, n2)).astype(dtype)   # [H, W, N2] -> [H*W, N2]
    area1 = np.sum(flat1, axis=0)                             # [N1]
    area2 = np.sum(flat2, axis=0)                             # [N2]
    intersections = flat1.T @ flat2                           # [N1, N2]
    union = area1[:, None] + area2[None, :] - intersections
    overlaps = np.zeros_like(intersections)
    np.divide(intersections, union, out=overlaps, where=union > 0)
    return overlaps


def _nearest_indices(n_in, n_out):
    """[n_out] source indices of scipy.ndimage.zoom(order=0) along one axis.

    zoom (grid_mode=False) aligns the corner pixels: output i samples input
    coordinate i * (n_in - 1) / (n_out - 1), rounded to the nearest pixel.
    """
    step = (n_in - 1) / (n_out - 1) if n_out > 1 else 1.0
    coords = np.arange(n_out) * step
    return np.minimum(np.floor(coords + 0.5).astype(np.int64), n_in - 1)


def resize_mask(mask, scale, padding, crop=None):
    """Resize masks with the scale and padding (or crop) of resize_image.

    Nearest neighbour with the sampling of ``scipy.ndimage.zoom(mask,
    [scale, scale, 1], order=0)`` (Matterport's call), so masks and image
    come out the same size, done as one gather (10x faster). One deliberate
    difference: scipy, through float rounding, sometimes reads the last
    row/column as outside the mask and blanks it; here it is kept.

    Args:
        mask: [H, W, N] (or [H, W]) masks, bool or numeric; dtype is kept.
        scale: mask scaling factor, as returned by resize_image.
        padding: [(top, bottom), (left, right), (0, 0)] from resize_image.
        crop: (y, x, height, width) from resize_image, or None.

    Returns:
        [H', W', N] masks, dtype of the input; H' = round(H * scale) plus
        padding (or the crop size).
    """
    mask = np.asarray(mask)
    if scale != 1:
        height, width = mask.shape[:2]
        # Python's round, as zoom and resize_image use.
        rows = _nearest_indices(height, int(round(height * scale)))
        cols = _nearest_indices(width, int(round(width * scale)))
        mask = mask[rows][:, cols]                       # [H', W', N]
    if crop is not None:
        y, x, h, w = crop
        mask = mask[y:y + h, x:x + w]
    else:
        mask = np.pad(mask, list(padding)[:mask.ndim], mode="constant", constant_values=0)
    return mask


def minimize_mask(bbox, mask, mini_shape):
    """Crop each mask to its box and resize it to mini_shape.

    Args:
        bbox: [N, (y1, x1, y2, x2)] pixels, e.g. from extract_bboxes.
        mask: [H, W, N] bool masks.
        mini_shape: (height, width) of the mini-masks, e.g. (56, 56).

    Returns:
        bool [mini_height, mini_width, N].

    Raises:
        ValueError: a box has zero area (names the instance and box).
    """
    mask = np.asarray(mask)
    mini_shape = tuple(int(s) for s in mini_shape)
    mini_mask = np.zeros(mini_shape + (mask.shape[-1],), dtype=bool)
    for i in range(mask.shape[-1]):
        y1, x1, y2, x2 = [int(v) for v in bbox[i][:4]]
        m = mask[y1:y2, x1:x2, i].astype(np.float32)
        if m.size == 0:
            raise ValueError(
                "minimize_mask: invalid bounding box with area of zero for "
                "instance {}: {}".format(i, (y1, x1, y2, x2)))
        # Anti-aliased resize as Matterport; rounding keeps pixels >= half covered.
        m = resize(m, mini_shape, anti_aliasing=True)
        mini_mask[:, :, i] = np.around(m).astype(bool)
    return mini_mask


def expand_mask(bbox, mini_mask, image_shape):
    """Paste mini-masks back into full-size masks (inverse of minimize_mask).

    Args:
        bbox: [N, (y1, x1, y2, x2)] pixels of the instances in the image.
        mini_mask: [mini_height, mini_width, N] bool or float.
        image_shape: (H, W[, C]) of the image.

    Returns:
        bool [H, W, N]. Zero-area boxes give empty masks.
    """
    mini_mask = np.asarray(mini_mask)
    height, width = int(image_shape[0]), int(image_shape[1])
    mask = np.zeros((height, width, mini_mask.shape[-1]), dtype=bool)
    for i in range(mini_mask.shape[-1]):
        y1, x1, y2, x2 = [int(v) for v in bbox[i][:4]]
        if y2 <= y1 or x2 <= x1:
            continue
        m = resize_linear_2d(mini_mask[:, :, i], (y2 - y1, x2 - x1))
        # np.around as Matterport: 0.5 rounds to 0, so strictly above half.
        _paste(mask[:, :, i], m > 0.5, y1, x1)
    return mask


def unmold_mask(mask, bbox, image_shape):
    """Turn a mask head output into a full-image binary mask.

    Args:
        mask: [height, width] float mask from the network, e.g. [28, 28]
            sigmoid probabilities.
        bbox: (y1, x1, y2, x2) pixels of the detection in the image.
        image_shape: (H, W[, C]) of the image.

    Returns:
        bool [H, W]: the mask resized (bilinear) into the box and
        thresholded at 0.5; False outside the box. Only the box area is
        resized, so the cost is that of the box, not of the image.
    """
    full_mask = np.zeros(tuple(int(s) for s in image_shape[:2]), dtype=bool)
    paste_mask(full_mask, mask, bbox)
    return full_mask


def paste_mask(target, mask, bbox):
    """Resize a mask into its box and write it into `target`, in place.

    The work of `unmold_mask` without allocating the full image: detect()
    writes up to 100 masks straight into its [H, W, N] result.

    Args:
        target: bool [H, W] (may be a strided view such as full[:, :, i]);
            only the box area is written.
        mask: [height, width] float mask, e.g. [28, 28] probabilities.
        bbox: (y1, x1, y2, x2) pixels; parts outside target are clipped.
    """
    y1, x1, y2, x2 = [int(v) for v in bbox[:4]]
    if y2 <= y1 or x2 <= x1:
        return
    m = resize_linear_2d(mask, (y2 - y1, x2 - x1))     # [box height, box width]
    _paste(target, m >= 0.5, y1, x1)


def _paste(target, patch, y1, x1):
    """target[y1:, x1:] = patch, clipped to target's [H, W] (in place)."""
    height, width = target.shape[:2]
    ph, pw = patch.shape[:2]
    ty1, tx1 = max(y1, 0), max(x1, 0)
    ty2, tx2 = min(y1 + ph, height), min(x1 + pw, width)
    if ty2 <= ty1 or tx2 <= tx1:
        return
    target[ty1:ty2, tx1:tx2] = patch[ty1 - y1:ty2 - y1, tx1 - x1:tx2 - x1]
