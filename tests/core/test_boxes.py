"""Tests of mrcnn/core/boxes.py: golden values, naive references, round trips."""
import numpy as np
import pytest

from mrcnn.core.boxes import (apply_box_deltas, box_refinement, compute_iou,
                              compute_overlaps, denorm_boxes, extract_bboxes,
                              non_max_suppression, norm_boxes, trim_zeros)


def random_boxes(rng, n, size=100):
    yx = rng.uniform(0, size, (n, 2))
    hw = rng.uniform(1, size / 2, (n, 2))
    return np.concatenate([yx, yx + hw], axis=1)


def test_extract_bboxes_golden():
    mask = np.zeros((6, 8, 3), bool)
    mask[1:3, 2:5, 0] = True          # box (1, 2, 3, 5)
    mask[5, 7, 1] = True              # one pixel in the corner
    # instance 2 empty
    boxes = extract_bboxes(mask)
    assert boxes.dtype == np.int32
    np.testing.assert_array_equal(boxes, [[1, 2, 3, 5], [5, 7, 6, 8], [0, 0, 0, 0]])


def test_extract_bboxes_matches_naive_loop():
    rng = np.random.default_rng(1)
    mask = rng.random((20, 30, 7)) > 0.97
    mask[..., 3] = False
    expected = np.zeros((7, 4), np.int32)
    for i in range(7):
        ys, xs = np.nonzero(mask[..., i])
        if len(ys):
            expected[i] = [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]
    np.testing.assert_array_equal(extract_bboxes(mask), expected)
    assert extract_bboxes(np.zeros((4, 4, 0), bool)).shape == (0, 4)


def test_compute_iou_golden():
    box = np.array([0, 0, 10, 10])
    boxes = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 30, 30], [0, 0, 5, 10]])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    iou = compute_iou(box, boxes, 100, areas)
    np.testing.assert_allclose(iou, [1.0, 25 / 175, 0.0, 0.5])


def test_compute_overlaps_symmetric_self_one_and_naive():
    rng = np.random.default_rng(2)
    b1 = random_boxes(rng, 13)
    b2 = random_boxes(rng, 9)
    ov = compute_overlaps(b1, b2)
    assert ov.shape == (13, 9)
    np.testing.assert_allclose(ov, compute_overlaps(b2, b1).T)
    np.testing.assert_allclose(np.diag(compute_overlaps(b1, b1)), 1.0)
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    for i in range(13):
        a = (b1[i, 2] - b1[i, 0]) * (b1[i, 3] - b1[i, 1])
        np.testing.assert_allclose(ov[i], compute_iou(b1[i], b2, a, area2))
    assert np.all((ov >= 0) & (ov <= 1))


def test_compute_overlaps_empty_and_degenerate():
    assert compute_overlaps(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)
    zero = np.zeros((2, 4))
    ov = compute_overlaps(zero, zero)
    np.testing.assert_array_equal(ov, 0)       # not NaN
    with pytest.raises(ValueError, match="boxes1"):
        compute_overlaps(np.zeros((3,)), zero)


def naive_nms(boxes, scores, threshold):
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        survivors = []
        for j in order:
            yy1, xx1 = max(boxes[i, 0], boxes[j, 0]), max(boxes[i, 1], boxes[j, 1])
            yy2, xx2 = min(boxes[i, 2], boxes[j, 2]), min(boxes[i, 3], boxes[j, 3])
            inter = max(yy2 - yy1, 0) * max(xx2 - xx1, 0)
            ai = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            aj = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
            if inter / (ai + aj - inter) <= threshold:
                survivors.append(j)
        order = survivors
    return keep


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_nms_matches_naive_loop(threshold):
    rng = np.random.default_rng(3)
    boxes = random_boxes(rng, 200)
    scores = rng.random(200)
    keep = non_max_suppression(boxes, scores, threshold)
    assert keep.dtype == np.int32
    assert list(keep) == naive_nms(boxes, scores, threshold)
    # Sorted by score, and no two kept boxes overlap above the threshold.
    assert np.all(np.diff(scores[keep]) <= 0)
    ov = compute_overlaps(boxes[keep], boxes[keep])
    np.fill_diagonal(ov, 0)
    assert ov.max() <= threshold


def test_nms_golden_and_edge_cases():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.int32)
    scores = np.array([0.9, 0.95, 0.5])
    np.testing.assert_array_equal(non_max_suppression(boxes, scores, 0.5), [1, 2])
    empty = non_max_suppression(np.zeros((0, 4)), np.zeros((0,)), 0.5)
    assert empty.shape == (0,) and empty.dtype == np.int32
    with pytest.raises(ValueError, match="scores"):
        non_max_suppression(boxes, scores[:2], 0.5)
    with pytest.raises(ValueError, match="NaN"):
        non_max_suppression(boxes, np.array([0.1, np.nan, 0.2]), 0.5)
    with pytest.raises(ValueError, match=r"\[N, \(y1, x1, y2, x2\)\]"):
        non_max_suppression(np.zeros((3, 3)), scores, 0.5)
    # float16 boxes whose area overflows float16 still work.
    big = np.array([[0, 0, 300, 300], [0, 0, 300, 290]], np.float16)
    np.testing.assert_array_equal(non_max_suppression(big, np.array([0.5, 0.9]), 0.5), [1])


def test_box_refinement_golden():
    box = np.array([[0, 0, 10, 10]])
    gt = np.array([[5, 0, 15, 20]])
    deltas = box_refinement(box, gt)
    assert deltas.dtype == np.float32
    # centres (5, 5) -> (10, 10); sizes (10, 10) -> (10, 20)
    np.testing.assert_allclose(deltas, [[0.5, 0.5, 0.0, np.log(2.0)]], rtol=1e-6)


def test_delta_round_trip():
    rng = np.random.default_rng(4)
    boxes = random_boxes(rng, 50)
    gt = random_boxes(rng, 50)
    deltas = box_refinement(boxes, gt)
    decoded = apply_box_deltas(boxes, deltas)
    assert decoded.dtype == np.float32
    np.testing.assert_allclose(decoded, gt, atol=1e-3)
    np.testing.assert_allclose(apply_box_deltas(boxes, np.zeros((50, 4))), boxes, atol=1e-4)


def test_norm_denorm_golden_and_round_trip():
    shape = (101, 201)
    boxes = np.array([[0, 0, 101, 201], [10, 20, 51, 101]])
    norm = norm_boxes(boxes, shape)
    assert norm.dtype == np.float32
    np.testing.assert_allclose(norm[0], [0, 0, 1, 1])
    np.testing.assert_allclose(norm[1], [0.1, 0.1, 0.5, 0.5])
    back = denorm_boxes(norm, shape)
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, boxes)


def test_trim_zeros():
    x = np.array([[1, 2, 3, 4], [0, 0, 0, 0], [0, 0, 0, 5], [0, 0, 0, 0]])
    np.testing.assert_array_equal(trim_zeros(x), [[1, 2, 3, 4], [0, 0, 0, 5]])
    assert trim_zeros(np.zeros((3, 4))).shape == (0, 4)
    with pytest.raises(ValueError):
        trim_zeros(np.zeros(4))
