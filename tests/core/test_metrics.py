"""Tests of mrcnn/core/metrics.py against hand-computed AP values."""
import numpy as np
import pytest

from mrcnn.core.boxes import extract_bboxes
from mrcnn.core.metrics import (compute_ap, compute_ap_range, compute_matches,
                                compute_recall)


def masks_from_slices(shape, slices):
    masks = np.zeros(shape + (len(slices),), bool)
    for i, (ys, xs) in enumerate(slices):
        masks[ys, xs, i] = True
    return masks


GT_SLICES = [(slice(0, 10), slice(0, 10)), (slice(20, 30), slice(20, 35))]


def gt_instances():
    masks = masks_from_slices((40, 40), GT_SLICES)
    return extract_bboxes(masks), np.array([1, 2], np.int32), masks


def test_ap_is_one_when_predictions_equal_ground_truth():
    boxes, class_ids, masks = gt_instances()
    ap, precisions, recalls, overlaps = compute_ap(
        boxes, class_ids, masks, boxes, class_ids, np.array([0.9, 0.8]), masks)
    assert ap == pytest.approx(1.0)
    np.testing.assert_allclose(np.diag(overlaps), 1.0)
    assert precisions.shape == recalls.shape == (4,)


def test_ap_is_zero_when_disjoint_or_wrong_class():
    boxes, class_ids, masks = gt_instances()
    far = masks_from_slices((40, 40), [(slice(30, 40), slice(0, 10))])
    ap, *_ = compute_ap(boxes, class_ids, masks, extract_bboxes(far), np.array([1]),
                        np.array([0.9]), far)
    assert ap == 0.0
    ap, *_ = compute_ap(boxes, class_ids, masks, boxes, np.array([2, 1]),
                        np.array([0.9, 0.8]), masks)
    assert ap == 0.0


def test_ap_golden_with_false_positive_in_the_middle():
    boxes, class_ids, masks = gt_instances()
    fp = masks_from_slices((40, 40), [(slice(30, 40), slice(0, 10))])
    pred_masks = np.concatenate([masks[..., :1], fp, masks[..., 1:]], axis=-1)
    pred_boxes = extract_bboxes(pred_masks)
    # Scores put them in order: TP (gt 0), FP, TP (gt 1).
    # precisions 1, 1/2, 2/3 at recalls 1/2, 1/2, 1 -> AP = 0.5 * 1 + 0.5 * 2/3
    ap, precisions, recalls, _ = compute_ap(
        boxes, class_ids, masks, pred_boxes, np.array([1, 1, 2]),
        np.array([0.9, 0.8, 0.7]), pred_masks)
    assert ap == pytest.approx(0.5 + 0.5 * 2 / 3)
    np.testing.assert_allclose(recalls, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(precisions, [1, 1, 2 / 3, 2 / 3, 0])


def test_matches_sorting_padding_and_priority():
    boxes, class_ids, masks = gt_instances()
    # Two predictions on gt 0, the lower-scored one listed first; zero padding rows.
    pred_masks = np.concatenate([masks[..., :1], masks[..., :1],
                                 np.zeros((40, 40, 2), bool)], axis=-1)
    pred_boxes = np.concatenate([extract_bboxes(pred_masks[..., :2]), np.zeros((2, 4))])
    pred_scores = np.array([0.3, 0.9, 0.0, 0.0])
    gt_boxes = np.concatenate([boxes, np.zeros((3, 4))])
    gt_class_ids = np.array([1, 2, 0, 0, 0])
    gt_masks = np.concatenate([masks, np.zeros((40, 40, 3), bool)], axis=-1)
    gt_match, pred_match, overlaps = compute_matches(
        gt_boxes, gt_class_ids, gt_masks, pred_boxes, np.array([1, 1, 0, 0]),
        pred_scores, pred_masks)
    assert overlaps.shape == (2, 2)
    # Sorted predictions: the 0.9 one first takes gt 0; the other is unmatched.
    np.testing.assert_array_equal(pred_match, [0, -1])
    np.testing.assert_array_equal(gt_match, [0, -1])


def test_iou_threshold_and_ap_range():
    gt = masks_from_slices((20, 20), [(slice(0, 10), slice(0, 10))])
    pred = masks_from_slices((20, 20), [(slice(0, 8), slice(0, 9))])   # IoU 72/100
    args = (extract_bboxes(gt), np.array([1]), gt, extract_bboxes(pred), np.array([1]),
            np.array([0.9]), pred)
    assert compute_ap(*args, iou_threshold=0.7)[0] == pytest.approx(1.0)
    assert compute_ap(*args, iou_threshold=0.75)[0] == 0.0
    np.testing.assert_allclose(compute_ap(*args)[3], [[0.72]])
    # Thresholds 0.5 .. 0.95: 0.5, 0.55, 0.6, 0.65, 0.7 pass -> 5 / 10.
    assert compute_ap_range(*args, verbose=0) == pytest.approx(0.5)
    assert compute_ap_range(*args, iou_thresholds=[0.5, 0.8], verbose=0) == pytest.approx(0.5)


def test_ap_range_verbose_prints(capsys):
    boxes, class_ids, masks = gt_instances()
    compute_ap_range(boxes, class_ids, masks, boxes, class_ids, np.array([0.9, 0.8]), masks,
                     iou_thresholds=[0.5, 0.75])
    out = capsys.readouterr().out
    assert "AP @0.50:\t 1.000" in out and "AP @0.50-0.75:\t 1.000" in out


def test_no_predictions_gives_zero_ap():
    boxes, class_ids, masks = gt_instances()
    ap, *_ = compute_ap(boxes, class_ids, masks, np.zeros((0, 4)), np.zeros((0,), np.int32),
                        np.zeros((0,)), np.zeros((40, 40, 0), bool))
    assert ap == 0.0


def test_compute_recall_golden():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]])
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 25], [70, 70, 80, 80]])
    recall, positive_ids = compute_recall(pred, gt, 0.5)
    # IoUs with their best gt: 1.0, 0.9, 0.5, 0 -> positives 0, 1, 2 covering gt 0 and 1.
    np.testing.assert_array_equal(positive_ids, [0, 1, 2])
    assert recall == pytest.approx(2 / 3)
    recall, positive_ids = compute_recall(pred, gt, 0.95)
    assert recall == pytest.approx(1 / 3) and list(positive_ids) == [0]
