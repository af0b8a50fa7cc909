"""Tests of mrcnn/nn/detection.py against a naive numpy refine_detections."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import make_tiny_config
from mrcnn.core.image_meta import compose_image_meta
from mrcnn.nn.detection import DetectionLayer

STD = np.array([0.1, 0.1, 0.2, 0.2])


def _iou(a, b):
    ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iw = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ih * iw
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _greedy_nms(boxes, scores, threshold):
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        order = [j for j in order if _iou(boxes[i], boxes[j]) <= threshold]
    return keep


def naive_detections(rois, probs, deltas, windows, max_inst, min_conf, nms_thr):
    """Matterport's refine_detections_graph, one image at a time, numpy."""
    out = np.zeros((rois.shape[0], max_inst, 6))
    for b in range(rois.shape[0]):
        cls = probs[b].argmax(1)
        score = probs[b][np.arange(len(cls)), cls]
        d = deltas[b][np.arange(len(cls)), cls] * STD
        r = rois[b].astype(np.float64)
        h, w = r[:, 2] - r[:, 0], r[:, 3] - r[:, 1]
        cy, cx = r[:, 0] + 0.5 * h + d[:, 0] * h, r[:, 1] + 0.5 * w + d[:, 1] * w
        h, w = h * np.exp(d[:, 2]), w * np.exp(d[:, 3])
        boxes = np.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], 1)
        wy1, wx1, wy2, wx2 = windows[b]
        boxes = np.stack([np.clip(boxes[:, 0], wy1, wy2), np.clip(boxes[:, 1], wx1, wx2),
                          np.clip(boxes[:, 2], wy1, wy2), np.clip(boxes[:, 3], wx1, wx2)], 1)
        keep = np.where((cls > 0) & ((score >= min_conf) if min_conf else True))[0]
        survivors = []
        for c in np.unique(cls[keep]):
            ix = keep[cls[keep] == c]
            survivors += [ix[k] for k in _greedy_nms(boxes[ix], score[ix], nms_thr)[:max_inst]]
        survivors = sorted(survivors, key=lambda i: -score[i])[:max_inst]
        for row, i in enumerate(survivors):
            out[b, row] = list(boxes[i]) + [cls[i], score[i]]
    return out


def _meta(windows_px, size=64, num_classes=4):
    return np.stack([compose_image_meta(i, (size, size, 3), (size, size, 3), w, 1.0,
                                        [1] * num_classes)
                     for i, w in enumerate(windows_px)]).astype(np.float32)


def _inputs(rng, batch=2, num=60, num_classes=4):
    centers = rng.uniform(0.2, 0.8, (4, 2))  # clustered boxes so that NMS has work
    c = centers[rng.randint(0, 4, (batch, num))] + rng.normal(0, 0.03, (batch, num, 2))
    hw = rng.uniform(0.1, 0.3, (batch, num, 2))
    rois = np.concatenate([c - hw / 2, c + hw / 2], -1).astype(np.float32)
    logits = rng.normal(0, 2.0, (batch, num, num_classes))
    probs = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    deltas = rng.normal(0, 0.5, (batch, num, num_classes, 4)).astype(np.float32)
    return rois, probs, deltas


WINDOWS_PX = [(0, 0, 64, 64), (8, 4, 56, 60)]
WINDOWS_NORM = [np.array(w, float) - [0, 0, 1, 1] for w in WINDOWS_PX]
WINDOWS_NORM = [w / 63.0 for w in WINDOWS_NORM]


@pytest.mark.parametrize("min_conf,nms_thr,max_inst", [(0.5, 0.3, 10), (0.0, 0.5, 40)])
def test_matches_naive_reference(min_conf, nms_thr, max_inst):
    rng = np.random.RandomState(0)
    rois, probs, deltas = _inputs(rng)
    layer = DetectionLayer(max_inst, min_conf, nms_thr, STD)
    out = layer([rois, probs, deltas, _meta(WINDOWS_PX)]).numpy()
    ref = naive_detections(rois, probs, deltas, WINDOWS_NORM, max_inst, min_conf, nms_thr)
    assert out.shape == (2, max_inst, 6) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    # the reference really exercised NMS, padding and (for 0.5) the confidence filter
    kept = (ref[..., 5] > 0).sum(1)
    assert kept.min() > 1 and (max_inst == 10 or kept.max() < max_inst)
    for b in range(2):  # inside the window of each image
        det = out[b][out[b, :, 5] > 0]
        wy1, wx1, wy2, wx2 = WINDOWS_NORM[b]
        assert np.all(det[:, [0, 2]] >= wy1 - 1e-6) and np.all(det[:, [0, 2]] <= wy2 + 1e-6)
        assert np.all(det[:, [1, 3]] >= wx1 - 1e-6) and np.all(det[:, [1, 3]] <= wx2 + 1e-6)
        assert np.all(np.diff(det[:, 5]) <= 0) and np.all(det[:, 4] > 0)
        if min_conf:
            assert np.all(det[:, 5] >= min_conf)


def test_per_class_nms_hand_case():
    # three identical boxes: two of class 1 (0.9, 0.8), one of class 2 (0.7)
    rois = np.tile(np.array([0.1, 0.1, 0.5, 0.5], np.float32), (1, 4, 1))
    probs = np.array([[[0.05, 0.9, 0.05], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7],
                       [0.9, 0.05, 0.05]]], np.float32)  # last one is background
    deltas = np.zeros((1, 4, 3, 4), np.float32)
    meta = _meta([(0, 0, 64, 64)], num_classes=3)
    out = DetectionLayer(5, 0.0, 0.3, STD)([rois, probs, deltas, meta]).numpy()[0]
    np.testing.assert_allclose(out[:2], [[0.1, 0.1, 0.5, 0.5, 1, 0.9],
                                         [0.1, 0.1, 0.5, 0.5, 2, 0.7]], rtol=1e-6)
    assert np.all(out[2:] == 0)


def test_confidence_filter_leaves_all_padding():
    rng = np.random.RandomState(1)
    rois, probs, deltas = _inputs(rng)
    out = DetectionLayer(10, 0.99, 0.3, STD)([rois, probs * 0.5, deltas,
                                              _meta(WINDOWS_PX)]).numpy()
    assert np.all(out == 0)


def test_functional_model_dynamic_batch_and_mixed_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        ins = [keras.Input((60, 4)), keras.Input((60, 4)), keras.Input((60, 4, 4)),
               keras.Input((16,))]
        layer = DetectionLayer(12, 0.3, 0.3, STD)
        assert layer.compute_dtype == "float32"
        out = layer(ins)
        assert tuple(out.shape) == (None, 12, 6) and out.dtype == "float32"
        model = keras.Model(ins, out)
        rng = np.random.RandomState(2)
        for batch in (1, 3):
            rois, probs, deltas = _inputs(rng, batch)
            windows = (WINDOWS_PX * 2)[:batch]
            got = model.predict_on_batch([rois, probs, deltas, _meta(windows)])
            ref = naive_detections(rois, probs, deltas, (WINDOWS_NORM * 2)[:batch],
                                   12, 0.3, 0.3)
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
        # bf16 inputs are autocast to float32
        rois, probs, deltas = _inputs(rng, 2)
        got = layer([tf.cast(rois, tf.bfloat16), tf.cast(probs, tf.bfloat16),
                     tf.cast(deltas, tf.bfloat16), _meta(WINDOWS_PX)])
        assert got.dtype == tf.float32
    finally:
        keras.config.set_dtype_policy(previous)
