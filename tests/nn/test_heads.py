"""Heads: RoiDistributed against a per-RoI loop, weights order, names, shapes."""
import numpy as np
import keras
import pytest

from mrcnn.nn.backbone import BatchNorm
from mrcnn.nn.heads import (RoiDistributed, build_fpn_mask_graph,
                            fpn_classifier_graph)


@pytest.mark.parametrize("make", [
    lambda: keras.layers.Conv2D(6, (3, 3), padding="valid"),
    lambda: keras.layers.Dense(5),
    lambda: keras.layers.Conv2DTranspose(4, (2, 2), strides=2),
])
def test_roi_distributed_equals_per_roi_loop(make):
    rng = np.random.RandomState(0)
    inner = make()
    wrapper = RoiDistributed(inner, name="wrapped")
    shape = (2, 3, 5, 5, 4) if not isinstance(inner, keras.layers.Dense) else (2, 3, 7)
    x = rng.normal(size=shape).astype(np.float32)
    y = wrapper(x).numpy()
    for b in range(shape[0]):
        for n in range(shape[1]):
            ref = inner(x[b:b + 1, n]).numpy()[0]
            np.testing.assert_allclose(y[b, n], ref, rtol=1e-5, atol=1e-5)
    assert [w.name for w in wrapper.weights] == [w.name for w in inner.weights]


def test_roi_distributed_symbolic_shape_and_weight_order():
    x = keras.Input((None, 7, 7, 16))
    bn = RoiDistributed(BatchNorm(train_bn=False), name="mrcnn_class_bn1")
    conv = RoiDistributed(keras.layers.Conv2D(32, (7, 7)), name="mrcnn_class_conv1")
    y = bn(conv(x))
    assert tuple(y.shape) == (None, None, 1, 1, 32)
    assert [w.name for w in conv.weights] == ["kernel", "bias"]
    assert [w.name for w in bn.weights] == ["gamma", "beta", "moving_mean",
                                           "moving_variance"]
    assert bn.trainable_weights == []
    assert tuple(conv.weights[0].shape) == (7, 7, 16, 32)


def test_roi_distributed_config_round_trip():
    w = RoiDistributed(keras.layers.Dense(3, activation="relu"), name="mrcnn_bbox_fc")
    clone = RoiDistributed.from_config(w.get_config())
    assert clone.name == "mrcnn_bbox_fc"
    assert clone.layer.units == 3 and clone.layer.get_config()["activation"] == "relu"
    model = keras.Sequential([keras.Input((4, 2)), w])
    again = keras.Sequential.from_config(model.get_config())
    assert isinstance(again.layers[-1], RoiDistributed)


def _head_inputs(n_rois=6, depth=16):
    rois = keras.Input((n_rois, 4))
    meta = keras.Input((12 + 3,))
    fmaps = [keras.Input((s, s, depth)) for s in (32, 16, 8, 4)]
    return rois, meta, fmaps


def test_classifier_head_names_and_shapes():
    rois, meta, fmaps = _head_inputs()
    logits, probs, bbox = fpn_classifier_graph(rois, fmaps, meta, 7, 3,
                                               train_bn=False, fc_layers_size=32)
    assert tuple(logits.shape) == (None, 6, 3)
    assert tuple(probs.shape) == (None, 6, 3)
    assert tuple(bbox.shape) == (None, 6, 3, 4)
    model = keras.Model([rois, meta] + fmaps, [logits, probs, bbox])
    names = [l.name for l in model.layers]
    for n in ["roi_align_classifier", "mrcnn_class_conv1", "mrcnn_class_bn1",
              "mrcnn_class_conv2", "mrcnn_class_bn2", "pool_squeeze",
              "mrcnn_class_logits", "mrcnn_class", "mrcnn_bbox_fc", "mrcnn_bbox"]:
        assert n in names
    assert tuple(model.get_layer("mrcnn_class_conv1").weights[0].shape) == (7, 7, 16, 32)
    assert tuple(model.get_layer("mrcnn_bbox_fc").weights[0].shape) == (32, 12)
    # Runs on real values; probabilities sum to one.
    rng = np.random.RandomState(0)
    boxes = np.sort(rng.uniform(size=(2, 6, 2, 2)), axis=2).transpose(0, 1, 3, 2)
    boxes = boxes.reshape(2, 6, 4)[..., [0, 2, 1, 3]].astype(np.float32)
    m = np.zeros((2, 15), np.float32)
    m[:, 4:7] = [128, 128, 3]
    m[:, 9:11] = 128
    feats = [rng.normal(size=(2, s, s, 16)).astype(np.float32) for s in (32, 16, 8, 4)]
    out = model([boxes, m] + feats)
    np.testing.assert_allclose(out[1].numpy().sum(-1), 1.0, rtol=1e-5)


def test_mask_head_names_and_shapes():
    rois, meta, fmaps = _head_inputs(n_rois=5)
    masks = build_fpn_mask_graph(rois, fmaps, meta, 14, 3, train_bn=False)
    assert tuple(masks.shape) == (None, 5, 28, 28, 3)
    model = keras.Model([rois, meta] + fmaps, masks)
    names = [l.name for l in model.layers]
    for n in ["roi_align_mask", "mrcnn_mask_conv1", "mrcnn_mask_bn1",
              "mrcnn_mask_conv4", "mrcnn_mask_bn4", "mrcnn_mask_deconv",
              "mrcnn_mask"]:
        assert n in names
    assert tuple(model.get_layer("mrcnn_mask_deconv").weights[0].shape) == (2, 2, 256, 256)
    assert tuple(model.get_layer("mrcnn_mask").weights[0].shape) == (1, 1, 256, 3)
