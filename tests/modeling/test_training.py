"""Tests of mrcnn.modeling.training: layer selection, one-epoch updates, resume,
overfitting, the NaN guard. Tiny 64 px model, batch 1."""
import os
import re

import numpy as np
import pytest

from conftest import RectDataset, make_tiny_config


def tiny(**overrides):
    attrs = dict(IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64, IMAGES_PER_GPU=1,
                 NUM_CLASSES=3, RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128),
                 STEPS_PER_EPOCH=1, VALIDATION_STEPS=0, TRAIN_ROIS_PER_IMAGE=16,
                 POST_NMS_ROIS_TRAINING=64, PRE_NMS_LIMIT=256,
                 RPN_TRAIN_ANCHORS_PER_IMAGE=32, FPN_CLASSIF_FC_LAYERS_SIZE=64,
                 TOP_DOWN_PYRAMID_SIZE=64, MINI_MASK_SHAPE=(16, 16),
                 MAX_GT_INSTANCES=4)
    attrs.update(overrides)
    return make_tiny_config(**attrs)


@pytest.fixture(scope="module")
def shared_model(tmp_path_factory):
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    return MaskRCNN("training", tiny(), str(tmp_path_factory.mktemp("logs")))


def _weights_by_layer(model):
    """{layer name: [arrays]} over leaf layers (nested rpn_model included)."""
    out = {}

    def walk(m):
        for layer in m.layers:
            if hasattr(layer, "layers") and layer.layers and \
                    layer.__class__.__name__ in ("Functional", "Model"):
                walk(layer)
            elif layer.weights:
                out[layer.name] = [np.array(w) for w in layer.weights]
    walk(model.keras_model)
    return out


def test_layer_regexes_are_matterports():
    from mrcnn.modeling.training import LAYER_REGEX
    heads = LAYER_REGEX["heads"]
    assert heads == r"(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)"
    for name, selected in [("res3a_branch2a", ["3+", "all"]),
                           ("bn4b_branch2b", ["3+", "4+", "all"]),
                           ("res5c_branch2c", ["3+", "4+", "5+", "all"]),
                           ("conv1", ["all"]),
                           ("fpn_p2", ["heads", "3+", "4+", "5+", "all"]),
                           ("rpn_conv_shared", ["heads", "3+", "4+", "5+", "all"])]:
        got = [k for k in ("heads", "3+", "4+", "5+", "all")
               if re.fullmatch(LAYER_REGEX[k], name)]
        assert got == selected, name


def test_set_trainable_prints_and_recurses(shared_model, capsys):
    shared_model.set_trainable(r"rpn\_.*|mrcnn\_mask.*")
    out = capsys.readouterr().out
    assert "In model:  rpn_model" in out
    assert "rpn_conv_shared" in out and "mrcnn_mask_conv1" in out
    assert "res2a_branch2a" not in out
    rpn = shared_model.keras_model.get_layer("rpn_model")
    assert rpn.get_layer("rpn_conv_shared").trainable
    assert not shared_model.keras_model.get_layer("res2a_branch2a").trainable
    assert not shared_model.keras_model.get_layer("fpn_p2").trainable
    with pytest.raises(ValueError, match="regular expression"):
        shared_model.set_trainable("(unclosed")


@pytest.mark.parametrize("layers,changed,frozen", [
    ("heads", ["fpn_p2", "rpn_conv_shared", "mrcnn_class_logits"],
     ["conv1", "res4a_branch2a", "res5a_branch2a"]),
    ("4+", ["res4a_branch2a", "res5a_branch2a", "rpn_conv_shared"],
     ["conv1", "res3a_branch2a"]),
])
def test_one_epoch_changes_only_selected_layers(shared_model, layers,
                                                changed, frozen):
    from mrcnn.modeling import training
    before = _weights_by_layer(shared_model)
    epoch = shared_model.epoch
    training.train(shared_model, RectDataset(4), RectDataset(2), 0.02,
                   epoch + 1, layers)
    after = _weights_by_layer(shared_model)
    regex = training.LAYER_REGEX[layers]
    for name in before:
        moved = any(not np.array_equal(b, a)
                    for b, a in zip(before[name], after[name]))
        if not re.fullmatch(regex, name):
            assert not moved, "{} changed with layers={}".format(name, layers)
    for name in changed:
        assert any(not np.array_equal(b, a) for b, a in
                   zip(before[name], after[name])), name
    for name in frozen:
        assert all(np.array_equal(b, a) for b, a in
                   zip(before[name], after[name])), name
    assert shared_model.epoch == epoch + 1
    assert os.path.exists(shared_model.checkpoint_path.format(epoch=epoch + 1))


