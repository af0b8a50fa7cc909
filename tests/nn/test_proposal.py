"""Tests of mrcnn/nn/proposal.py against a naive numpy implementation."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import make_tiny_config
from mrcnn.nn.proposal import ProposalLayer

RPN_STD = [0.1, 0.1, 0.2, 0.2]


def _iou(a, b):
    ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iw = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ih * iw
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def naive_nms(boxes, scores, threshold, max_out):
    """Greedy NMS, one box at a time: drop boxes with IoU > threshold."""
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order and len(keep) < max_out:
        i = order.pop(0)
        keep.append(i)
        order = [j for j in order if _iou(boxes[i], boxes[j]) <= threshold]
    return keep


def naive_proposals(probs, deltas, anchors, count, threshold, std, limit):
    out = np.zeros((probs.shape[0], count, 4), np.float32)
    for b in range(probs.shape[0]):
        scores = probs[b, :, 1]
        top = np.argsort(-scores, kind="stable")[:min(limit, len(scores))]
        a = anchors[b, top].astype(np.float64)
        d = deltas[b, top] * np.asarray(std)
        h, w = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
        cy, cx = a[:, 0] + 0.5 * h + d[:, 0] * h, a[:, 1] + 0.5 * w + d[:, 1] * w
        h, w = h * np.exp(d[:, 2]), w * np.exp(d[:, 3])
        boxes = np.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], 1)
        boxes = np.clip(boxes, 0.0, 1.0)
        keep = naive_nms(boxes, scores[top], threshold, count)
        out[b, :len(keep)] = boxes[keep]
    return out


def _random_inputs(rng, batch=2, num_anchors=300):
    y1x1 = rng.uniform(-0.1, 0.9, (batch, num_anchors, 2))
    hw = rng.uniform(0.05, 0.4, (batch, num_anchors, 2))
    anchors = np.concatenate([y1x1, y1x1 + hw], -1).astype(np.float32)
    fg = rng.uniform(size=(batch, num_anchors))
    probs = np.stack([1 - fg, fg], -1).astype(np.float32)
    deltas = rng.normal(0, 1.0, (batch, num_anchors, 4)).astype(np.float32)
    return probs, deltas, anchors


def test_matches_naive_reference():
    rng = np.random.RandomState(0)
    probs, deltas, anchors = _random_inputs(rng)
    layer = ProposalLayer(proposal_count=40, nms_threshold=0.5,
                          rpn_bbox_std_dev=[0.1, 0.1, 0.2, 0.2], pre_nms_limit=150)
    out = layer([probs, deltas, anchors]).numpy()
    ref = naive_proposals(probs, deltas, anchors, 40, 0.5, [0.1, 0.1, 0.2, 0.2], 150)
    assert out.shape == (2, 40, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_zero_padding_when_nms_keeps_few():
    # every anchor is the same box: NMS keeps exactly one per image
    batch, num = 2, 50
    anchors = np.tile(np.array([0.2, 0.2, 0.6, 0.7], np.float32), (batch, num, 1))
    probs = np.random.RandomState(1).dirichlet([1, 1], (batch, num)).astype(np.float32)
    deltas = np.zeros((batch, num, 4), np.float32)
    layer = ProposalLayer(10, 0.7, rpn_bbox_std_dev=RPN_STD, pre_nms_limit=6000)  # limit > A is fine
    inter = layer.intermediates([probs, deltas, anchors])
    out = layer([probs, deltas, anchors]).numpy()
    np.testing.assert_allclose(out[:, 0], [[0.2, 0.2, 0.6, 0.7]] * 2, rtol=1e-6)
    assert np.all(out[:, 1:] == 0)
    ix = inter["post_nms_anchor_ix"].numpy()
    assert ix.shape == (2, 10) and np.all(ix[:, 0] == 0) and np.all(ix[:, 1:] == -1)
    assert inter["pre_nms_anchors"].shape == (2, num, 4)


def test_intermediates_are_consistent():
    rng = np.random.RandomState(2)
    probs, deltas, anchors = _random_inputs(rng, num_anchors=120)
    layer = ProposalLayer(30, 0.6, rpn_bbox_std_dev=RPN_STD, pre_nms_limit=80)
    inter = {k: v.numpy() for k, v in layer.intermediates([probs, deltas, anchors]).items()}
    assert set(inter) >= {"pre_nms_anchors", "refined_anchors",
                          "refined_anchors_clipped", "post_nms_anchor_ix"}
    # scores sorted, pre-NMS anchors are the top-80 anchors
    assert np.all(np.diff(inter["scores"], axis=1) <= 0)
    top = np.argsort(-probs[0, :, 1])[:80]
    np.testing.assert_array_equal(inter["pre_nms_anchors"][0], anchors[0, top])
    np.testing.assert_allclose(inter["refined_anchors_clipped"],
                               np.clip(inter["refined_anchors"], 0, 1), rtol=1e-6)
    for b in range(2):
        ix = inter["post_nms_anchor_ix"][b]
        ix = ix[ix >= 0]
        np.testing.assert_array_equal(inter["proposals"][b, :len(ix)],
                                      inter["refined_anchors_clipped"][b, ix])
    np.testing.assert_array_equal(layer([probs, deltas, anchors]).numpy(), inter["proposals"])


def test_functional_model_with_dynamic_batch():
    num = 64
    probs_in = keras.Input((num, 2), name="rpn_class")
    bbox_in = keras.Input((num, 4), name="rpn_bbox")
    anchors_in = keras.Input((num, 4), name="input_anchors")
    rois = ProposalLayer(12, 0.7, rpn_bbox_std_dev=RPN_STD, pre_nms_limit=50)([probs_in, bbox_in, anchors_in])
    assert tuple(rois.shape) == (None, 12, 4)
    model = keras.Model([probs_in, bbox_in, anchors_in], rois)
    for batch in (1, 3):
        probs, deltas, anchors = _random_inputs(np.random.RandomState(batch), batch, num)
        out = model.predict_on_batch([probs, deltas, anchors])
        ref = naive_proposals(probs, deltas, anchors, 12, 0.7, [0.1, 0.1, 0.2, 0.2], 50)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_float32_under_mixed_bfloat16_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        layer = ProposalLayer(12, 0.7, rpn_bbox_std_dev=RPN_STD, pre_nms_limit=50)
        assert layer.compute_dtype == "float32"
        probs, deltas, anchors = _random_inputs(np.random.RandomState(5), 2, 64)
        # scores and deltas exactly representable in bf16 (no ties)
        fg = 0.5 + np.stack([np.random.RandomState(6).permutation(64)] * 2) / 256.0
        probs = np.stack([1 - fg, fg], -1).astype(np.float32)
        deltas = tf.cast(tf.cast(deltas, tf.bfloat16), tf.float32).numpy()
        out = layer([tf.cast(probs, tf.bfloat16), tf.cast(deltas, tf.bfloat16),
                     tf.constant(anchors)])
        assert out.dtype == tf.float32
        ref = naive_proposals(probs, deltas, anchors, 12, 0.7, [0.1, 0.1, 0.2, 0.2], 50)
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-5)
        # symbolic: bf16 inputs give a float32 output spec
        ins = [keras.Input((64, 2), dtype="bfloat16"), keras.Input((64, 4), dtype="bfloat16"),
               keras.Input((64, 4))]
        assert ProposalLayer(12, 0.7, rpn_bbox_std_dev=RPN_STD, pre_nms_limit=6000)(ins).dtype == "float32"
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.config.dtype_policy().name == previous.name


def test_saved_model_reloads_without_custom_objects(tmp_path):
    ins = [keras.Input((64, 2)), keras.Input((64, 4)), keras.Input((64, 4))]
    model = keras.Model(ins, ProposalLayer(12, 0.7, rpn_bbox_std_dev=RPN_STD, pre_nms_limit=50)(ins))
    path = str(tmp_path / "proposal.keras")
    model.save(path)
    revived = keras.models.load_model(path)
    data = list(_random_inputs(np.random.RandomState(7), 2, 64))
    np.testing.assert_array_equal(revived.predict_on_batch(data), model.predict_on_batch(data))


def test_padded_nms_gives_the_same_proposals_and_compiles_with_xla():
    """padded_nms=True (the training graph under Config.JIT_COMPILE) keeps
    the same boxes and indices as the default NMS, also with fewer
    survivors than proposal_count (padding), and compiles with XLA."""
    import tensorflow as tf
    rng = np.random.RandomState(4)
    probs, deltas, anchors = _random_inputs(rng, num_anchors=200)
    # a cluster of one box: NMS keeps few of these anchors
    anchors[1, :150] = [0.2, 0.2, 0.6, 0.7]
    deltas[1, :150] = 0.0
    kwargs = dict(rpn_bbox_std_dev=RPN_STD, pre_nms_limit=180)
    plain = ProposalLayer(60, 0.5, **kwargs)
    padded = ProposalLayer(60, 0.5, padded_nms=True, **kwargs)
    inputs = [probs, deltas, anchors]
    want = plain.intermediates(inputs)
    got = padded.intermediates(inputs)
    np.testing.assert_array_equal(got["post_nms_anchor_ix"].numpy(),
                                  want["post_nms_anchor_ix"].numpy())
    assert np.sum(want["post_nms_anchor_ix"].numpy()[1] >= 0) < 60  # padded
    np.testing.assert_array_equal(got["proposals"].numpy(), want["proposals"].numpy())
    compiled = tf.function(lambda *x: padded(list(x)), jit_compile=True)
    np.testing.assert_allclose(compiled(*inputs).numpy(), want["proposals"].numpy(),
                               rtol=1e-5, atol=1e-6)
    assert ProposalLayer.from_config(padded.get_config()).padded_nms
    assert "padded_nms" not in plain.get_config()
