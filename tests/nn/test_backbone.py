"""Backbone: frozen BatchNorm, ResNet/FPN layer names and shapes, user backbones."""
import numpy as np
import keras
import pytest
import tensorflow as tf

from mrcnn.nn.backbone import (BatchNorm, backbone_graph, fpn_graph,
                               resnet_graph)


def _bn_model(**bn_kwargs):
    inp = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(5, 1, name="c")(inp)
    call_kwargs = bn_kwargs.pop("call_kwargs", {})
    bn = BatchNorm(name="bn", **bn_kwargs)
    out = bn(x, **call_kwargs)
    return keras.Model(inp, out), bn


def _train_step(model, x):
    opt = keras.optimizers.SGD(0.5)
    with tf.GradientTape() as tape:
        y = model(x, training=True)
        loss = tf.reduce_sum(y ** 2)
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    return y


@pytest.mark.parametrize("how", ["ctor", "matterport_call"])
def test_frozen_batchnorm_does_not_change_in_training_step(how):
    if how == "ctor":
        model, bn = _bn_model(train_bn=False)
    else:
        model, bn = _bn_model(call_kwargs={"training": False})
    bn.set_weights([np.full(5, 2.0), np.full(5, 0.5), np.full(5, 0.3),
                    np.full(5, 4.0)])
    before = [w.copy() for w in bn.get_weights()]
    x = np.random.RandomState(0).normal(size=(2, 4, 4, 3)).astype(np.float32) * 3
    conv_out = model.get_layer("c")(x).numpy()  # before the conv is updated
    y_train = _train_step(model, x).numpy()
    for b, a in zip(before, bn.get_weights()):
        np.testing.assert_array_equal(b, a)
    assert bn.train_bn is False and bn.trainable_weights == []
    # Inference mode even under training=True: output uses moving stats.
    expected = (conv_out - 0.3) / np.sqrt(4.0 + 1e-3) * 2.0 + 0.5
    np.testing.assert_allclose(y_train, expected, rtol=1e-4, atol=1e-4)
    # set_trainable("all") must not unfreeze it.
    bn.trainable = True
    assert bn.trainable is False and not any(
        v.trainable for v in bn.weights)


def test_trainable_batchnorm_follows_call_time_training():
    model, bn = _bn_model(train_bn=True)
    x = np.random.RandomState(1).normal(size=(2, 4, 4, 3)).astype(np.float32)
    mean0 = bn.moving_mean.numpy().copy()
    model(x, training=False)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), mean0)
    _train_step(model, x)
    assert not np.allclose(bn.moving_mean.numpy(), mean0)
    assert len(bn.trainable_weights) == 2


def test_batchnorm_config_round_trip():
    bn = BatchNorm(train_bn=False, name="bn_x")
    clone = BatchNorm.from_config(bn.get_config())
    assert clone.train_bn is False and clone.name == "bn_x"
    assert clone.trainable is False


def _names(model):
    return [layer.name for layer in model.layers]


def test_resnet50_names_and_shapes():
    inp = keras.Input((64, 64, 3))
    C = resnet_graph(inp, "resnet50", stage5=True, train_bn=False)
    assert [tuple(c.shape) for c in C] == [
        (None, 16, 16, 64), (None, 16, 16, 256), (None, 8, 8, 512),
        (None, 4, 4, 1024), (None, 2, 2, 2048)]
    names = _names(keras.Model(inp, C))
    for n in ["conv1", "bn_conv1", "res2a_branch2a", "bn2a_branch1",
              "res2c_out", "res3d_branch2c", "res4f_branch2c", "res4f_out",
              "res5c_branch2c", "bn5c_branch2c", "res5c_out"]:
        assert n in names
    assert "res4g_branch2a" not in names
    # Matterport's 2c conv / shortcut conv / bn order inside conv blocks.
    i = names.index("res2a_branch2c")
    assert names[i:i + 4] == ["res2a_branch2c", "res2a_branch1",
                              "bn2a_branch2c", "bn2a_branch1"]


def test_resnet101_stage4_blocks_and_no_stage5():
    inp = keras.Input((64, 64, 3))
    C = resnet_graph(inp, "resnet101", stage5=False)
    assert C[4] is None
    names = _names(keras.Model(inp, C[:4]))
    blocks = sorted({n[4] for n in names if n.startswith("res4") and n.endswith("_out")})
    assert blocks == [chr(c) for c in range(ord("a"), ord("w") + 1)]


def test_resnet_rejects_unknown_architecture():
    with pytest.raises(ValueError, match="resnet152"):
        resnet_graph(keras.Input((64, 64, 3)), "resnet152")


def test_fpn_names_and_shapes():
    inp = keras.Input((128, 128, 3))
    P = backbone_graph(inp, "resnet50", train_bn=False, pyramid_size=32)
    assert [tuple(p.shape) for p in P] == [
        (None, 32, 32, 32), (None, 16, 16, 32), (None, 8, 8, 32),
        (None, 4, 4, 32), (None, 2, 2, 32)]
    names = _names(keras.Model(inp, P))
    for n in ["fpn_c5p5", "fpn_p5upsampled", "fpn_c4p4", "fpn_p4add",
              "fpn_p4upsampled", "fpn_c3p3", "fpn_p3add", "fpn_p3upsampled",
              "fpn_c2p2", "fpn_p2add", "fpn_p2", "fpn_p3", "fpn_p4",
              "fpn_p5", "fpn_p6"]:
        assert n in names


def test_fpn_p6_is_strided_subsample_of_p5():
    inp = keras.Input((128, 128, 3))
    P = backbone_graph(inp, "resnet50", pyramid_size=8)
    model = keras.Model(inp, [P[3], P[4]])
    p5, p6 = model(np.random.RandomState(0).normal(size=(1, 128, 128, 3)).astype("float32"))
    np.testing.assert_allclose(p6.numpy(), p5.numpy()[:, ::2, ::2], rtol=1e-6)


@pytest.mark.parametrize("with_c1", [False, True])
def test_user_callable_backbone(with_c1):
    def tiny_backbone(input_image, train_bn):
        feats, x = [], input_image
        for i, ch in enumerate([8, 8, 16, 16, 16]):
            x = keras.layers.Conv2D(ch, 3, strides=2, padding="same",
                                    name="my_conv{}".format(i))(x)
            x = BatchNorm(name="my_bn{}".format(i))(x, training=train_bn)
            feats.append(x)
        # strides 2, 4, 8, 16, 32 -> C1..C5 (C1 at 2 is unused)
        return feats if with_c1 else feats[1:]
    # stride-4 C2 needs the features at strides 4, 8, 16, 32:
    inp = keras.Input((64, 64, 3))
    P = backbone_graph(inp, tiny_backbone, train_bn=False, pyramid_size=8)
    assert [tuple(p.shape)[1:3] for p in P] == [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
    model = keras.Model(inp, P)
    assert model.get_layer("my_bn1").train_bn is False


def test_user_backbone_wrong_count_names_it():
    def bad(input_image, train_bn):
        return [input_image]
    with pytest.raises(ValueError, match="C2, C3, C4, C5"):
        backbone_graph(keras.Input((64, 64, 3)), bad)