def test_resume_continues_epoch_count(tmp_path):
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    from mrcnn.modeling import training
    config = tiny(VALIDATION_STEPS=1)
    model = MaskRCNN("training", config, str(tmp_path))
    history = training.train(model, RectDataset(3), RectDataset(2), 0.01, 1,
                             "heads")
    assert model.epoch == 1 and "val_loss" in history.history
    assert "val_mrcnn_mask_loss" in history.history
    first = model.checkpoint_path.format(epoch=1)
    assert os.path.exists(first)
    # A new model resuming from the checkpoint continues at epoch 1 -> 2.
    resumed = MaskRCNN("training", tiny(), str(tmp_path))
    resumed.load_weights(first, by_name=True)
    assert resumed.epoch == 1
    history = training.train(resumed, RectDataset(3), RectDataset(2), 0.01,
                             2, "heads")
    assert history.epoch == [1]
    assert resumed.epoch == 2
    assert os.path.exists(resumed.checkpoint_path.format(epoch=2))


def test_nan_guard_stops_without_checkpoint(tmp_path):
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    from mrcnn.modeling import training
    config = tiny(STEPS_PER_EPOCH=3)
    model = MaskRCNN("training", config, str(tmp_path))
    # Config.validate refuses a NaN loss weight (tests/test_config.py); the
    # guard under test is the one for NaN that appears during training, so
    # this config skips that check and plants the NaN after the model is
    # built: the first step's loss is NaN.
    config.validate = lambda *args, **kwargs: None
    config.LOSS_WEIGHTS = {
        "rpn_class_loss": float("nan"), "rpn_bbox_loss": 1.,
        "mrcnn_class_loss": 1., "mrcnn_bbox_loss": 1., "mrcnn_mask_loss": 1.}
    with pytest.raises(training.NonFiniteLossError,
                       match=r"training step 1 .*loss = nan"):
        training.train(model, RectDataset(3), RectDataset(2), 0.01, 1, "heads")
    assert not os.path.exists(model.checkpoint_path.format(epoch=1))
    assert model.epoch == 0


def test_overfit_few_images(tmp_path):
    """A handful of images, a few dozen steps: the loss falls a lot."""
    import keras
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    from mrcnn.modeling import training

    class FirstLoss(keras.callbacks.Callback):
        """custom_callbacks are run: record the loss of the very first step."""
        first = None

        def on_train_batch_end(self, batch, logs=None):
            if FirstLoss.first is None:
                FirstLoss.first = float(logs["loss"])

    keras.utils.set_random_seed(3)
    config = tiny(STEPS_PER_EPOCH=12, IMAGES_PER_GPU=2)
    model = MaskRCNN("training", config, str(tmp_path))
    ds = RectDataset(4, seed=3)
    history = training.train(model, ds, ds, 0.02, 3, "all",
                             custom_callbacks=[FirstLoss()])
    losses = history.history["loss"]
    assert FirstLoss.first is not None
    assert losses[-1] < FirstLoss.first / 2.5, (FirstLoss.first, losses)
    assert losses[-1] < losses[0], losses


def test_train_without_rpn_rois(tmp_path):
    """USE_RPN_ROIS = False: train() feeds random RoIs to input_roi; the
    heads learn from them (finite losses, head weights move)."""
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    from mrcnn.modeling import training
    config = tiny(USE_RPN_ROIS=False, STEPS_PER_EPOCH=2)
    model = MaskRCNN("training", config, str(tmp_path))
    assert model.keras_model.inputs[-1].name == "input_roi"
    before = _weights_by_layer(model)
    history = training.train(model, RectDataset(4), RectDataset(2), 0.02, 1,
                             "heads")
    after = _weights_by_layer(model)
    for name in ("loss",) + training.LOSS_NAMES:
        assert np.isfinite(history.history[name][0]), name
    assert history.history["mrcnn_class_loss"][0] > 0
    for name in ("mrcnn_class_logits", "mrcnn_mask", "rpn_conv_shared"):
        assert any(not np.array_equal(b, a) for b, a in
                   zip(before[name], after[name])), name


