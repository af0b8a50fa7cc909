"""Anchor generation (Faster R-CNN sec. 3.1.1, FPN sec. 4.1).

Shape shorthand: A = anchors per feature-map cell (len(ratios)),
Hi, Wi = height and width of pyramid level i.
Anchors are ordered cell-major then ratio-minor, the order in which the RPN
head's outputs are reshaped: (Hi, Wi, A) -> (Hi * Wi * A).
"""

import math

import numpy as np


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
