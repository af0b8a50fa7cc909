"""Tests of mrcnn.data.targets: RPN labels/deltas and detection targets."""
import numpy as np
import pytest

from conftest import make_tiny_config
from mrcnn.data.targets import (build_detection_targets, build_rpn_targets,
                                generate_random_rois)


def _iou(a, b):
    """Naive IoU of two (y1, x1, y2, x2) boxes."""
    h = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    w = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = h * w
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def test_rpn_targets_hand_case():
    config = make_tiny_config(RPN_TRAIN_ANCHORS_PER_IMAGE=8)
    anchors = np.array([
        [0, 0, 10, 10],     # == gt0 -> IoU 1 -> positive
        [0, 0, 10, 12],     # IoU 10/12 = 0.83 -> positive
        [0, 0, 10, 20],     # IoU 0.5 -> neutral
        [50, 50, 60, 60],   # IoU 0 -> negative
        [40, 40, 60, 62],   # best anchor of gt1 (IoU 0.4 < 0.7) -> positive
        [40, 40, 80, 80],   # IoU with gt1 100/1600 -> negative
    ], np.float64)
    gt_boxes = np.array([[0, 0, 10, 10], [40, 40, 50, 60]], np.float64)
    gt_class_ids = np.array([1, 2], np.int32)
    match, bbox = build_rpn_targets((64, 64, 3), anchors, gt_class_ids,
                                    gt_boxes, config)
    assert match.dtype == np.int32 and match.shape == (6,)
    np.testing.assert_array_equal(match, [1, 1, 0, -1, 1, -1])
    assert bbox.shape == (8, 4) and bbox.dtype == np.float32
    # Row order = positive anchors in anchor order; hand-computed deltas.
    np.testing.assert_allclose(bbox[0], [0, 0, 0, 0], atol=1e-6)
    # anchor 1 (h 10, w 12, centre (5, 6)) -> gt0 (centre (5, 5), w 10)
    np.testing.assert_allclose(
        bbox[1], np.array([0, -1 / 12, 0, np.log(10 / 12)]) / [.1, .1, .2, .2],
        rtol=1e-5)
    # anchor 4 (h 20, w 22, centre (50, 51)) -> gt1 (h 10, w 20, c (45, 50))
    np.testing.assert_allclose(
        bbox[2], np.array([-5 / 20, -1 / 22, np.log(10 / 20), np.log(20 / 22)])
        / [.1, .1, .2, .2], rtol=1e-5)
    np.testing.assert_array_equal(bbox[3:], 0)


def test_rpn_targets_balance_and_naive_labels():
    rng = np.random.RandomState(1)
    config = make_tiny_config(RPN_TRAIN_ANCHORS_PER_IMAGE=32)
    yx = rng.uniform(0, 100, (400, 2))
    hw = rng.uniform(5, 40, (400, 2))
    anchors = np.concatenate([yx, yx + hw], axis=1)
    gt_boxes = np.array([[10, 10, 40, 50], [60, 20, 90, 45], [5, 60, 30, 95]],
                        np.float64)
    # Many anchors exactly on the gt boxes -> more positives than allowed.
    anchors = np.concatenate([anchors, np.repeat(gt_boxes, 10, axis=0)])
    gt_class_ids = np.array([1, 2, 3], np.int32)
    match, bbox = build_rpn_targets((128, 128, 3), anchors, gt_class_ids,
                                    gt_boxes, config)
    iou = np.array([[_iou(a, g) for g in gt_boxes] for a in anchors])
    best = iou.max(axis=1)
    assert (match == 1).sum() == 16          # capped at half
    assert (match == -1).sum() == 16         # fill to 32
    assert np.all(best[match == -1] < 0.3)
    # Positives are only chosen among naive positives (>= 0.7 or best of gt).
    naive_pos = (best >= 0.7) | np.any(iou == iou.max(axis=0), axis=1)
    assert np.all(naive_pos[match == 1])
    assert np.count_nonzero(np.any(bbox != 0, axis=1)) <= 16