def test_train_mixed_bfloat16(tmp_path):
    """MIXED_PRECISION = "mixed_bfloat16": bfloat16 compute, float32
    variables and float32 loss outputs; a few steps give finite losses and
    move the weights; the global Keras policy is left as it was."""
    import keras
    import tensorflow as tf
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    from mrcnn.modeling import training
    policy = keras.config.dtype_policy().name
    config = tiny(MIXED_PRECISION="mixed_bfloat16", STEPS_PER_EPOCH=3,
                  IMAGES_PER_GPU=2)
    model = MaskRCNN("training", config, str(tmp_path))
    km = model.keras_model
    assert km.get_layer("res2a_branch2a").compute_dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in km.weights)
    loss_outputs = [km.outputs[km.output_names.index(n)]
                    for n in training.LOSS_NAMES]
    assert all(t.dtype == "float32" for t in loss_outputs)
    before = _weights_by_layer(model)
    history = training.train(model, RectDataset(4), RectDataset(2), 0.02, 1,
                             "all")
    after = _weights_by_layer(model)
    for name in ("loss",) + training.LOSS_NAMES:
        value = history.history[name][0]
        assert np.isfinite(value), (name, value)
    assert history.history["rpn_class_loss"][0] > 0
    # (mask / box heads only learn once RoIs turn positive: not in 3 steps)
    for name in ("conv1", "res4a_branch2a", "fpn_p2", "rpn_conv_shared",
                 "mrcnn_class_logits"):
        assert any(not np.array_equal(b, a) for b, a in
                   zip(before[name], after[name])), name
        assert all(a.dtype == np.float32 for a in after[name]), name
    assert keras.config.dtype_policy().name == policy
    # The loss values the trainer sums are float32 tensors.
    from mrcnn.data.pipeline import make_tf_dataset
    data = next(iter(make_tf_dataset(RectDataset(2), config)))
    total, losses = model.trainer._forward(data, training=True)
    assert total.dtype == tf.float32
    assert all(loss.dtype == tf.float32 for loss in losses)


def test_warmup_cosine_schedule_on_a_real_fit():
    """Linear warm-up, cosine decay to final_fraction, stop at total_steps;
    the optimizer really runs with the scheduled rates."""
    import math

    import keras
    from mrcnn.modeling.training import WarmupCosineSchedule
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1.0), "mse")
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(self.model.optimizer.learning_rate))

    schedule = WarmupCosineSchedule(0.1, warmup_steps=4, total_steps=10,
                                    final_fraction=0.1)
    x = np.ones((64, 2), np.float32)
    model.fit(x, x[:, :1], batch_size=2, epochs=1, verbose=0,
              callbacks=[schedule, Probe()])
    expected = [0.1 * (k + 1) / 4 for k in range(4)] + [
        0.1 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / 10)))
        for k in range(4, 10)]
    assert schedule.steps == 10 and schedule.stopped_by_budget  # 32 planned
    np.testing.assert_allclose(schedule.lrs, expected, rtol=1e-6)
    np.testing.assert_allclose(seen, expected, rtol=1e-6)
    assert max(expected) == pytest.approx(0.1)


def _loss_model():
    """Tiny functional model with the five loss outputs: Dense + BatchNorm
    (training mode), and a Dense the losses do not reach (stop_gradient)."""
    import keras
    import tensorflow as tf
    from mrcnn.modeling.training import LOSS_NAMES
    x = keras.Input((3,), name="x")
    h = keras.layers.Dense(2, name="fc")(x)
    h = keras.layers.BatchNormalization(name="bn")(h)
    u = keras.layers.Dense(4, name="unreached")(x)
    outs = [keras.layers.Lambda(
        lambda t, k=k: keras.ops.mean(keras.ops.square(t[0] - float(k))) +
        0.0 * tf.reduce_sum(tf.stop_gradient(t[1])), name=n)([h, u])
        for k, n in enumerate(LOSS_NAMES)]
    return keras.Model(x, outs, name="loss_model")


