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


def test_pyramid_anchors_are_generate_then_norm_boxes_cached_read_only():
    from mrcnn.core.anchors import anchors_for_shape, pyramid_anchors
    from mrcnn.core.boxes import norm_boxes
    config = make_tiny_config()
    shapes = compute_backbone_shapes(config, (64, 128))
    pixels = generate_pyramid_anchors(config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
                                      shapes, config.BACKBONE_STRIDES,
                                      config.RPN_ANCHOR_STRIDE)
    normalized = anchors_for_shape(config, (64, 128, 3))
    assert normalized.dtype == np.float32
    np.testing.assert_array_equal(normalized, norm_boxes(pixels, (64, 128)))
    np.testing.assert_array_equal(anchors_for_shape(config, (64, 128), normalized=False),
                                  pixels)
    # One cache for every caller: explicit arguments or a config.
    assert pyramid_anchors(config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
                           config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE,
                           (64, 128)) is normalized
    with pytest.raises(ValueError, match="read-only"):
        normalized[0, 0] = 1.0


def test_anchor_cache_is_bounded_and_keeps_the_newest():
    from mrcnn.core.anchors import (ANCHOR_CACHE_SIZE, anchor_cache_len,
                                    anchors_for_shape, clear_anchor_cache)
    config = make_tiny_config()
    clear_anchor_cache()
    oldest = anchors_for_shape(config, (64, 64))
    for k in range(1, ANCHOR_CACHE_SIZE + 3):
        newest = anchors_for_shape(config, (64, 64 * (k + 1)))
    assert anchor_cache_len() == ANCHOR_CACHE_SIZE
    assert anchors_for_shape(config, (64, 64 * (ANCHOR_CACHE_SIZE + 3))) is newest
    # The oldest shape was dropped: asked again, it is computed anew.
    again = anchors_for_shape(config, (64, 64))
    assert again is not oldest
    np.testing.assert_array_equal(again, oldest)


def test_anchors_for_a_callable_backbone_use_its_feature_shapes():
    from mrcnn.core.anchors import anchors_for_shape
    custom = make_tiny_config(
        BACKBONE=staticmethod(lambda *a, **k: None),
        COMPUTE_BACKBONE_SHAPE=staticmethod(
            lambda shape: [[shape[0] // s, shape[1] // s] for s in (4, 8, 16, 32, 64)]))
    # 64 x 64: levels 16, 8, 4, 2, 1 cells a side, 3 ratios each.
    assert anchors_for_shape(custom, (64, 64)).shape == (3 * (256 + 64 + 16 + 4 + 1), 4)


def test_the_training_anchors_layer_holds_the_same_anchors():
    """nn/graph.AnchorsLayer still normalizes its own copy (see
    tests/test_structure.py BOX_SHIFT_PENDING): it must equal the one
    function's result."""
    from mrcnn.core.anchors import pyramid_anchors
    from mrcnn.nn.training_inputs import AnchorsLayer
    config = make_tiny_config()
    args = (config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
            config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE, (96, 128))
    np.testing.assert_array_equal(AnchorsLayer(*args)._anchors, pyramid_anchors(*args))