def test_rpn_targets_best_anchor_rule_and_few_positives():
    config = make_tiny_config(RPN_TRAIN_ANCHORS_PER_IMAGE=10)
    anchors = np.array([[0, 0, 10, 10], [0, 0, 30, 30], [100, 100, 110, 110],
                        [90, 90, 120, 120]], np.float64)
    gt_boxes = np.array([[0, 0, 20, 20]], np.float64)   # best IoU 0.44
    match, _ = build_rpn_targets((128, 128, 3), anchors, np.array([1]),
                                 gt_boxes, config)
    np.testing.assert_array_equal(match, [-1, 1, -1, -1])


def test_rpn_targets_crowd():
    config = make_tiny_config(RPN_TRAIN_ANCHORS_PER_IMAGE=10)
    anchors = np.array([[0, 0, 10, 10],      # positive (gt)
                        [60, 60, 70, 70],    # inside the crowd -> not negative
                        [100, 100, 110, 110]],  # far -> negative
                       np.float64)
    gt_boxes = np.array([[0, 0, 10, 10], [50, 50, 80, 80]], np.float64)
    gt_class_ids = np.array([1, -1], np.int32)
    match, bbox = build_rpn_targets((128, 128, 3), anchors, gt_class_ids,
                                    gt_boxes, config)
    np.testing.assert_array_equal(match, [1, 0, -1])
    # The crowd box is never a regression target.
    np.testing.assert_allclose(bbox[0], 0, atol=1e-6)
    # Only crowds: no positives, background away from the crowd.
    match, _ = build_rpn_targets((128, 128, 3), anchors, np.array([-1]),
                                 gt_boxes[1:], config)
    np.testing.assert_array_equal(match, [-1, 0, -1])


def test_rpn_targets_vectorised_speed():
    import time
    from mrcnn.data.pipeline import training_anchors
    config = make_tiny_config(IMAGE_MIN_DIM=512, IMAGE_MAX_DIM=512,
                              RPN_TRAIN_ANCHORS_PER_IMAGE=256)
    anchors = training_anchors(config)
    gt = np.array([[10, 10, 100, 120], [200, 200, 300, 260]] * 10, np.float64)
    start = time.perf_counter()
    build_rpn_targets((512, 512, 3), anchors, np.ones(20, np.int32), gt, config)
    assert time.perf_counter() - start < 1.0, anchors.shape


def test_detection_targets_shapes_and_values():
    config = make_tiny_config(TRAIN_ROIS_PER_IMAGE=8, ROI_POSITIVE_RATIO=0.5,
                              USE_MINI_MASK=False, NUM_CLASSES=3)
    gt_boxes = np.array([[10, 10, 50, 50]], np.int32)
    gt_class_ids = np.array([2], np.int32)
    gt_masks = np.zeros((128, 128, 1), bool)
    gt_masks[10:50, 10:30, 0] = True         # left half of the box
    rois = np.array([[10, 10, 50, 50], [100, 100, 120, 120],
                     [0, 0, 5, 5]], np.int32)
    r, c, b, m = build_detection_targets(rois, gt_class_ids, gt_boxes,
                                         gt_masks, config)
    assert r.shape == (8, 4) and c.shape == (8,) and b.shape == (8, 3, 4)
    assert m.shape == (8, 28, 28, 3)
    assert c[0] == 2 and np.all(c[1:] == 0)
    np.testing.assert_array_equal(r[0], [10, 10, 50, 50])
    np.testing.assert_allclose(b[0, 2], 0, atol=1e-6)
    # Mask of the positive RoI: left half on, right half off.
    assert m[0, :, :12, 2].min() > 0.5 and m[0, :, 16:, 2].max() < 0.5
    assert np.all(m[1:] == 0)


def test_random_rois_within_image():
    rois = generate_random_rois((64, 80, 3), 50, np.array([1, 2]),
                                np.array([[10, 10, 30, 30], [40, 50, 60, 70]]))
    assert rois.shape == (50, 4) and rois.dtype == np.int32
    assert np.all(rois[:, 2] > rois[:, 0]) and np.all(rois[:, 3] > rois[:, 1])
    assert rois[:, [0, 2]].max() <= 64 and rois[:, [1, 3]].max() <= 80
