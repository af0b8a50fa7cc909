"""Anchor generation (Faster R-CNN sec. 3.1.1, FPN sec. 4.1).

Shape shorthand: A = anchors per feature-map cell (len(ratios)),
Hi, Wi = height and width of pyramid level i.
Anchors are ordered cell-major then ratio-minor, the order in which the RPN
head's outputs are reshaped: (Hi, Wi, A) -> (Hi * Wi * A).
"""

import functools
import math

import numpy as np

from mrcnn.core.boxes import norm_boxes


def generate_anchors(scales, ratios, shape, feature_stride, anchor_stride):
    """Anchors of one pyramid level.

    Args:
        scales: scalar or 1D array of anchor sizes in pixels (square side).
            Example: [32, 64, 128].
        ratios: 1D array of anchor width/height ratios. Example: [0.5, 1, 2].
        shape: [height, width] of the feature map.
        feature_stride: stride of the feature map relative to the image, px.
        anchor_stride: stride of anchors on the feature map (1 = every cell).

    Returns:
        float64 [Hi * Wi * len(scales) * len(ratios), (y1, x1, y2, x2)]
        in image pixels, centred on the cell's top-left pixel corner.
    """
    # Every combination of scale and ratio: (R, S) -> (R*S,)
    scales, ratios = np.meshgrid(np.array(scales, dtype=np.float64).ravel(),
                                 np.array(ratios, dtype=np.float64).ravel())
    scales = scales.flatten()
    ratios = ratios.flatten()
    heights = scales / np.sqrt(ratios)
    widths = scales * np.sqrt(ratios)

    # Cell positions in image pixels.
    shifts_y = np.arange(0, shape[0], anchor_stride) * feature_stride
    shifts_x = np.arange(0, shape[1], anchor_stride) * feature_stride
    shifts_x, shifts_y = np.meshgrid(shifts_x, shifts_y)

    # Every combination of cell and anchor shape: (Hi*Wi, A)
    box_widths, box_centers_x = np.meshgrid(widths, shifts_x)
    box_heights, box_centers_y = np.meshgrid(heights, shifts_y)

    # (Hi*Wi, A, 2) -> (Hi*Wi*A, 2)
    box_centers = np.stack([box_centers_y, box_centers_x], axis=2).reshape([-1, 2])
    box_sizes = np.stack([box_heights, box_widths], axis=2).reshape([-1, 2])

    return np.concatenate([box_centers - 0.5 * box_sizes,
                           box_centers + 0.5 * box_sizes], axis=1)


def generate_pyramid_anchors(scales, ratios, feature_shapes, feature_strides,
                             anchor_stride):
    """Anchors of every pyramid level, concatenated level by level.

    Args:
        scales: one anchor size per level, e.g. (32, 64, 128, 256, 512).
        ratios: width/height ratios used at every level, e.g. [0.5, 1, 2].
        feature_shapes: [levels, (height, width)] of each feature map.
        feature_strides: one stride per level, e.g. [4, 8, 16, 32, 64].
        anchor_stride: stride of anchors on the feature maps.

    Returns:
        float64 [sum_i(Hi * Wi * A), (y1, x1, y2, x2)] in image pixels,
        P2 anchors first.
    """
    anchors = [generate_anchors(scales[i], ratios, feature_shapes[i],
                                feature_strides[i], anchor_stride)
               for i in range(len(scales))]
    return np.concatenate(anchors, axis=0)


def compute_backbone_shapes(config, image_shape):
    """[levels, (height, width)] of the feature maps for an image shape.

    Uses config.COMPUTE_BACKBONE_SHAPE when the backbone is a callable;
    otherwise ceil(size / stride) for each of config.BACKBONE_STRIDES.
    """
    if callable(config.BACKBONE):
        return np.array(config.COMPUTE_BACKBONE_SHAPE(image_shape))
    return np.array([[int(math.ceil(image_shape[0] / stride)),
                      int(math.ceil(image_shape[1] / stride))]
                     for stride in config.BACKBONE_STRIDES])


#: Image shapes whose anchors `pyramid_anchors` keeps (least recently used
#: dropped first; with IMAGE_RESIZE_MODE "none" every image size is a new
#: shape, and 1024 x 1024 anchors take ~4 MB).
ANCHOR_CACHE_SIZE = 32


def pyramid_anchors(scales, ratios, feature_strides, anchor_stride,
                    image_shape, feature_shapes=None, normalized=True):
    """The anchors of one image shape: the one function every caller uses.

    Args:
        scales: one anchor side in pixels per level (RPN_ANCHOR_SCALES).
        ratios: width/height ratios (RPN_ANCHOR_RATIOS).
        feature_strides: stride of each level (BACKBONE_STRIDES).
        anchor_stride: RPN_ANCHOR_STRIDE.
        image_shape: (h, w[, C]) of the molded image.
        feature_shapes: optional [levels, (height, width)] of the feature
            maps; default ceil(size / stride) per level.
        normalized: True for normalized coordinates (the model's
            input_anchors), False for pixels (RPN targets).
    Returns:
        read-only [sum_i(Hi * Wi * A), (y1, x1, y2, x2)]: float32
        normalized (norm_boxes), or float64 pixels. The result is cached
        per distinct arguments (ANCHOR_CACHE_SIZE entries): do not write
        to it (copy it first).
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    if feature_shapes is None:
        feature_shapes = [[int(math.ceil(height / s)), int(math.ceil(width / s))]
                          for s in feature_strides]
    return _pyramid_anchors(
        tuple(float(s) for s in np.atleast_1d(scales)),
        tuple(float(r) for r in np.ravel(ratios)),
        tuple(int(s) for s in feature_strides), int(anchor_stride),
        (height, width),
        tuple((int(h), int(w)) for h, w in np.asarray(feature_shapes).reshape(-1, 2)),
        bool(normalized))


@functools.lru_cache(maxsize=ANCHOR_CACHE_SIZE)
def _pyramid_anchors(scales, ratios, feature_strides, anchor_stride,
                     image_hw, feature_shapes, normalized):
    """pyramid_anchors on hashable arguments (the cache's key)."""
    anchors = generate_pyramid_anchors(scales, list(ratios), feature_shapes,
                                       feature_strides, anchor_stride)
    if normalized:
        anchors = norm_boxes(anchors, image_hw)
    anchors.setflags(write=False)
    return anchors


def anchors_for_shape(config, image_shape, normalized=True):
    """`pyramid_anchors` of a molded image shape under a config.

    What MaskRCNN.detect, the OpenVINO detector, run_graph and the training
    data pipeline feed the network (MaskRCNN.get_anchors is this call).

    Args:
        config: Config (RPN_ANCHOR_SCALES, RPN_ANCHOR_RATIOS,
            BACKBONE_STRIDES, RPN_ANCHOR_STRIDE, and BACKBONE /
            COMPUTE_BACKBONE_SHAPE for the feature-map shapes).
        image_shape: (h, w[, C]) of the molded image.
        normalized: see pyramid_anchors.
    Returns:
        read-only float32 [A, (y1, x1, y2, x2)] normalized (float64 pixels
        with normalized=False), cached.
    """
    return pyramid_anchors(
        config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
        config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE, image_shape,
        feature_shapes=compute_backbone_shapes(config, image_shape),
        normalized=normalized)


def anchor_cache_len():
    """How many image shapes' anchors the cache holds now."""
    return _pyramid_anchors.cache_info().currsize


def clear_anchor_cache():
    """Empty the anchor cache (its arrays stay valid for their holders)."""
    _pyramid_anchors.cache_clear()
