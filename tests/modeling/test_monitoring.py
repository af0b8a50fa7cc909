"""Tests of mrcnn.modeling.monitoring: the TensorBoard event files of a
6-step run (2 epochs of 3 steps, a point every 2 steps), evaluation during
training against utils.compute_ap, the best checkpoint, and the gradient
norm of the clipping step. Tiny 64 px model, batch 1."""
import glob
import json
import os

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import RectDataset, make_detecting, make_tiny_config

STEPS, EPOCHS, EVERY, EVAL_IMAGES = 3, 2, 2, 3
LOSSES = ("loss", "rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss",
          "mrcnn_bbox_loss", "mrcnn_mask_loss")


class NamedRects(RectDataset):
    """RectDataset with the class names and infos of a prepared Dataset
    (what the COCO ground truth and the per-class table read)."""
    class_names = ["BG", "red", "blue"]
    class_info = [{"source": "", "id": 0, "name": "BG"},
                  {"source": "rects", "id": 1, "name": "red"},
                  {"source": "rects", "id": 2, "name": "blue"}]


class BigRects(NamedRects):
    """One large class-1 rectangle per image, at a varying place."""

    def __init__(self, n, seed=0):
        super().__init__(n, seed)
        rng = np.random.RandomState(seed)
        self.specs = [[(1,) + tuple(int(v) for v in
                                    rng.randint(2, 8, 2)) + (58, 58)]
                      for _ in range(n)]


def _whole_image_detector(keras_model):
    """In place: every RPN proposal grows to the whole image (box deltas
    log(h), log(w) of +20 * 0.2, clipped to the window), so NMS keeps one;
    with make_detecting it becomes one class-1 detection whose mask is the
    whole box (mask logits +10). Its mask IoU with a BigRects rectangle is
    >= 0.6. The one other RoI (POST_NMS_ROIS_INFERENCE = 2) is zero padding
    that scores the same, a false positive: the mAP is 1 or 0.5, no trivial
    0."""
    make_detecting(keras_model)
    layer = keras_model.get_layer("mrcnn_mask")
    kernel, bias = layer.get_weights()
    layer.set_weights([np.zeros_like(kernel), np.full_like(bias, 10.0)])
    layer = keras_model.get_layer("rpn_model").get_layer("rpn_bbox_pred")
    kernel, bias = layer.get_weights()
    layer.set_weights([np.zeros_like(kernel),
                       np.tile([0.0, 0.0, 20.0, 20.0], bias.size // 4)
                       .astype(bias.dtype)])


def tiny(**overrides):
    attrs = dict(IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64, IMAGES_PER_GPU=1,
                 NUM_CLASSES=3, RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128),
                 STEPS_PER_EPOCH=STEPS, VALIDATION_STEPS=1,
                 TRAIN_ROIS_PER_IMAGE=16, POST_NMS_ROIS_TRAINING=64,
                 PRE_NMS_LIMIT=256, RPN_TRAIN_ANCHORS_PER_IMAGE=32,
                 FPN_CLASSIF_FC_LAYERS_SIZE=64, TOP_DOWN_PYRAMID_SIZE=64,
                 MINI_MASK_SHAPE=(16, 16), MAX_GT_INSTANCES=4,
                 POST_NMS_ROIS_INFERENCE=2, DETECTION_MAX_INSTANCES=2,
                 LOG_EVERY_N_STEPS=EVERY, LOG_IMAGES=1)
    attrs.update(overrides)
    return make_tiny_config(**attrs)


