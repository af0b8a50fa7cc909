"""Losses against hand-computed values; zero (not NaN) when nothing is positive."""
import math

import numpy as np
import pytest
import tensorflow as tf

from mrcnn.nn import losses as L


def _ce(logits, label):
    logits = np.asarray(logits, np.float64)
    return -(logits[label] - np.log(np.exp(logits).sum()))


def test_smooth_l1_golden():
    y = L.smooth_l1_loss(tf.constant([0.0, 0.0, 0.0]), tf.constant([0.5, -2.0, 1.0]))
    np.testing.assert_allclose(y.numpy(), [0.125, 1.5, 0.5], rtol=1e-6)


def test_rpn_class_loss_golden():
    rpn_match = np.array([[[1], [-1], [0]], [[0], [0], [-1]]], np.int32)
    logits = np.array([[[0., 2.], [1., 0.], [5., -5.]],
                       [[0., 0.], [3., 3.], [0.5, 1.5]]], np.float32)
    expected = np.mean([_ce([0, 2], 1), _ce([1, 0], 0), _ce([0.5, 1.5], 0)])
    got = L.rpn_class_loss_graph(rpn_match, logits)
    assert got.dtype == tf.float32 and got.shape == ()
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_rpn_class_loss_all_neutral_is_zero():
    got = L.rpn_class_loss_graph(np.zeros((2, 4, 1), np.int32),
                                 np.ones((2, 4, 2), np.float32))
    assert got.numpy() == 0.0


def test_rpn_bbox_loss_matches_batch_pack():
    # Image 0: positives at anchors 1 and 3 -> target rows 0, 1.
    # Image 1: positive at anchor 0 -> target row 0.
    rpn_match = np.array([[[0], [1], [-1], [1]], [[1], [0], [0], [-1]]], np.int32)
    target = np.zeros((2, 3, 4), np.float32)
    target[0, 0] = [0.1, 0.2, 0.3, 0.4]
    target[0, 1] = [1.0, 0.0, 0.0, 0.0]
    target[1, 0] = [0.0, 0.0, 3.0, 0.0]
    pred = np.zeros((2, 4, 4), np.float32)
    pred[0, 1] = [0.1, 0.2, 0.3, 0.4]   # exact -> 0
    pred[0, 3] = [0.5, 0.0, 0.0, 0.0]   # |d| = 0.5 -> 0.125
    pred[1, 0] = [0.0, 0.0, 1.0, 0.0]   # |d| = 2 -> 1.5
    pred[0, 2] = [9, 9, 9, 9]           # negative anchor: ignored
    expected = (0.125 + 1.5) / 12.0
    got = L.rpn_bbox_loss_graph(None, target, rpn_match, pred)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


def test_rpn_bbox_loss_no_positive_is_zero():
    rpn_match = -np.ones((2, 4, 1), np.int32)
    got = L.rpn_bbox_loss_graph(None, np.zeros((2, 3, 4), np.float32), rpn_match,
                                np.ones((2, 4, 4), np.float32))
    assert got.numpy() == 0.0 and not math.isnan(got.numpy())


def test_mrcnn_class_loss_golden_with_inactive_classes():
    target = np.array([[1, 0], [2, 0]], np.int32)
    logits = np.array([[[0., 3., 0.], [2., 0., 0.]],
                       [[0., 0., 1.], [0., 0., 4.]]], np.float32)
    # Image 1 has class 2 inactive: its two RoIs predict class 2 -> ignored.
    active = np.array([[1, 1, 1], [1, 1, 0]], np.float32)
    expected = (_ce([0, 3, 0], 1) + _ce([2, 0, 0], 0)) / 2.0
    got = L.mrcnn_class_loss_graph(target, logits, active)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_mrcnn_class_loss_nothing_active_is_zero():
    got = L.mrcnn_class_loss_graph(np.zeros((1, 2), np.int32),
                                   np.zeros((1, 2, 3), np.float32),
                                   np.zeros((1, 3), np.float32))
    assert got.numpy() == 0.0


def test_mrcnn_bbox_loss_uses_true_class_deltas():
    target_ids = np.array([[2, 0], [0, 1]], np.int32)
    target_bbox = np.zeros((2, 2, 4), np.float32)
    target_bbox[0, 0] = [1, 0, 0, 0]
    pred = np.full((2, 2, 3, 4), 7.0, np.float32)  # wrong classes: large
    pred[0, 0, 2] = [0.5, 0, 0, 0]   # 0.125
    pred[1, 1, 1] = [0, 0, 0, -3]    # |d| = 3 -> 2.5
    expected = (0.125 + 2.5) / 8.0
    got = L.mrcnn_bbox_loss_graph(target_bbox, target_ids, pred)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


def test_mrcnn_bbox_and_mask_loss_no_positive_is_zero():
    ids = np.zeros((2, 3), np.int32)
    b = L.mrcnn_bbox_loss_graph(np.ones((2, 3, 4), np.float32), ids,
                                np.zeros((2, 3, 4, 4), np.float32))
    m = L.mrcnn_mask_loss_graph(np.ones((2, 3, 4, 4), np.float32), ids,
                                np.full((2, 3, 4, 4, 4), 0.5, np.float32))
    assert b.numpy() == 0.0 and m.numpy() == 0.0


def test_mrcnn_mask_loss_only_gt_channel_of_positives():
    ids = np.array([[0, 2]], np.int32)
    tm = np.zeros((1, 2, 2, 2), np.float32)
    tm[0, 1] = [[1, 0], [1, 1]]
    pm = np.full((1, 2, 2, 2, 3), 0.01, np.float32)  # other channels: bad
    pm[0, 1, :, :, 2] = [[0.8, 0.4], [0.5, 1.0]]
    expected = -np.mean([np.log(0.8), np.log(0.6), np.log(0.5), np.log(1 - 1e-7)])
    got = L.mrcnn_mask_loss_graph(tm, ids, pm)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_losses_float32_from_bfloat16_inputs():
    logits = tf.cast(tf.constant([[[0., 2.]]]), tf.bfloat16)
    got = L.rpn_class_loss_graph(np.array([[[1]]]), logits)
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got.numpy(), _ce([0, 2], 1), rtol=1e-5)


@pytest.mark.parametrize("cls,name", [
    (L.RpnClassLoss, "rpn_class_loss"), (L.RpnBboxLoss, "rpn_bbox_loss"),
    (L.MrcnnClassLoss, "mrcnn_class_loss"), (L.MrcnnBboxLoss, "mrcnn_bbox_loss"),
    (L.MrcnnMaskLoss, "mrcnn_mask_loss")])
def test_loss_layer_names_and_config_round_trip(cls, name):
    layer = cls()
    assert layer.name == name
    clone = cls.from_config(layer.get_config())
    assert clone.name == name and clone.dtype_policy.name == "float32"


def test_loss_layer_matches_function():
    rpn_match = np.array([[[1], [-1]]], np.int32)
    logits = np.array([[[0., 2.], [1., 0.]]], np.float32)
    np.testing.assert_allclose(
        L.RpnClassLoss()([rpn_match, logits]).numpy(),
        L.rpn_class_loss_graph(rpn_match, logits).numpy())
