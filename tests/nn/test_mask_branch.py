"""The mask branch: positive-RoI sampling in training, detection masks in inference.

Tiny tensors: B = 3 images of 64 x 64, T = 6 RoI slots, P = 3 positive
slots, C = 8 feature channels, S = 4 (RoIAlign side), NC = 4 classes, and a
three-layer mask head (conv, deconv, sigmoid conv) in place of the real one.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers as KL

from mrcnn.core.image_meta import compose_image_meta
from mrcnn.nn.heads import RoiDistributed
from mrcnn.nn.losses import MrcnnMaskLoss
from mrcnn.nn.mask_branch import (DetectionBoxes, GatherPositives,
                                  LeadingDetections, LeadingRois, PadRois,
                                  ScatterPositives, inference_mask_branch,
                                  positive_slot_count, training_mask_branch)
from mrcnn.nn.roi_align import PyramidROIAlign

B, T, P, C, S, NC, SIDE = 3, 6, 3, 8, 4, 4, 64
LEVELS = [SIDE // 4, SIDE // 8, SIDE // 16, SIDE // 32]   # P2..P5

# Positives first in their slots (DetectionTargetLayer's order); image 1
# has none, image 0 has two, image 2 one.
CLASS_IDS = np.array([[2, 1, 0, 0, 0, 0],
                      [0, 0, 0, 0, 0, 0],
                      [3, 0, 0, 0, 0, 0]], np.int32)


def tiny_head(x, num_classes, train_bn=True):
    """[B', N', S, S, C] -> [B', N', 2S, 2S, num_classes] sigmoid."""
    x = RoiDistributed(KL.Conv2D(6, (3, 3), padding="same", activation="relu"),
                       name="tiny_conv")(x)
    x = RoiDistributed(KL.Conv2DTranspose(6, (2, 2), strides=2,
                                          activation="relu"),
                       name="tiny_deconv")(x)
    return RoiDistributed(KL.Conv2D(num_classes, (1, 1), activation="sigmoid"),
                          name="tiny_mask")(x)


class RecordingHead:
    """tiny_head that keeps the tensor it was called on (what reached it)."""

    def __init__(self):
        self.seen = None

    def __call__(self, x, num_classes, train_bn=True):
        self.seen = x
        return tiny_head(x, num_classes, train_bn=train_bn)


def _meta(batch):
    row = compose_image_meta(0, (SIDE, SIDE, 3), (SIDE, SIDE, 3),
                             (0, 0, SIDE, SIDE), 1.0, np.ones(NC))
    return np.tile(row[None].astype(np.float32), (batch, 1))


def _feature_inputs():
    return [KL.Input(shape=[h, h, C], name="p{}".format(i + 2))
            for i, h in enumerate(LEVELS)]


def _feature_values(batch, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(batch, h, h, C)).astype(np.float32)
            for h in LEVELS]


def _distinct_rois():
    """[B, T, 4] normalized boxes, every one different (sizes span levels)."""
    rng = np.random.default_rng(1)
    y1x1 = rng.uniform(0.0, 0.5, (B, T, 2))
    hw = rng.uniform(0.1, 0.5, (B, T, 2))
    return np.concatenate([y1x1, y1x1 + hw], axis=-1).astype(np.float32)


def _training_branch():
    """A Keras model around training_mask_branch, and the head's record."""
    head = RecordingHead()
    rois = KL.Input(shape=[T, 4], name="rois")
    class_ids = KL.Input(shape=[T], name="class_ids", dtype="int32")
    targets = KL.Input(shape=[T, 2 * S, 2 * S], name="targets")
    meta = KL.Input(shape=[_meta(1).shape[1]], name="meta")
    features = _feature_inputs()
    ids, mask_targets, masks = training_mask_branch(
        rois, class_ids, targets, features, meta, P, S, NC, mask_head=head,
        train_bn=False)
    model = keras.Model([rois, class_ids, targets, meta] + features,
                        [ids, mask_targets, masks, head.seen])
    return model


def _training_feeds(class_ids=CLASS_IDS, seed=0):
    rng = np.random.default_rng(seed + 10)
    targets = (rng.uniform(size=(B, T, 2 * S, 2 * S)) > 0.5).astype(np.float32)
    targets[class_ids == 0] = 0.0
    return [_distinct_rois(), class_ids, targets, _meta(B)] + \
        _feature_values(B, seed)


