"""Tests of mrcnn/core/anchors.py with hand-computed anchors."""
import numpy as np
import pytest

from conftest import make_tiny_config
from mrcnn.core.anchors import (compute_backbone_shapes, generate_anchors,
                                generate_pyramid_anchors)


def test_generate_anchors_golden():
    anchors = generate_anchors(8, [0.5, 1, 2], [2, 3], 4, 1)
    assert anchors.shape == (2 * 3 * 3, 4)
    r = np.sqrt(2.0)
    # Cell (0, 0), ratios 0.5, 1, 2: heights 8*sqrt(2), 8, 8/sqrt(2).
    np.testing.assert_allclose(anchors[0], [-4 * r, -2 * r, 4 * r, 2 * r])
    np.testing.assert_allclose(anchors[1], [-4, -4, 4, 4])
    np.testing.assert_allclose(anchors[2], [-2 * r, -4 * r, 2 * r, 4 * r])
    # Cell-major order: anchor 3*k + a sits at cell k = y * 3 + x.
    centers = (anchors[:, :2] + anchors[:, 2:]) / 2
    expected = np.repeat([[y * 4, x * 4] for y in range(2) for x in range(3)], 3, axis=0)
    np.testing.assert_allclose(centers, expected, atol=1e-9)
    sizes = anchors[:, 2:] - anchors[:, :2]
    np.testing.assert_allclose(sizes[:, 0] * sizes[:, 1], 64.0)       # area = scale^2
    np.testing.assert_allclose(sizes[:, 1] / sizes[:, 0], np.tile([0.5, 1, 2], 6))


def test_generate_anchors_stride():
    anchors = generate_anchors(16, [1], [4, 4], 8, 2)
    centers = (anchors[:, :2] + anchors[:, 2:]) / 2
    np.testing.assert_allclose(centers, [[0, 0], [0, 16], [16, 0], [16, 16]])


def test_pyramid_anchors_for_tiny_config():
    config = make_tiny_config()
    shapes = compute_backbone_shapes(config, config.IMAGE_SHAPE)
    np.testing.assert_array_equal(shapes, [[32, 32], [16, 16], [8, 8], [4, 4], [2, 2]])
    anchors = generate_pyramid_anchors(config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
                                       shapes, config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE)
    assert anchors.shape == (3 * (1024 + 256 + 64 + 16 + 4), 4)
    # Level order: the first 3*1024 anchors are P2's (scale 8), the last 12 P6's (scale 128).
    sizes = anchors[:, 2:] - anchors[:, :2]
    np.testing.assert_allclose(np.sqrt(sizes[:3072].prod(axis=1)), 8)
    np.testing.assert_allclose(np.sqrt(sizes[-12:].prod(axis=1)), 128)
    np.testing.assert_allclose((anchors[-1, :2] + anchors[-1, 2:]) / 2, [64, 64])


def test_compute_backbone_shapes_rounds_up_and_callable():
    config = make_tiny_config()
    np.testing.assert_array_equal(compute_backbone_shapes(config, (100, 130, 3))[0], [25, 33])
    np.testing.assert_array_equal(compute_backbone_shapes(config, (100, 130, 3))[4], [2, 3])

    def backbone(*args, **kwargs):
        raise AssertionError("not called")

    # Class attributes: staticmethod, as a Config subclass would declare them.
    custom = make_tiny_config(
        BACKBONE=staticmethod(backbone),
        COMPUTE_BACKBONE_SHAPE=staticmethod(lambda shape: [[shape[0] // 2, 7]]))
    np.testing.assert_array_equal(compute_backbone_shapes(custom, (64, 64, 3)), [[32, 7]])
