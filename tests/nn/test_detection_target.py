"""Tests of mrcnn/nn/detection_target.py: sampling counts, deltas, masks, edge cases."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import make_tiny_config
from mrcnn.nn.detection_target import DetectionTargetLayer

STD = [0.1, 0.1, 0.2, 0.2]


def _iou_matrix(a, b):
    out = np.zeros((len(a), len(b)))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            ih = max(0.0, min(x[2], y[2]) - max(x[0], y[0]))
            iw = max(0.0, min(x[3], y[3]) - max(x[1], y[1]))
            inter = ih * iw
            union = (x[2] - x[0]) * (x[3] - x[1]) + (y[2] - y[0]) * (y[3] - y[1]) - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def _np_refinement(box, gt):
    h, w = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
    gh, gw = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    return np.stack([(gt[:, 0] + 0.5 * gh - box[:, 0] - 0.5 * h) / h,
                     (gt[:, 1] + 0.5 * gw - box[:, 1] - 0.5 * w) / w,
                     np.log(gh / h), np.log(gw / w)], axis=1)


def _scene(rng, num_pos, num_neg, num_proposals=60, max_gt=4):
    """One image: 2 gt boxes, num_pos jittered copies, num_neg far boxes, zero pad."""
    gt = np.array([[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.8]], np.float32)
    pos = gt[rng.randint(0, 2, num_pos)] + rng.uniform(-0.02, 0.02, (num_pos, 4))
    y1x1 = rng.uniform(0.0, 0.9, (num_neg, 2))
    neg = np.concatenate([y1x1, y1x1 + 0.05], 1)  # small boxes: IoU < 0.5 with gt
    proposals = np.zeros((num_proposals, 4), np.float32)
    proposals[:num_pos + num_neg] = rng.permutation(np.concatenate([pos, neg]))
    gt_boxes = np.zeros((max_gt, 4), np.float32)
    gt_boxes[:2] = gt
    class_ids = np.zeros((max_gt,), np.int32)
    class_ids[:2] = [3, 1]
    masks = np.zeros((8, 8, max_gt), bool)
    masks[:, :4, 0] = True   # mini-masks: left half of gt 0, top half of gt 1
    masks[:4, :, 1] = True
    return proposals, class_ids, gt_boxes, masks


def _batch(scenes):
    return [np.stack(x) for x in zip(*scenes)]


def _check_image(rois, class_ids, deltas, masks, proposals, gt_class_ids, gt_boxes,
                 expected_pos, expected_neg):
    iou = _iou_matrix(rois, gt_boxes[:2])
    used = np.any(rois != 0, axis=1)
    assert used.sum() == expected_pos + expected_neg
    assert np.all(used[:expected_pos + expected_neg]) and not np.any(used[expected_pos + expected_neg:])
    # positives first, then negatives
    assert np.all(iou[:expected_pos].max(1) >= 0.5)
    assert np.all(iou[expected_pos:expected_pos + expected_neg].max(1) < 0.5)
    # every RoI is a distinct proposal
    sel = rois[used]
    match = [np.where(np.all(np.isclose(proposals, r), axis=1))[0] for r in sel]
    assert all(len(m) == 1 for m in match)
    assert len({int(m[0]) for m in match}) == len(sel)
    # class ids, deltas and masks of positives follow the best gt
    best = iou[:expected_pos].argmax(1)
    np.testing.assert_array_equal(class_ids[:expected_pos], gt_class_ids[best])
    assert np.all(class_ids[expected_pos:] == 0)
    ref = _np_refinement(rois[:expected_pos].astype(np.float64), gt_boxes[best]) / STD
    np.testing.assert_allclose(deltas[:expected_pos], ref, rtol=1e-4, atol=1e-4)
    assert np.all(deltas[expected_pos:] == 0) and np.all(masks[expected_pos:] == 0)
    assert set(np.unique(masks)) <= {0.0, 1.0}
    return best


def test_counts_ratio_deltas_and_masks():
    rng = np.random.RandomState(0)
    # image 0: plenty of positives (capped at int(32 * 0.33) = 10 -> 20 negatives)
    # image 1: 3 positives -> int(3 / 0.33) - 3 = 6 negatives
    scenes = [_scene(rng, 25, 30), _scene(rng, 3, 30)]
    proposals, class_ids, gt_boxes, masks = _batch(scenes)
    layer = DetectionTargetLayer(32, 0.33, STD, [6, 6], True)
    rois, t_ids, t_deltas, t_masks = [x.numpy() for x in layer(
        [proposals, class_ids, gt_boxes, masks])]
    assert rois.shape == (2, 32, 4) and t_ids.shape == (2, 32)
    assert t_deltas.shape == (2, 32, 4) and t_masks.shape == (2, 32, 6, 6)
    assert t_ids.dtype == np.int32 and t_masks.dtype == np.float32
    for b, (pos, neg) in enumerate([(10, 20), (3, 6)]):
        best = _check_image(rois[b], t_ids[b], t_deltas[b], t_masks[b], proposals[b],
                            class_ids[b], gt_boxes[b], pos, neg)
        for i, g in enumerate(best):
            # RoI ~ gt box, so the mask target looks like the mini-mask:
            # left half for gt 0, top half for gt 1
            m = t_masks[b, i]
            # (inner samples only: the jittered RoI may stick out of the gt box)
            if g == 0:
                assert m[1:5, 1].all() and not m[1:5, 4].any()
            else:
                assert m[1, 1:5].all() and not m[4, 1:5].any()


def _naive_crop(mask, box, shape):
    height, width = mask.shape
    out = np.zeros(shape)
    for i in range(shape[0]):
        y = box[0] * (height - 1) + i * (box[2] - box[0]) * (height - 1) / (shape[0] - 1)
        for j in range(shape[1]):
            x = box[1] * (width - 1) + j * (box[3] - box[1]) * (width - 1) / (shape[1] - 1)
            if not (0 <= y <= height - 1 and 0 <= x <= width - 1):
                continue
            y0, x0, y1, x1 = int(np.floor(y)), int(np.floor(x)), int(np.ceil(y)), int(np.ceil(x))
            top = mask[y0, x0] * (1 - (x - x0)) + mask[y0, x1] * (x - x0)
            bottom = mask[y1, x0] * (1 - (x - x0)) + mask[y1, x1] * (x - x0)
            out[i, j] = top * (1 - (y - y0)) + bottom * (y - y0)
    return (out >= 0.5).astype(np.float32)


@pytest.mark.parametrize("sampler", ["crop_and_resize", "gather"])
@pytest.mark.parametrize("use_mini_mask", [False, True])
def test_mask_target_hand_case(use_mini_mask, sampler):
    """Both samplers (the gather one is the training graph's under
    Config.JIT_COMPILE) crop the same mask targets."""
    # 16 x 16 image, gt box pixels rows/cols 4..11 (y2/x2 exclusive = 12),
    # object = left half of the box (cols 4..7).
    gt_px = np.array([4, 4, 12, 12], np.float32)
    gt_norm = (gt_px - [0, 0, 1, 1]) / 15.0
    full = np.zeros((16, 16), np.float32)
    full[4:12, 4:8] = 1
    mini = np.zeros((8, 8), np.float32)
    mini[:, :4] = 1
    mask = mini if use_mini_mask else full
    roi_a = gt_norm                                   # the gt box itself
    roi_b = gt_norm + np.array([0, -1, 0, -1]) / 15.0  # shifted 1 px left, IoU 7/9
    proposals = np.zeros((1, 4, 4), np.float32)
    proposals[0, :2] = [roi_a, roi_b]
    layer = DetectionTargetLayer(4, 0.5, STD, [4, 4], use_mini_mask,
                                 sampler=sampler)
    assert DetectionTargetLayer.from_config(layer.get_config()).sampler == sampler
    rois, ids, _, masks = [x.numpy() for x in layer(
        [proposals, np.array([[2, 0]], np.int32),
         np.array([[gt_norm, np.zeros(4)]], np.float32),
         mask[None, :, :, None].repeat(2, axis=3) * np.array([1, 0])])]
    assert np.all(ids[0, :2] == 2)
    for row in range(2):
        if np.allclose(rois[0, row], roi_a):
            # samples x = 4 + j * 7 / 3 -> 4, 6.33, 8.67, 11 px: [1, 1, 0, 0]
            np.testing.assert_array_equal(masks[0, row], [[1, 1, 0, 0]] * 4)
        else:
            np.testing.assert_allclose(rois[0, row], roi_b, rtol=1e-6)
            # samples x = 3, 5.33, 7.67, 10 px: [0, 1, 0, 0] (x = 7.67 reads 0.33)
            ref = _naive_crop(full, roi_b, (4, 4))
            np.testing.assert_array_equal(masks[0, row], ref)
            np.testing.assert_array_equal(ref, [[0, 1, 0, 0]] * 4)


def test_no_gt_and_no_positive_give_zero_targets():
    rng = np.random.RandomState(1)
    proposals, class_ids, gt_boxes, masks = _scene(rng, 0, 30)
    empty = (proposals, np.zeros_like(class_ids), np.zeros_like(gt_boxes), np.zeros_like(masks))
    no_pos = (proposals, class_ids, gt_boxes, masks)
    layer = DetectionTargetLayer(16, 0.25, STD, [5, 5], True)
    outs = layer(_batch([empty, no_pos]))
    for x in outs:
        x = x.numpy()
        assert np.all(np.isfinite(x)) and np.all(x == 0)


def test_crowd_boxes_are_not_gt_and_block_negatives():
    proposals = np.zeros((12, 4), np.float32)
    gt = np.array([0.1, 0.1, 0.4, 0.4], np.float32)
    crowd = np.array([0.6, 0.6, 0.9, 0.9], np.float32)
    proposals[0:3] = gt + np.array([[0, 0, 0.01, 0], [0.01, 0, 0, 0], [0, 0.01, 0, 0.01]])
    proposals[3:6] = crowd + np.array([[0.1, 0.1, 0.1, 0.1], [0.01, 0, 0, 0], [0.2, 0.2, 0.3, 0.3]])
    proposals[6:12] = [[0.0, 0.6, 0.1, 0.7], [0.9, 0.0, 1.0, 0.1], [0.45, 0.45, 0.5, 0.5],
                       [0.0, 0.9, 0.1, 1.0], [0.9, 0.4, 1.0, 0.5], [0.5, 0.0, 0.55, 0.05]]
    gt_boxes = np.array([gt, crowd, np.zeros(4)], np.float32)
    class_ids = np.array([1, -1, 0], np.int32)
    masks = np.ones((4, 4, 3), bool)
    layer = DetectionTargetLayer(12, 0.25, STD, [4, 4], True)
    rois, ids, _, _ = [x.numpy()[0] for x in layer(
        [proposals[None], class_ids[None], gt_boxes[None], masks[None]])]
    # 3 positives (class 1, never the crowd's -1) -> int(3 * 4) - 3 = 9 negatives wanted,
    # but only the 6 crowd-free proposals qualify
    assert np.all(ids[:3] == 1) and np.all(ids[3:] == 0)
    used = rois[np.any(rois != 0, axis=1)]
    assert len(used) == 9
    for r in used[3:]:
        assert not any(np.allclose(r, p) for p in proposals[3:6])


def test_functional_model_dynamic_batch_under_mixed_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        ins = [keras.Input((60, 4)), keras.Input((4,), dtype="int32"),
               keras.Input((4, 4)), keras.Input((8, 8, 4), dtype="bool")]
        layer = DetectionTargetLayer(32, 0.33, STD, [6, 6], True)
        assert layer.compute_dtype == "float32"
        outs = layer(ins)
        assert [tuple(o.shape) for o in outs] == [(None, 32, 4), (None, 32), (None, 32, 4),
                                                  (None, 32, 6, 6)]
        assert [o.dtype for o in outs] == ["float32", "int32", "float32", "float32"]
        model = keras.Model(ins, outs)
        rng = np.random.RandomState(2)
        for batch in (1, 3):
            data = _batch([_scene(rng, 25, 30) for _ in range(batch)])
            rois, ids, deltas, masks = model.predict_on_batch(data)
            assert rois.shape == (batch, 32, 4) and rois.dtype == np.float32
            for b in range(batch):
                _check_image(rois[b], ids[b], deltas[b], masks[b], data[0][b], data[1][b],
                             data[2][b], 10, 20)
    finally:
        keras.config.set_dtype_policy(previous)


def test_fewer_proposals_than_train_rois():
    proposals = np.array([[[0.1, 0.1, 0.4, 0.4], [0.11, 0.1, 0.4, 0.41], [0.6, 0.6, 0.7, 0.7]]],
                         np.float32)
    gt_boxes = np.array([[[0.1, 0.1, 0.4, 0.4], [0, 0, 0, 0]]], np.float32)
    rois, ids, deltas, masks = [x.numpy() for x in DetectionTargetLayer(8, 0.5, STD, [4, 4], False)(
        [proposals, np.array([[1, 0]], np.int32), gt_boxes, np.ones((1, 16, 16, 2), np.float32)])]
    # 2 positives -> int(2 / 0.5) - 2 = 2 negatives wanted, only 1 exists
    assert rois.shape == (1, 8, 4) and masks.shape == (1, 8, 4, 4)
    np.testing.assert_array_equal(ids[0], [1, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(rois[0, 2], proposals[0, 2])
    assert np.all(rois[0, 3:] == 0) and np.all(masks[0, :2] == 1) and np.all(masks[0, 2:] == 0)