def _head_layers(model):
    return [model.get_layer(n) for n in ("tiny_conv", "tiny_deconv", "tiny_mask")]


def _run_head(layers, x):
    for layer in layers:
        x = layer(x)
    return x


def test_positive_slot_count_is_the_sampler_bound_at_least_one():
    assert positive_slot_count(32, 0.33) == 10
    assert positive_slot_count(200, 0.33) == 66
    assert positive_slot_count(6, 0.5) == 3
    # Fewer RoIs than one positive: still one slot, so the head has a shape.
    assert positive_slot_count(2, 0.1) == 1


def test_leading_rois_keep_the_first_slots_and_round_trip():
    x = np.arange(B * T * 2, dtype=np.float32).reshape(B, T, 2)
    layer = LeadingRois(P)
    kept_x, kept_ids = layer([x, CLASS_IDS])
    np.testing.assert_array_equal(kept_x.numpy(), x[:, :P])
    np.testing.assert_array_equal(kept_ids.numpy(), CLASS_IDS[:, :P])
    assert LeadingRois.from_config(layer.get_config()).count == P


def test_gather_then_scatter_puts_each_row_back_in_its_slot():
    ids = CLASS_IDS[:, :P]
    x = np.arange(B * P * 2, dtype=np.float32).reshape(B, P, 2) + 1
    packed = GatherPositives()([x, ids]).numpy()
    # Positives in (image, slot) order, then one zero row.
    np.testing.assert_array_equal(packed[0], [x[0, 0], x[0, 1], x[2, 0], [0, 0]])
    # A row-wise change before scattering shows up at its own slot only.
    rows = packed * 10
    back = ScatterPositives()([rows, ids]).numpy()
    assert back.shape == (B, P, 2)
    np.testing.assert_array_equal(back[ids > 0], x[ids > 0] * 10)
    assert np.all(back[ids == 0] == 0)


def test_no_positive_in_the_batch_gives_one_zero_row_and_zero_masks():
    ids = np.zeros((B, P), np.int32)
    x = np.ones((B, P, 2, 2), np.float32)
    packed = GatherPositives()([x, ids])
    assert packed.shape == (1, 1, 2, 2) and np.all(packed.numpy() == 0)
    back = ScatterPositives()([packed + 5.0, ids])
    assert back.shape == (B, P, 2, 2) and np.all(back.numpy() == 0)


def test_scatter_gradient_reaches_positive_rows_only():
    ids = tf.constant(CLASS_IDS[:, :P])
    rows = tf.Variable(np.ones((1, 4, 2), np.float32))   # M = 3 positives + 1
    weights = tf.constant(np.arange(B * P * 2, dtype=np.float32).reshape(B, P, 2))
    with tf.GradientTape() as tape:
        out = ScatterPositives()([rows, ids])
        total = tf.reduce_sum(out * weights)
    grad = tape.gradient(total, rows).numpy()[0]
    np.testing.assert_array_equal(grad[:3], weights.numpy()[CLASS_IDS[:, :P] > 0])
    assert np.all(grad[3] == 0)     # the padding row gets nothing


def test_training_branch_shapes_and_only_positives_reach_the_head():
    model = _training_branch()
    feeds = _training_feeds()
    ids, mask_targets, masks, head_input = [o.numpy() for o in model(feeds)]
    assert ids.shape == (B, P) and mask_targets.shape == (B, P, 2 * S, 2 * S)
    assert masks.shape == (B, P, 2 * S, 2 * S, NC) and masks.dtype == np.float32
    np.testing.assert_array_equal(ids, CLASS_IDS[:, :P])
    np.testing.assert_array_equal(mask_targets, feeds[2][:, :P])
    # The head saw the 3 positive RoIs' features and one zero row, nothing else.
    positive = CLASS_IDS > 0
    assert head_input.shape == (1, positive.sum() + 1, S, S, C)
    align = PyramidROIAlign([S, S])
    ref = align([feeds[0], feeds[3]] + feeds[4:]).numpy()     # [B, T, S, S, C]
    np.testing.assert_allclose(head_input[0, :-1], ref[positive],
                               rtol=1e-6, atol=1e-6)
    assert np.all(head_input[0, -1] == 0)


