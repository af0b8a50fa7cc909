"""Tests of mrcnn/nn/box_ops.py: hand values, round trips, numpy parity."""
import numpy as np
import pytest
import tensorflow as tf

from mrcnn.core import boxes as boxes_np
from mrcnn.nn import box_ops


def _np_iou(a, b):
    """Naive IoU of two single boxes (y1, x1, y2, x2)."""
    ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iw = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ih * iw
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _random_boxes(rng, n, size=100.0):
    y1x1 = rng.uniform(0, size * 0.8, (n, 2))
    hw = rng.uniform(1, size * 0.5, (n, 2))
    return np.concatenate([y1x1, y1x1 + hw], axis=1).astype(np.float32)


def test_apply_box_deltas_hand_values():
    boxes = np.array([[10., 20., 30., 60.]], np.float32)   # h=20, w=40, c=(20, 40)
    deltas = np.array([[0.5, -0.25, np.log(2.0), 0.0]], np.float32)
    # center -> (20 + 10, 40 - 10) = (30, 30); size -> (40, 40)
    out = box_ops.apply_box_deltas_graph(boxes, deltas).numpy()
    np.testing.assert_allclose(out, [[10., 10., 50., 50.]], rtol=1e-6)


def test_box_refinement_roundtrip_and_hand_values():
    box = np.array([[0., 0., 10., 10.]], np.float32)
    gt = np.array([[5., 0., 25., 10.]], np.float32)
    d = box_ops.box_refinement_graph(box, gt).numpy()
    np.testing.assert_allclose(d, [[1.0, 0.0, np.log(2.0), 0.0]], rtol=1e-6, atol=1e-7)
    rng = np.random.RandomState(1)
    a = _random_boxes(rng, 50)
    b = _random_boxes(rng, 50)
    deltas = box_ops.box_refinement_graph(a, b)
    back = box_ops.apply_box_deltas_graph(a, deltas).numpy()
    np.testing.assert_allclose(back, b, rtol=1e-4, atol=1e-3)


def test_apply_deltas_batched_matches_flat():
    rng = np.random.RandomState(2)
    boxes = _random_boxes(rng, 12).reshape(3, 4, 4)
    deltas = rng.normal(0, 0.3, (3, 4, 4)).astype(np.float32)
    batched = box_ops.apply_box_deltas_graph(boxes, deltas).numpy()
    flat = box_ops.apply_box_deltas_graph(boxes.reshape(-1, 4), deltas.reshape(-1, 4)).numpy()
    np.testing.assert_allclose(batched.reshape(-1, 4), flat, rtol=1e-6)


def test_clip_boxes_window_and_broadcast():
    boxes = np.array([[-0.2, 0.1, 0.5, 1.3], [0.3, -1.0, 1.5, 0.2]], np.float32)
    out = box_ops.clip_boxes_graph(boxes, np.array([0, 0, 1, 1], np.float32)).numpy()
    np.testing.assert_allclose(out, [[0, 0.1, 0.5, 1.0], [0.3, 0, 1.0, 0.2]], rtol=1e-6)
    # per-image windows [B, 1, 4] for [B, N, 4]
    batch = np.stack([boxes, boxes])
    windows = np.array([[[0, 0, 1, 1]], [[0.25, 0.25, 0.75, 0.75]]], np.float32)
    out = box_ops.clip_boxes_graph(batch, windows).numpy()
    np.testing.assert_allclose(out[1], [[0.25, 0.25, 0.5, 0.75], [0.3, 0.25, 0.75, 0.25]])


def test_overlaps_against_naive_loop():
    rng = np.random.RandomState(3)
    a = _random_boxes(rng, 7)
    b = _random_boxes(rng, 5)
    b[2] = a[1]  # an exact match gives IoU 1
    expected = np.array([[_np_iou(x, y) for y in b] for x in a])
    out = box_ops.overlaps_graph(a, b).numpy()
    assert out.shape == (7, 5)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert out[1, 2] == pytest.approx(1.0)


