"""RPN head: nested model names, output shapes, anchor ordering (h, w, A)."""
import numpy as np

from mrcnn.nn.rpn import build_rpn_model


def test_rpn_model_names_and_weights():
    rpn = build_rpn_model(anchor_stride=1, anchors_per_location=3, depth=16)
    assert rpn.name == "rpn_model"
    assert rpn.inputs[0].name == "input_rpn_feature_map"
    shapes = {w.path: tuple(w.shape) for w in rpn.weights}
    assert shapes == {
        "rpn_conv_shared/kernel": (3, 3, 16, 512), "rpn_conv_shared/bias": (512,),
        "rpn_class_raw/kernel": (1, 1, 512, 6), "rpn_class_raw/bias": (6,),
        "rpn_bbox_pred/kernel": (1, 1, 512, 12), "rpn_bbox_pred/bias": (12,)}


def test_rpn_outputs_follow_anchor_order():
    A, h, w = 3, 4, 5
    rpn = build_rpn_model(1, A, 8)
    x = np.random.RandomState(0).normal(size=(2, h, w, 8)).astype(np.float32)
    logits, probs, bbox = [o.numpy() for o in rpn(x)]
    assert logits.shape == (2, h * w * A, 2) and bbox.shape == (2, h * w * A, 4)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    # Naive reference: raw conv maps [B, h, w, 2A] read cell-major, anchor-minor.
    shared = rpn.get_layer("rpn_conv_shared")(x)
    raw = rpn.get_layer("rpn_class_raw")(shared).numpy()
    raw_bbox = rpn.get_layer("rpn_bbox_pred")(shared).numpy()
    y, xx, a = 2, 3, 1
    row = (y * w + xx) * A + a
    np.testing.assert_allclose(logits[1, row], raw[1, y, xx, 2 * a:2 * a + 2], rtol=1e-5)
    np.testing.assert_allclose(bbox[1, row], raw_bbox[1, y, xx, 4 * a:4 * a + 4], rtol=1e-5)
    e = np.exp(logits[1, row])
    np.testing.assert_allclose(probs[1, row], e / e.sum(), rtol=1e-5)


def test_rpn_anchor_stride_2_halves_locations():
    rpn = build_rpn_model(2, 3, 8)
    out = rpn(np.zeros((1, 8, 8, 8), np.float32))
    assert out[0].shape == (1, 4 * 4 * 3, 2)
