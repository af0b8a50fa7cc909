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


# --------------------------------------------------------------------------
# FullyConnectedConv2D: the classifier's "fc" convolutions as matrix products
# --------------------------------------------------------------------------
def _conv_and_fc(kernel_size, channels=16, filters=24, seed=0, **kwargs):
    """A built Conv2D and a FullyConnectedConv2D with the same weights."""
    import tensorflow as tf  # noqa: F401  (the layers run on TF)
    from mrcnn.nn.heads import FullyConnectedConv2D
    shape = (None,) + tuple(kernel_size) + (channels,)
    conv = keras.layers.Conv2D(filters, kernel_size, **kwargs)
    fc = FullyConnectedConv2D(filters, kernel_size, **kwargs)
    conv.build(shape)
    fc.build(shape)
    rng = np.random.RandomState(seed)
    fc.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32)
                    for w in fc.weights])
    conv.set_weights(fc.get_weights())
    return conv, fc


@pytest.mark.parametrize("kernel_size,kwargs", [
    ((7, 7), {}), ((1, 1), {}), ((3, 5), {"activation": "relu"}),
    ((7, 7), {"use_bias": False})])
def test_fully_connected_conv_equals_conv2d_values_and_gradients(kernel_size, kwargs):
    import tensorflow as tf
    conv, fc = _conv_and_fc(kernel_size, **kwargs)
    assert [w.name for w in fc.weights] == [w.name for w in conv.weights]
    assert [tuple(w.shape) for w in fc.weights] == \
        [tuple(w.shape) for w in conv.weights]
    x = tf.constant(np.random.RandomState(1).normal(
        size=(40,) + kernel_size + (16,)).astype(np.float32))
    grads = []
    for layer in (conv, fc):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            # a non-uniform upstream gradient
            loss = tf.reduce_sum(y * tf.sin(y))
        grads.append([y] + tape.gradient(loss, [x] + layer.trainable_weights))
    assert tuple(grads[1][0].shape) == (40, 1, 1, 24)
    for ref, got in zip(*grads):
        # float32 rounding of sums of up to 7*7*16 products, in another order
        scale = float(np.abs(ref.numpy()).max())
        np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-5,
                                   atol=1e-5 * scale)


def test_fully_connected_conv_rejects_inputs_it_does_not_cover():
    from mrcnn.nn.heads import FullyConnectedConv2D
    with pytest.raises(ValueError, match=r"fc_bad.*\[M, 7, 7, C\]"):
        FullyConnectedConv2D(8, (7, 7), name="fc_bad").build((None, 14, 14, 3))
    with pytest.raises(ValueError, match="fc_same.*padding='same'"):
        FullyConnectedConv2D(8, (3, 3), padding="same", name="fc_same")


def test_fully_connected_conv_config_round_trip_and_mixed_precision():
    import tensorflow as tf
    from mrcnn.nn.heads import FullyConnectedConv2D
    layer = FullyConnectedConv2D(6, (2, 2), activation="relu", name="fc")
    clone = FullyConnectedConv2D.from_config(layer.get_config())
    assert (clone.filters, tuple(clone.kernel_size), clone.name) == (6, (2, 2), "fc")
    half = FullyConnectedConv2D(6, (2, 2), dtype="mixed_float16")
    y = half(tf.ones((3, 2, 2, 4)))
    assert y.dtype == tf.float16 and half.kernel.dtype == "float32"


def _classifier_model(conv_class, fc_size=32, depth=16):
    """The classifier head's fc layers on RoIAlign-shaped features, with
    conv1/conv2 of `conv_class` (Conv2D: the head as it was)."""
    x_in = keras.Input((None, 7, 7, depth))
    x = RoiDistributed(conv_class(fc_size, (7, 7)), name="mrcnn_class_conv1")(x_in)
    x = RoiDistributed(BatchNorm(train_bn=True), name="mrcnn_class_bn1")(x)
    x = keras.layers.Activation("relu")(x)
    x = RoiDistributed(conv_class(fc_size, (1, 1)), name="mrcnn_class_conv2")(x)
    x = RoiDistributed(BatchNorm(train_bn=True), name="mrcnn_class_bn2")(x)
    return keras.Model(x_in, x)