def test_overlaps_hand_value_and_zero_boxes():
    a = np.array([[0., 0., 10., 10.], [0., 0., 0., 0.]], np.float32)
    b = np.array([[5., 0., 15., 10.], [0., 0., 0., 0.]], np.float32)
    out = box_ops.overlaps_graph(a, b).numpy()
    # 50 / (100 + 100 - 50)
    assert out[0, 0] == pytest.approx(1.0 / 3.0)
    assert np.all(np.isfinite(out)) and out[1, 1] == 0.0
    # empty sets
    assert box_ops.overlaps_graph(a, np.zeros((0, 4), np.float32)).shape == (2, 0)


def test_batch_overlaps_matches_per_image():
    rng = np.random.RandomState(4)
    a = _random_boxes(rng, 12).reshape(2, 6, 4)
    b = _random_boxes(rng, 8).reshape(2, 4, 4)
    out = box_ops.batch_overlaps_graph(a, b).numpy()
    for i in range(2):
        np.testing.assert_allclose(out[i], box_ops.overlaps_graph(a[i], b[i]).numpy())


def test_norm_denorm_boxes():
    shape = (101, 201)
    boxes = np.array([[0, 0, 101, 201], [10, 20, 51, 101]], np.int32)
    norm = box_ops.norm_boxes_graph(boxes, shape).numpy()
    np.testing.assert_allclose(norm[0], [0, 0, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(norm[1], [0.1, 0.1, 0.5, 0.5], rtol=1e-6)
    back = box_ops.denorm_boxes_graph(norm, shape).numpy()
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, boxes)
    # per-image shapes [B, 1, 2] for [B, N, 4]
    shapes = np.array([[[101, 201]], [[11, 21]]], np.float32)
    norm_b = box_ops.norm_boxes_graph(np.stack([boxes, boxes]), shapes).numpy()
    np.testing.assert_allclose(norm_b[0], norm, rtol=1e-6)
    np.testing.assert_allclose(norm_b[1, 0], [0, 0, 10.0, 10.0], rtol=1e-5)  # (101 - 1) / (11 - 1)


def test_trim_zeros_graph():
    boxes = np.array([[1, 2, 3, 4], [0, 0, 0, 0], [0, 0, 0, 1]], np.float32)
    kept, non_zeros = box_ops.trim_zeros_graph(tf.constant(boxes))
    np.testing.assert_array_equal(non_zeros.numpy(), [True, False, True])
    np.testing.assert_array_equal(kept.numpy(), boxes[[0, 2]])


def test_parse_image_meta_graph_matches_numpy():
    from mrcnn.core.image_meta import compose_image_meta, parse_image_meta
    meta = np.stack([
        compose_image_meta(7, (300, 400, 3), (512, 512, 3), (64, 0, 448, 512), 1.28, [1, 1, 0]),
        compose_image_meta(9, (200, 100, 3), (512, 512, 3), (0, 128, 512, 384), 2.56, [1, 0, 1]),
    ]).astype(np.float32)
    got = {k: v.numpy() for k, v in box_ops.parse_image_meta_graph(meta).items()}
    ref = parse_image_meta(meta)
    assert set(got) == set(ref)
    for key in ref:
        assert got[key].shape == ref[key].shape, key
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-6, err_msg=key)


def test_parity_with_numpy_core_boxes():
    rng = np.random.RandomState(5)
    a = _random_boxes(rng, 20)
    b = _random_boxes(rng, 20)
    deltas = rng.normal(0, 0.2, (20, 4)).astype(np.float32)
    np.testing.assert_allclose(box_ops.apply_box_deltas_graph(a, deltas).numpy(),
                               boxes_np.apply_box_deltas(a, deltas), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(box_ops.box_refinement_graph(a, b).numpy(),
                               boxes_np.box_refinement(a, b), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(box_ops.overlaps_graph(a, b).numpy(),
                               boxes_np.compute_overlaps(a, b), rtol=1e-5, atol=1e-6)
    shape = (128, 96)
    np.testing.assert_allclose(box_ops.norm_boxes_graph(a, shape).numpy(),
                               boxes_np.norm_boxes(a, shape), rtol=1e-5, atol=1e-6)
    na = boxes_np.norm_boxes(a, shape)
    np.testing.assert_array_equal(box_ops.denorm_boxes_graph(na, shape).numpy(),
                                  boxes_np.denorm_boxes(na, shape))
