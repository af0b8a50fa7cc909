"""mrcnn.nn.molding and mrcnn.nn.unmolding against their numpy twins
(mrcnn.core.images, mrcnn.modeling.inference, MaskRCNN.get_anchors)."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import make_tiny_config
from mrcnn.core.anchors import generate_pyramid_anchors
from mrcnn.core.boxes import norm_boxes
from mrcnn.core.images import resize_image, resize_linear
from mrcnn.core.masks import paste_mask
from mrcnn.modeling.inference import mold_image_one, unmold_detections
from mrcnn.nn.molding import (MoldImage, pyramid_anchors_graph,
                              resize_image_graph, resize_linear_graph)
from mrcnn.nn.unmolding import paste_masks_graph, unmold_detections_graph


@pytest.mark.parametrize("shape,out", [((40, 60, 3), (91, 137)),
                                       ((90, 70, 3), (33, 21)),
                                       ((17, 17, 1), (17, 40))])
def test_resize_linear_graph_matches_resize_linear(shape, out):
    image = np.random.default_rng(0).uniform(10, 250, shape).astype(np.float32)
    want = resize_linear(image, out)
    got = resize_linear_graph(tf.constant(image), out[0], out[1]).numpy()
    # The same float64 steps in the same order: the same bits.
    np.testing.assert_array_equal(got.reshape(want.shape), want)



def test_resize_linear_graph_zero_border_and_clip():
    """Upscaling a flat image: skimage reads 0 outside the input, which
    darkens the outer rows / columns, then clips to the input's range."""
    flat = np.full((10, 10, 1), 200.0, np.float32)
    flat[0, 0] = 100.0                       # the range is [100, 200]
    want = resize_linear(flat, (25, 25))
    got = resize_linear_graph(tf.constant(flat), 25, 25).numpy()
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    assert want[12, -1] < 200 and want[12, 12] == 200 and want.min() >= 100


@pytest.mark.parametrize("mode,shape", [("square", (90, 60, 3)),
                                        ("square", (200, 300, 3)),
                                        ("square", (128, 100, 3)),
                                        ("pad64", (70, 130, 3)),
                                        ("pad64", (256, 200, 3)),
                                        ("none", (50, 70, 3))])
def test_resize_image_graph_matches_resize_image(mode, shape):
    image = np.random.default_rng(1).integers(0, 255, shape, dtype=np.uint8)
    want, window, scale, _, _ = resize_image(image, min_dim=128, max_dim=128,
                                             mode=mode)
    got, gwindow, gscale = resize_image_graph(tf.constant(image), 128, 128,
                                              0, mode)
    assert got.shape == want.shape
    assert tuple(gwindow.numpy()) == tuple(window)
    assert float(gscale) == scale
    np.testing.assert_array_equal(got.numpy(), want.astype(np.float32))


def test_resize_image_graph_refuses_crop():
    with pytest.raises(ValueError, match="'crop' cannot be exported"):
        resize_image_graph(tf.zeros([8, 8, 3], tf.uint8), 8, 8, 0, "crop")


@pytest.mark.parametrize("size", [(128, 128), (192, 320), (100, 60)])
def test_pyramid_anchors_graph_matches_numpy(size):
    scales, ratios, strides = (8, 16, 32, 64, 128), [0.5, 1, 2], [4, 8, 16, 32, 64]
    shapes = [[int(np.ceil(size[0] / s)), int(np.ceil(size[1] / s))]
              for s in strides]
    want = norm_boxes(generate_pyramid_anchors(scales, ratios, shapes,
                                               strides, 1), size)
    got = pyramid_anchors_graph(scales, ratios, strides, 1, size[0], size[1])
    np.testing.assert_array_equal(got.numpy(), want)


def test_mold_image_layer_matches_mold_image_one():
    config = make_tiny_config(IMAGE_RESIZE_MODE="pad64", IMAGE_MIN_DIM=128)
    layer = MoldImage(config.IMAGE_MIN_DIM, config.IMAGE_MAX_DIM,
                      config.IMAGE_MIN_SCALE, config.IMAGE_RESIZE_MODE,
                      config.MEAN_PIXEL, config.NUM_CLASSES,
                      config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
                      config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE)
    image = np.random.default_rng(2).integers(0, 255, (130, 200, 3), np.uint8)
    molded, meta, _ = mold_image_one(image, config)
    got_molded, got_meta, anchors = [np.asarray(x)[0] for x in layer(image[None])]
    np.testing.assert_array_equal(got_molded, molded)     # no resampling here
    np.testing.assert_allclose(got_meta, meta, rtol=1e-7)
    assert anchors.shape[0] == 3 * sum(int(np.ceil(192 / s)) * int(np.ceil(256 / s))
                                       for s in config.BACKBONE_STRIDES)
    assert MoldImage.from_config(layer.get_config()).get_config() == layer.get_config()


def test_paste_masks_graph_matches_paste_mask():
    rng = np.random.default_rng(3)
    masks = rng.uniform(0, 1, (4, 28, 28)).astype(np.float32)
    boxes = np.array([[0, 0, 40, 30], [10, 5, 11, 90], [-5, 50, 20, 70],
                      [30, 60, 50, 80]], np.int32)     # one leaves the image
    got = paste_masks_graph(tf.constant(masks), tf.constant(boxes), 45, 75).numpy()
    assert got.shape == (45, 75, 4) and got.dtype == np.uint8
    for i in range(4):
        want = np.zeros((45, 75), bool)
        paste_mask(want, masks[i], boxes[i])
        np.testing.assert_array_equal(got[:, :, i].astype(bool), want)
    empty = paste_masks_graph(tf.zeros([0, 28, 28]), tf.zeros([0, 4], tf.int32),
                              45, 75)
    assert empty.shape == (45, 75, 0)


def test_unmold_detections_graph_matches_numpy():
    rng = np.random.default_rng(4)
    detections = np.zeros((10, 6), np.float32)
    y1x1 = rng.uniform(0.1, 0.5, (3, 2))
    detections[:3, :2] = y1x1
    detections[:3, 2:4] = y1x1 + rng.uniform(0.1, 0.4, (3, 2))
    detections[:3, 4] = [2, 1, 2]
    detections[:3, 5] = [0.9, 0.8, 0.75]
    mrcnn_mask = rng.uniform(0, 1, (10, 28, 28, 3)).astype(np.float32)
    original, molded, window = (90, 60, 3), (128, 128, 3), (0, 21, 128, 107)
    meta = np.array([0, *original, *molded, *window, 128 / 90, 0, 0, 0],
                    np.float32)
    boxes, ids, scores, masks = unmold_detections(
        detections, mrcnn_mask, original, molded, np.array(window))
    g = [t.numpy() for t in unmold_detections_graph(
        tf.constant(detections), tf.constant(mrcnn_mask), tf.constant(meta))]
    np.testing.assert_array_equal(g[0], boxes)
    np.testing.assert_array_equal(g[1], ids)
    np.testing.assert_array_equal(g[2], scores)
    np.testing.assert_array_equal(g[3].astype(bool), masks)
