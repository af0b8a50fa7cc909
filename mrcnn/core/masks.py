"""Instance masks in numpy: IoU, resizing, mini-masks and unmolding.

Shape shorthand: H, W = image height and width; N = instances; masks are
stacked on the LAST axis, [H, W, N] bool, as in Matterport. Boxes follow
the package convention, [N, (y1, x1, y2, x2)] pixels, y2/x2 exclusive.

Mini-masks (Mask R-CNN training trick from Matterport): each instance mask
is cropped to its box and resized to MINI_MASK_SHAPE, e.g. [56, 56, N],
which saves memory for large images. ``expand_mask`` undoes it.
"""

import numpy as np

from mrcnn.core.images import linear_taps, resize, resize_linear_2d


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


############################################################
#  Masks held in their boxes (inference results to encode)
############################################################

#: Float64 values one block of mask rows may hold (8 MB): pasting a mask
#: into a box of any size works through blocks of at most this size.
BLOCK_VALUES = 1 << 20


class _BoxPaste(object):
    """How one mask-head output is pasted into its box, row by row.

    The pixels of ``paste_mask(target, mask, box)`` (``resize_linear_2d``
    into the box, ``>= 0.5``), computed for any range of the box's rows
    with the same float operations, so that a block of rows equals the
    same rows of the whole paste bit for bit.
    """

    def __init__(self, mask, box):
        mask = np.asarray(mask)
        if mask.dtype.kind != "f":
            mask = mask.astype(np.float32)
        self.dtype = np.float64 if mask.dtype == np.float64 else np.float32
        self.y1, self.x1, y2, x2 = [int(v) for v in box[:4]]
        self.height, self.width = y2 - self.y1, x2 - self.x1
        source = mask.astype(np.float64)
        lo, hi, w_lo, w_hi = linear_taps(source.shape[1], max(self.width, 1))
        # Column pass of resize_linear: [h, box width] float64.
        self.cols = source[:, lo] * w_lo[None] + source[:, hi] * w_hi[None]
        self.taps = linear_taps(source.shape[0], max(self.height, 1))
        low, high = source.min(), source.max()
        if not low <= 0 <= high and low > 0 and \
                self.dtype(low) >= 0.5 and self._widens():
            # resize_linear widens its clip range to 0 when 0 lies inside
            # the output's range; it only changes the mask when every
            # input value is >= 0.5 (otherwise clipped values stay < 0.5).
            low = min(low, 0.0)
        self.low, self.high = low, high

    def _values(self, start, stop):
        """[stop - start, box width] float64 of resize_linear, unclipped."""
        lo, hi, w_lo, w_hi = [t[start:stop] for t in self.taps]
        return self.cols[lo] * w_lo[:, None] + self.cols[hi] * w_hi[:, None]

    def _blocks(self, start, stop):
        step = max(1, BLOCK_VALUES // max(self.width, 1))
        for a in range(start, stop, step):
            yield a, min(a + step, stop)

    def _widens(self):
        """resize_linear's test ``out.min() <= 0 <= out.max()`` over the
        whole box, one block at a time."""
        low, high = np.inf, -np.inf
        for a, b in self._blocks(0, self.height):
            values = self._values(a, b)
            low, high = min(low, values.min()), max(high, values.max())
        return low <= 0 <= high

    def rows(self, start, stop):
        """bool [stop - start, box width]: rows start..stop-1 of the box."""
        out = np.empty((max(stop - start, 0), max(self.width, 0)), bool)
        for a, b in self._blocks(start, stop):
            values = np.clip(self._values(a, b), self.low, self.high)
            out[a - start:b - start] = values.astype(self.dtype) >= 0.5
        return out


class BoxMasks(object):
    """Instance masks [H, W, N] held as N mask-head outputs and their boxes.

    What ``detect(images, masks="boxes")`` returns as ``masks``: the same
    pixels as its full-size bool [H, W, N] (Matterport's unmold_mask:
    each mask resized into its box, thresholded at 0.5, False outside),
    but each mask is pasted only inside its box, when asked, a block of
    rows at a time, so that memory stays that of one image whatever N.
    ``np.asarray(box_masks)`` (or `to_dense`) gives the full array.

    Args:
        masks: [N, h, w] float mask-head outputs (each of its detection's
            class), e.g. [N, 28, 28] probabilities.
        boxes: [N, (y1, x1, y2, x2)] int pixels of the detections.
        image_shape: (H, W[, C]) of the image.
    """

    ndim = 3
    dtype = np.dtype(bool)

    def __init__(self, masks, boxes, image_shape):
        self.masks = np.asarray(masks)
        self.boxes = np.asarray(boxes).reshape(-1, 4).astype(np.int64)
        if len(self.masks) != len(self.boxes):
            raise ValueError("BoxMasks: {} masks but {} boxes".format(
                len(self.masks), len(self.boxes)))
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self._pastes = {}

    @property
    def shape(self):
        """(H, W, N), as the full-size masks."""
        return self.image_shape + (len(self.boxes),)

    def __len__(self):
        return len(self.boxes)

    def _paste(self, i):
        if i not in self._pastes:
            self._pastes[i] = _BoxPaste(self.masks[i], self.boxes[i])
        return self._pastes[i]

    def window(self, i):
        """(y1, x1, y2, x2) of box i clipped to the image (may be empty)."""
        height, width = self.image_shape
        y1, x1, y2, x2 = [int(v) for v in self.boxes[i]]
        return (min(max(y1, 0), height), min(max(x1, 0), width),
                min(max(y2, 0), height), min(max(x2, 0), width))

    def rows(self, i, start=0, stop=None):
        """Mask i over image rows start..stop-1, inside its box.

        Returns:
            (y, x, bool [h, w]): the part of the mask's box that lies in
            those rows and in the image, at image pixel (y, x); h or w is 0
            when the box misses them.
        """
        stop = self.image_shape[0] if stop is None else stop
        y1, x1, y2, x2 = self.window(i)
        a, b = max(y1, start), min(y2, stop)
        if b <= a or x2 <= x1:
            return max(a, 0), x1, np.zeros((max(b - a, 0), max(x2 - x1, 0)),
                                           bool)
        paste = self._paste(i)
        block = paste.rows(a - paste.y1, b - paste.y1)
        return a, x1, block[:, x1 - paste.x1:x2 - paste.x1]

    def crop(self, i):
        """(y, x, bool [h, w]): mask i inside its box (clipped to the
        image); everything outside is False."""
        return self.rows(i)

    def mask(self, i):
        """bool [H, W]: mask i at full size."""
        full = np.zeros(self.image_shape, bool)
        y, x, crop = self.crop(i)
        full[y:y + crop.shape[0], x:x + crop.shape[1]] = crop
        return full

    def union(self, start=0, stop=None):
        """bool [stop - start, W]: pixels of image rows start..stop-1
        (clipped to the image) that any mask covers."""
        stop = self.image_shape[0] if stop is None else \
            min(stop, self.image_shape[0])
        start = min(max(start, 0), stop)
        out = np.zeros((stop - start, self.image_shape[1]), bool)
        for i in range(len(self)):
            y, x, block = self.rows(i, start, stop)
            out[y - start:y - start + block.shape[0],
                x:x + block.shape[1]] |= block
        return out

    def any(self):
        """True when some mask covers a pixel."""
        return any(self.crop(i)[2].any() for i in range(len(self)))

    def select(self, index):
        """BoxMasks of the instances ``index`` (ints or a [N] bool array)."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.nonzero(index)[0]
        index = index.reshape(-1).astype(np.int64)
        return BoxMasks(self.masks[index], self.boxes[index],
                        self.image_shape)

    def to_dense(self):
        """bool [H, W, N]: the full-size masks (detect()'s default)."""
        full = np.zeros(self.shape, bool)
        for i in range(len(self)):
            y, x, crop = self.crop(i)
            full[y:y + crop.shape[0], x:x + crop.shape[1], i] = crop
        return full

    def __array__(self, dtype=None, copy=None):
        full = self.to_dense()
        return full if dtype is None else full.astype(dtype)

    def __getitem__(self, key):
        """``masks[:, :, i]`` -> bool [H, W] of mask i; other keys index the
        full-size array."""
        if isinstance(key, tuple) and len(key) == 3 and \
                key[0] == slice(None) and key[1] == slice(None):
            if isinstance(key[2], (int, np.integer)):
                i = int(key[2]) + (len(self) if key[2] < 0 else 0)
                if not 0 <= i < len(self):
                    raise IndexError("mask index {} out of range for {} "
                                     "masks".format(key[2], len(self)))
                return self.mask(i)
            if not isinstance(key[2], slice):
                return self.select(key[2])
        return self.to_dense()[key]

    def __repr__(self):
        return "BoxMasks(shape={})".format(self.shape)


def rle_counts(crop, y, x, image_shape):
    """COCO RLE counts of a full-image mask known by its box crop.

    Args:
        crop: bool [h, w], the mask inside its box; False elsewhere.
        y, x: image pixel of crop[0, 0].
        image_shape: (H, W) of the image.
    Returns:
        list of int: the uncompressed counts of the [H, W] mask in column
        major order (zeros first), exactly those pycocotools' encode gives
        for the full-size mask.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    crop = np.asarray(crop, bool)
    h, w = crop.shape
    if not crop.any():
        return [height * width]
    # Each column of the box with a 0 above and below, column major, so
    # runs never cross from one column into the next.
    padded = np.zeros((w, h + 2), np.int8)
    padded[:, 1:-1] = crop.T
    steps = np.diff(padded.reshape(-1))
    starts = np.flatnonzero(steps == 1) + 1
    ends = np.flatnonzero(steps == -1) + 1

    def full_index(p):
        col, row = np.divmod(p, h + 2)
        return (x + col) * height + y + row - 1

    starts, ends = full_index(starts), full_index(ends)
    # A run ending at a column's last row and one starting at the next
    # column's first row are one run of the full image.
    joined = ends[:-1] == starts[1:]
    starts = starts[np.r_[True, ~joined]]
    ends = ends[np.r_[~joined, True]]
    counts = np.empty(2 * len(starts), np.int64)
    counts[0::2] = starts - np.r_[0, ends[:-1]]
    counts[1::2] = ends - starts
    counts = counts.tolist()
    if ends[-1] < height * width:
        counts.append(int(height * width - ends[-1]))
    return counts