def test_training_branch_scatters_each_mask_at_its_roi():
    model = _training_branch()
    feeds = _training_feeds()
    _, _, masks, _ = [o.numpy() for o in model(feeds)]
    align = PyramidROIAlign([S, S])
    features = align([feeds[0][:, :P], feeds[3]] + feeds[4:])  # [B, P, S, S, C]
    ref = _run_head(_head_layers(model), features).numpy()    # every slot
    positive = CLASS_IDS[:, :P] > 0
    np.testing.assert_allclose(masks[positive], ref[positive],
                               rtol=1e-5, atol=1e-6)
    assert np.all(masks[~positive] == 0)
    # The boxes differ, so a mask in the wrong slot could not match.
    assert not np.allclose(ref[0, 0], ref[0, 1])


def test_training_branch_loss_and_gradients_equal_the_head_on_every_slot():
    model = _training_branch()
    feeds = _training_feeds()
    head = _head_layers(model)
    head_vars = [v for layer in head for v in layer.trainable_variables]
    maps = [tf.Variable(f) for f in feeds[4:]]
    fixed = [tf.constant(f) for f in feeds[:4]]
    align = PyramidROIAlign([S, S])
    with tf.GradientTape(persistent=True) as tape:
        ids, targets, masks, _ = model(fixed + maps)
        loss = MrcnnMaskLoss()([targets, ids, masks])
        dense = _run_head(head, align([fixed[0][:, :P], fixed[3]] + maps))
        ref_loss = MrcnnMaskLoss()([targets, ids, dense])
    assert float(loss) > 0
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-6)
    sources = head_vars + maps
    grads = tape.gradient(loss, sources)
    ref_grads = tape.gradient(ref_loss, sources)
    for v, g, r in zip(sources, grads, ref_grads):
        g, r = tf.convert_to_tensor(g).numpy(), tf.convert_to_tensor(r).numpy()
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-6 * np.abs(r).max())
    # Gradients reach every weight of the head and, through RoIAlign, the
    # features (here all boxes are small: they pool from P2).
    size = [np.abs(tf.convert_to_tensor(g).numpy()).max() for g in grads]
    assert min(size[:len(head_vars)]) > 0 and size[len(head_vars)] > 0


def test_training_branch_without_positives_gives_zero_masks_and_loss():
    model = _training_branch()
    feeds = _training_feeds(class_ids=np.zeros((B, T), np.int32))
    with tf.GradientTape() as tape:
        ids, targets, masks, head_input = model(feeds)
        loss = MrcnnMaskLoss()([targets, ids, masks])
    assert head_input.shape[:2] == (1, 1)
    assert np.all(masks.numpy() == 0) and float(loss) == 0.0
    for g in tape.gradient(loss, model.trainable_variables):
        assert g is None or np.all(tf.convert_to_tensor(g).numpy() == 0)


def test_training_branch_layer_names_are_matterports():
    model = _training_branch()
    names = {layer.name for layer in model.layers}
    assert {"positive_rois", "roi_align_mask", "gather_positives",
            "scatter_positives"} <= names
    assert model.get_layer("positive_rois").count == P
    assert model.get_layer("scatter_positives").dtype_policy.name == "float32"
    # With the default mask head (heads.fpn_mask_head): its layers, in
    # Matterport's names, on the positives' [1, M + 1, 14, 14, C] features.
    rois = KL.Input(shape=[T, 4])
    ids = KL.Input(shape=[T], dtype="int32")
    targets = KL.Input(shape=[T, 28, 28])
    meta = KL.Input(shape=[_meta(1).shape[1]])
    features = _feature_inputs()
    _, _, masks = training_mask_branch(rois, ids, targets, features, meta,
                                       P, 14, NC)
    assert tuple(masks.shape) == (None, P, 28, 28, NC)
    real = keras.Model([rois, ids, targets, meta] + features, masks)
    names = {layer.name for layer in real.layers}
    assert {"mrcnn_mask_conv{}".format(i) for i in range(1, 5)} | \
        {"mrcnn_mask_deconv", "mrcnn_mask"} <= names