def test_classifier_fc_matterport_h5_round_trip(tmp_path):
    """Weights in Matterport's layout (written with plain h5py) load into
    the matrix-product head unchanged, give the outputs of the Conv2D head
    in training and inference, and save back to the same layout."""
    import h5py
    from mrcnn.nn.heads import FullyConnectedConv2D
    from mrcnn.modeling.weights import h5layout
    from mrcnn.modeling.weights.loading import load_weights_into
    from tests.h5_fixtures import write_keras2_h5
    rng = np.random.RandomState(0)
    layers = []
    for i, c_in in [(1, 16), (2, 32)]:
        k = 7 if i == 1 else 1
        layers.append(("mrcnn_class_conv{}".format(i), [
            ("mrcnn_class_conv{}/kernel:0".format(i),
             rng.normal(0, 0.05, (k, k, c_in, 32)).astype(np.float32)),
            ("mrcnn_class_conv{}/bias:0".format(i),
             rng.normal(0, 0.05, (32,)).astype(np.float32))]))
        layers.append(("mrcnn_class_bn{}".format(i), [
            ("mrcnn_class_bn{}/{}:0".format(i, n),
             (rng.uniform(0.5, 1.5, 32) if n in ("gamma", "moving_variance")
              else rng.normal(0, 0.1, 32)).astype(np.float32))
            for n in ("gamma", "beta", "moving_mean", "moving_variance")]))
    path = write_keras2_h5(str(tmp_path / "matterport.h5"), layers)
    reference = _classifier_model(keras.layers.Conv2D)
    model = _classifier_model(FullyConnectedConv2D)
    assert isinstance(model.get_layer("mrcnn_class_conv1").layer, FullyConnectedConv2D)
    load_weights_into(reference, path)
    load_weights_into(model, path)
    saved = h5layout.save_weights(model, str(tmp_path / "saved.h5"))
    x = rng.normal(size=(2, 5, 7, 7, 16)).astype(np.float32)
    # (training=True also updates both models' BatchNorm moving statistics)
    for training in (False, True):
        np.testing.assert_allclose(model(x, training=training).numpy(),
                                   reference(x, training=training).numpy(),
                                   rtol=1e-5, atol=1e-5)
    with h5py.File(path, "r") as a, h5py.File(saved, "r") as b:
        for name, weights in layers:
            names = [n.decode() for n in b[name].attrs["weight_names"]]
            assert names == [w for w, _ in weights]
            for w, value in weights:
                np.testing.assert_array_equal(b[name][w][()], a[name][w][()])


def _convolutions(model):
    """(layer name, Conv2D, its input shape) for every Conv2D of a
    functional model: nested models and RoiDistributed wrappers included
    (a wrapper's inner layer sees the input without the RoI axis)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _convolutions(layer)
            continue
        inner, shape = layer, tuple(layer.input.shape) \
            if hasattr(layer, "input") and not isinstance(layer.input, list) \
            else None
        if isinstance(layer, RoiDistributed):
            inner, shape = layer.layer, (None,) + shape[2:]
        if isinstance(inner, keras.layers.Conv2D):
            yield layer.name, inner, shape


@pytest.mark.parametrize("mode", ["training", "inference"])
def test_no_convolution_with_1x1_output_in_the_graph(mode, tmp_path):
    """Eigen (TensorFlow without oneDNN) computes the input gradient of a
    convolution whose output is 1x1 as one matrix-vector product per
    example: such layers must be FullyConnectedConv2D (a matrix product)."""
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    from mrcnn.nn.heads import FullyConnectedConv2D
    from tests.conftest import make_tiny_config
    model = MaskRCNN(mode=mode, config=make_tiny_config(),
                     model_dir=str(tmp_path)).keras_model
    convs = list(_convolutions(model))
    fc = {name for name, conv, _ in convs
          if isinstance(conv, FullyConnectedConv2D)}
    assert fc == {"mrcnn_class_conv1", "mrcnn_class_conv2"}
    assert len(convs) > 50          # the walk reached the backbone and RPN
    offending = [
        (name, shape) for name, conv, shape in convs
        if not isinstance(conv, FullyConnectedConv2D) and
        tuple(conv.compute_output_shape(shape)[1:3]) == (1, 1)]
    assert offending == []