def test_weight_decay_value_and_gradient_match_matterport_l2():
    """One SGD step (lr 1, no momentum) equals the step on the loss
    sum(weighted losses) + WEIGHT_DECAY * sum_w sum(w^2) / size(w) over
    the trainable weights except BatchNorm gamma/beta (also those the losses
    do not reach); the reported loss includes the decay."""
    import keras
    import tensorflow as tf
    from mrcnn.modeling.training import LOSS_NAMES, TrainingModel
    keras.utils.set_random_seed(3)
    inner = _loss_model()
    wd = 0.1
    weights = {n: 1.0 + i for i, n in enumerate(LOSS_NAMES)}
    trainer = TrainingModel(inner, loss_weights=weights, weight_decay=wd)
    trainer.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0))
    trainable = list(trainer.trainable_variables)
    names = [v.path for v in trainable]
    assert "unreached/kernel" in names and "bn/gamma" in names
    data = (np.random.RandomState(0).normal(size=(8, 3)).astype("float32"),)
    before = [np.array(v) for v in trainable]

    # Reference: the Matterport loss, all of it differentiated on the tape.
    with tf.GradientTape() as tape:
        outs = inner(list(data), training=True)
        total = tf.add_n([outs[i] * weights[n]
                          for i, n in enumerate(LOSS_NAMES)])
        for v in trainable:
            if v.path.split("/")[-1] not in ("gamma", "beta"):
                total += wd * tf.reduce_sum(tf.square(v)) / \
                    float(np.prod(v.shape))
    grads = tape.gradient(total, trainable)
    expected = [b - g.numpy() for b, g in zip(before, grads)]
    # The reference pass updated the BatchNorm moving statistics (they do
    # not enter training-mode losses, but keep the state identical).
    bn = inner.get_layer("bn")
    bn.moving_mean.assign(np.zeros(2, "float32"))
    bn.moving_variance.assign(np.ones(2, "float32"))

    logs = trainer.train_step(data)
    for v, e in zip(trainable, expected):
        np.testing.assert_allclose(np.array(v), e, rtol=1e-5, atol=1e-6,
                                   err_msg=v.path)
    np.testing.assert_allclose(float(logs["loss"]), float(total), rtol=1e-5)
    # gamma/beta moved by the loss gradient alone; the unreached kernel by
    # the decay alone: w * (1 - 2 wd / size)
    k = names.index("unreached/kernel")
    np.testing.assert_allclose(np.array(trainable[k]),
                               before[k] * (1 - 2 * wd / before[k].size),
                               rtol=1e-6)
    g = names.index("bn/gamma")
    bn_grad = grads[g].numpy()
    np.testing.assert_allclose(np.array(trainable[g]), before[g] - bn_grad,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("clip", [None, 0.5, 1e6])
def test_momentum_sgd_equals_keras_sgd(clip):
    """MomentumSGD (fused update, clipping folded into the learning rate)
    takes the same steps as keras.optimizers.SGD with the same momentum and
    global_clipnorm, iterations included; a NaN gradient gives NaN weights
    in both (the NaN guard stops training on the loss)."""
    import keras
    import tensorflow as tf
    from mrcnn.modeling.training import MomentumSGD, _make_optimizer
    rs = np.random.RandomState(0)
    shapes = [(3, 3, 4, 8), (8,), (100, 7)]
    init = [rs.normal(size=s).astype("float32") for s in shapes]
    ref_vars = [keras.Variable(x) for x in init]
    new_vars = [keras.Variable(x) for x in init]
    ref = keras.optimizers.SGD(0.1, momentum=0.9, global_clipnorm=clip)
    new = MomentumSGD(0.1, momentum=0.9, global_clipnorm=clip)
    ref_step = tf.function(lambda g: ref.apply_gradients(zip(g, ref_vars)))
    new_step = tf.function(lambda grads: new.apply_gradients(
        zip(grads, new_vars)))
    for _ in range(4):
        g = [tf.constant(rs.normal(size=s).astype("float32")) for s in shapes]
        ref_step(g)
        new_step(g)
    assert int(new.iterations) == int(ref.iterations) == 4
    assert new._fused()     # one device: the fused kernel path was taken
    for a, b, x0 in zip(ref_vars, new_vars, init):
        assert not np.allclose(np.array(b), x0)
        np.testing.assert_allclose(np.array(b), np.array(a), rtol=1e-5,
                                   atol=1e-6)
    if clip == 0.5:
        bad = [tf.fill(s, float("nan")) for s in shapes]
        new_step(bad)
        assert all(np.isnan(np.array(v)).all() for v in new_vars)
    config = make_tiny_config(GRADIENT_CLIP_NORM=5.0)
    opt = _make_optimizer(config, 0.01, 0.9)
    assert isinstance(opt, MomentumSGD) and opt.global_clipnorm == 5.0
    clone = MomentumSGD.from_config(opt.get_config())
    assert clone.momentum == 0.9 and clone.global_clipnorm == 5.0


def test_five_losses_equal_the_pinned_ones(tmp_path):
    """The five losses of a seeded tiny model on a fixed batch, against the
    values tests/pinned/record_loss_pins.py recorded (its docstring: why
    the RoI sampling does not change them), to 1e-4."""
    import json
    import sys
    from conftest import REPO_ROOT
    pinned = os.path.join(REPO_ROOT, "tests", "pinned")
    sys.path.insert(0, pinned)
    try:
        from record_loss_pins import (BATCH_FILE, BATCH_KEYS, PINS_FILE,
                                      build_model, losses)
    finally:
        sys.path.remove(pinned)
    with open(PINS_FILE) as f:
        pins = json.load(f)
    with np.load(BATCH_FILE) as saved:
        batch = {k: saved[k] for k in BATCH_KEYS}
    got = losses(build_model(str(tmp_path)), batch)
    assert sorted(got) == sorted(pins)
    for name, value in pins.items():
        assert value > 0, name          # every loss is exercised
        assert abs(got[name] - value) <= 1e-4, (name, got[name], value)


def test_train_mixed_float16_with_loss_scaling(tmp_path):
    """MIXED_PRECISION = "mixed_float16" (the GPU policy) trains on the CPU:
    a LossScaleOptimizer wraps MomentumSGD, the losses are finite, and the
    dynamic loss scale is kept up to date: every step either counts as a
    good step or (on float16 overflow) halves the scale."""
    import warnings
    import keras
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    from mrcnn.modeling import training
    steps = 2
    config = tiny(MIXED_PRECISION="mixed_float16", STEPS_PER_EPOCH=steps)
    model = MaskRCNN("training", config, str(tmp_path))
    km = model.keras_model
    assert km.get_layer("res2a_branch2a").compute_dtype == "float16"
    assert km.get_layer("mrcnn_class_conv1").layer.compute_dtype == "float16"
    assert all(w.dtype == "float32" for w in km.weights)
    before = _weights_by_layer(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # "slow on CPU"
        history = training.train(model, RectDataset(4), RectDataset(2), 0.02,
                                 1, "all")
    optimizer = model.trainer.optimizer
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(optimizer.inner_optimizer, training.MomentumSGD)
    for name in ("loss",) + training.LOSS_NAMES:
        assert np.isfinite(history.history[name][0]), name
    scale = float(optimizer.dynamic_scale.numpy())
    good = int(optimizer.step_counter.numpy())
    halvings = int(round(np.log2(optimizer.initial_scale / scale)))
    assert scale <= optimizer.initial_scale and halvings >= 0
    # no overflow: `steps` good steps counted; else the counter restarted
    assert (halvings == 0 and good == steps) or (halvings > 0 and good < steps)
    after = _weights_by_layer(model)
    if good:
        for name in ("conv1", "rpn_conv_shared", "mrcnn_class_logits"):
            assert any(not np.array_equal(b, a) for b, a in
                       zip(before[name], after[name])), name