def test_detection_boxes_trim_to_longest_valid_list_and_pad_back():
    det = np.zeros((2, 5, 6), np.float32)
    det[0, :2] = [[0.1, 0.1, 0.4, 0.4, 3, 0.9], [0.2, 0.2, 0.5, 0.5, 1, 0.8]]
    det[1, :1] = [[0.3, 0.3, 0.6, 0.6, 2, 0.7]]
    boxes = DetectionBoxes()(det).numpy()
    assert boxes.shape == (2, 2, 4)
    np.testing.assert_array_equal(boxes, det[:, :2, :4])
    # No detection anywhere: one (padding) column so the mask head has a shape.
    assert DetectionBoxes()(np.zeros((3, 5, 6), np.float32)).shape == (3, 1, 4)
    # trim=False (the mask branch with static crops): all D slots
    untrimmed = DetectionBoxes(trim=False)
    np.testing.assert_array_equal(untrimmed(det).numpy(), det[..., :4])
    assert DetectionBoxes.from_config(untrimmed.get_config()).trim is False
    assert "trim" not in DetectionBoxes().get_config()

    x = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3) + 1
    pad = PadRois(5)
    y = pad(x).numpy()
    assert y.shape == (2, 5, 3)
    np.testing.assert_array_equal(y[:, :2], x)
    assert np.all(y[:, 2:] == 0)
    assert PadRois.from_config(pad.get_config()).count == 5


@pytest.mark.parametrize("static_crops", [False, True])
@pytest.mark.parametrize("valid", [(2, 1), (0, 0)])
def test_inference_branch_runs_the_head_on_the_detections_only(valid, static_crops):
    D = 5
    head = RecordingHead()
    detections_in = KL.Input(shape=[D, 6], name="detections")
    meta = KL.Input(shape=[_meta(1).shape[1]], name="meta")
    features = _feature_inputs()
    masks = inference_mask_branch(detections_in, features, meta, S, D, NC,
                                  mask_head=head, train_bn=False,
                                  static_crops=static_crops)
    model = keras.Model([detections_in, meta] + features, [masks, head.seen])
    names = {layer.name for layer in model.layers}
    assert {"detection_boxes", "roi_align_mask", "mrcnn_mask_padded"} <= names
    # static crops: all D slots cropped, the leading ones kept for the head
    assert model.get_layer("roi_align_mask").crop_every_level == static_crops
    assert ("leading_detection_crops" in names) == static_crops

    boxes = _distinct_rois()[:2, :D]
    det = np.zeros((2, D, 6), np.float32)
    for i, n in enumerate(valid):
        det[i, :n, :4] = boxes[i, :n]
        det[i, :n, 4] = i + 1
        det[i, :n, 5] = 0.9
    feeds = [det, _meta(2)] + _feature_values(2)
    masks, head_input = [o.numpy() for o in model(feeds)]
    n = max(max(valid), 1)
    assert masks.shape == (2, D, 2 * S, 2 * S, NC)
    assert head_input.shape == (2, n, S, S, C)
    # Rows past the batch's longest list are padding; the others are the
    # head's masks of their own detection's box.
    assert np.all(masks[:, n:] == 0)
    align = PyramidROIAlign([S, S])
    ref = _run_head(_head_layers(model),
                    align([det[:, :n, :4], feeds[1]] + feeds[2:])).numpy()
    np.testing.assert_allclose(masks[:, :n], ref, rtol=1e-5, atol=1e-6)


def test_mask_branch_layers_round_trip_their_config():
    for layer in (GatherPositives(name="g"), ScatterPositives(name="s"),
                  DetectionBoxes(name="d"), LeadingDetections(name="l")):
        clone = type(layer).from_config(layer.get_config())
        assert clone.name == layer.name and not clone.weights


@pytest.mark.parametrize("cls", [LeadingRois, GatherPositives, ScatterPositives,
                                 DetectionBoxes, PadRois])
def test_configs_saved_when_the_layers_lived_in_graph_py_still_load(cls):
    """.keras files and SavedModels written before the move name the module
    mrcnn.nn.graph; the registered name "mrcnn>Class" finds the class."""
    layer = cls(2) if cls in (LeadingRois, PadRois) else cls()
    config = keras.saving.serialize_keras_object(layer)
    assert config["registered_name"] == "mrcnn>" + cls.__name__
    config["module"] = "mrcnn.nn.graph"
    assert type(keras.saving.deserialize_keras_object(config)) is cls