class Recorder(keras.callbacks.Callback):
    """Keeps the logs Keras gives each training step (running means)."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append((batch, {k: float(np.asarray(v))
                                   for k, v in (logs or {}).items()}))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    model_dir = str(tmp_path_factory.mktemp("logs"))
    model = MaskRCNN("training", tiny(), model_dir)
    # One detection covering each image from the start, kept by a small
    # learning rate.
    _whole_image_detector(model.keras_model)
    recorder = Recorder()
    val = BigRects(5, seed=1)
    history = model.train(NamedRects(6), val, 1e-4, EPOCHS, "heads",
                          custom_callbacks=[recorder], eval_every=1,
                          eval_images=EVAL_IMAGES)
    return model, history, recorder, val


def _events(folder):
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    acc = EventAccumulator(folder, size_guidance={"tensors": 0})
    acc.Reload()
    return {tag: [(e.step, tf.make_ndarray(e.tensor_proto))
                  for e in acc.Tensors(tag)]
            for tag in acc.Tags()["tensors"]}


def test_event_files_hold_the_step_and_epoch_scalars(run):
    model, _, _, _ = run
    train = _events(os.path.join(model.log_dir, "train"))
    step_tags = {"step/" + n for n in LOSSES + (
        "grad_norm", "learning_rate", "data_wait", "steps_per_second")}
    epoch_tags = {"epoch/" + n for n in LOSSES + (
        "grad_norm", "learning_rate", "data_wait")}
    assert set(train) == step_tags | epoch_tags
    for tag in step_tags:
        assert [s for s, _ in train[tag]] == [2, 4, 6], tag
    for tag in epoch_tags:
        assert [s for s, _ in train[tag]] == [1, 2], tag
    for _, value in train["step/learning_rate"]:
        assert float(value) == pytest.approx(1e-4)
    for _, value in train["step/data_wait"]:
        assert 0.0 <= float(value) <= 1.0
    for _, value in train["step/steps_per_second"] + train["step/grad_norm"]:
        assert float(value) > 0

    val = _events(os.path.join(model.log_dir, "validation"))
    eval_tags = {"eval/mAP50", "eval/coco_bbox_AP", "eval/coco_bbox_AP50",
                 "eval/coco_segm_AP", "eval/coco_segm_AP50"}
    assert set(val) == {"epoch/" + n for n in LOSSES} | eval_tags | \
        {"predictions/0"}
    for tag in val:
        assert [s for s, _ in val[tag]] == [1, 2], tag
    # The image: a PNG of the first validation image with its detections.
    _, image = val["predictions/0"][-1]
    width, height, png = image[:3]
    assert (int(width), int(height)) == (64, 64)
    decoded = tf.io.decode_png(png).numpy()
    assert decoded.shape == (64, 64, 3)
    assert not np.array_equal(decoded, run[3].load_image(0))


def test_step_scalars_are_means_over_their_window(run):
    model, history, recorder, _ = run
    train = _events(os.path.join(model.log_dir, "train"))
    assert len(recorder.steps) == STEPS * EPOCHS
    for key in LOSSES + ("grad_norm",):
        # Each step's own value from Keras' running means of its epoch.
        values, prev = [], 0.0
        for batch, logs in recorder.steps:
            total = logs[key] * (batch + 1)
            values.append(total - (prev if batch else 0.0))
            prev = total
        expected = [np.mean(values[s - EVERY:s]) for s in (2, 4, 6)]
        got = [float(v) for _, v in train["step/" + key]]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6,
                                   err_msg=key)
        # Epoch points are the epoch means (History's values).
        np.testing.assert_allclose(
            [float(v) for _, v in train["epoch/" + key]],
            history.history[key], rtol=1e-6)
    val = _events(os.path.join(model.log_dir, "validation"))
    np.testing.assert_allclose([float(v) for _, v in val["epoch/loss"]],
                               history.history["val_loss"], rtol=1e-6)


def test_eval_map_is_utils_compute_ap_on_the_same_weights(run):
    from mrcnn import utils
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    model, history, _, val = run
    config = tiny(NAME="tiny")
    config.IMAGES_PER_GPU, config.BATCH_SIZE = 1, 1
    inference = MaskRCNN("inference", config, model.model_dir)
    aps = []
    for epoch in range(1, EPOCHS + 1):
        # The epoch's checkpoint holds the weights the callback evaluated.
        inference.load_weights(model.checkpoint_path.format(epoch=epoch))
        per_image = []
        for image_id in list(val.image_ids)[:EVAL_IMAGES]:
            r = inference.detect([val.load_image(image_id)])[0]
            gt_masks, gt_class_ids = val.load_mask(image_id)
            ap = utils.compute_ap(utils.extract_bboxes(gt_masks),
                                  gt_class_ids, gt_masks, r["rois"],
                                  r["class_ids"], r["scores"], r["masks"],
                                  iou_threshold=0.5)[0] \
                if len(r["scores"]) else 0.0
            per_image.append(ap)
        aps.append(float(np.mean(per_image)))
    np.testing.assert_allclose(history.history["eval_mAP50"], aps, atol=1e-6)
    assert min(aps) >= 0.5  # the whole-image detection hits the rectangle
    logged = _events(os.path.join(model.log_dir, "validation"))["eval/mAP50"]
    np.testing.assert_allclose([float(v) for _, v in logged], aps, atol=1e-6)
    for name in ("coco_bbox_AP", "coco_segm_AP50"):
        assert all(0.0 <= v <= 1.0 for v in history.history["eval_" + name])


def test_best_checkpoint_is_the_best_logged_epoch_and_loads(run):
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    model, history, _, _ = run
    best = model.find_best()
    assert best == os.path.join(model.log_dir, "mask_rcnn_tiny_best.h5")
    assert model.find_last() == model.checkpoint_path.format(epoch=EPOCHS)
    scores = history.history["eval_mAP50"]
    epoch = int(np.argmax(scores)) + 1   # the first of equal bests
    with open(os.path.join(model.log_dir, "mask_rcnn_tiny_best.json")) as f:
        record = json.load(f)
    assert record["metric"] == "mAP50" and record["epoch"] == epoch
    assert record["value"] == pytest.approx(max(scores))

    def arrays(path):
        out = {}
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                         if isinstance(obj, h5py.Dataset) else None)
            attrs = sorted(f.attrs)
        return out, attrs
    got, got_attrs = arrays(best)
    want, want_attrs = arrays(model.checkpoint_path.format(epoch=epoch))
    assert got_attrs == want_attrs and sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    fresh = MaskRCNN("training", tiny(), model.model_dir)
    fresh.load_weights(fresh.find_best())
    layer = "mrcnn_class_logits"
    for a, b in zip(fresh.keras_model.get_layer(layer).get_weights(),
                    [got["{0}/{0}/kernel:0".format(layer)],
                     got["{0}/{0}/bias:0".format(layer)]]):
        np.testing.assert_array_equal(a, b)
    # No temp file of the atomic writes is left behind.
    assert not glob.glob(os.path.join(model.log_dir, ".*"))


def test_bad_evaluation_arguments_fail_before_training(run):
    from mrcnn.config import ConfigError
    model, _, _, val = run
    for kwargs, match in [({"eval_every": 0}, "eval_every=0"),
                          ({"eval_every": 1, "eval_metric": "AP"},
                           "eval_metric='AP'"),
                          ({"eval_images": 2.5}, "eval_images=2.5"),
                          ({"log_every_n_steps": 0}, "log_every_n_steps=0")]:
        with pytest.raises(ConfigError, match=match):
            model.train(val, val, 1e-4, EPOCHS + 1, "heads", **kwargs)
    with pytest.raises(ConfigError, match="needs a val_dataset"):
        model.train(val, None, 1e-4, EPOCHS + 1, "heads", eval_every=1)


@pytest.mark.parametrize("strategy", [None, "one_device"])
def test_gradient_norm_is_the_clipping_steps_norm(strategy):
    """The fused path (no strategy) and Keras' path (under a strategy) both
    clip by the norm they record: g * clip / max(norm, clip)."""
    from mrcnn.modeling.training import MomentumSGD
    distribution = tf.distribute.OneDeviceStrategy("/cpu:0") \
        if strategy else tf.distribute.get_strategy()
    with distribution.scope():
        v = tf.Variable([1.0, 1.0])
        w = tf.Variable([2.0])
        opt = MomentumSGD(learning_rate=1.0, momentum=0.9,
                          global_clipnorm=1.0)
        opt.build([v, w])

    @tf.function
    def step():
        opt.apply_gradients([(tf.constant([3.0, 0.0]), v),
                             (tf.constant([4.0]), w)])
        return opt.gradient_norm()

    norm = distribution.run(step) if strategy else step()
    # Which path clipped: the fused kernel keeps the factor, Keras' does not.
    assert (opt._clip_factor is None) == bool(strategy)
    assert float(norm) == pytest.approx(5.0)
    np.testing.assert_allclose(v.numpy(), [1.0 - 0.6, 1.0], rtol=1e-6)
    np.testing.assert_allclose(w.numpy(), [2.0 - 0.8], rtol=1e-6)


def test_draw_detections_tints_masks_and_outlines_boxes():
    from mrcnn.modeling.monitoring import draw_detections
    image = np.zeros((20, 20, 3), np.uint8)
    masks = np.zeros((20, 20, 1), bool)
    masks[4:8, 4:8, 0] = True
    r = {"rois": np.array([[2, 2, 12, 12]]), "class_ids": np.array([1]),
         "masks": masks}
    out = draw_detections(image, r, alpha=0.5, thickness=1)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not image.any()                       # the input is unchanged
    edge = out[2, 6]
    assert edge.any() and (out[11, 6] == edge).all() and \
        (out[6, 2] == edge).all() and (out[6, 11] == edge).all()
    np.testing.assert_array_equal(out[5, 5], (edge * 0.5).astype(np.uint8))
    assert not out[9, 9].any() and not out[15, 15].any()   # inside / outside
    assert not out[12, 6].any()                  # y2 is exclusive
