"""Tests of mrcnn/nn/roi_align.py: FPN level assignment, a naive bilinear loop,
and the gather sampler (crop_and_resize_gather) against CropAndResize."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from mrcnn.core.image_meta import compose_image_meta
from mrcnn.nn.roi_align import (PyramidROIAlign, crop_and_resize_gather,
                                roi_levels_graph)


def naive_crop(feature, box, pool_shape):
    """crop_and_resize semantics for one box: [H, W, C] -> [ph, pw, C]."""
    height, width, channels = feature.shape
    ph, pw = pool_shape
    y1, x1, y2, x2 = box
    out = np.zeros((ph, pw, channels), np.float64)
    for i in range(ph):
        y = (y1 * (height - 1) + i * (y2 - y1) * (height - 1) / (ph - 1)
             if ph > 1 else 0.5 * (y1 + y2) * (height - 1))
        for j in range(pw):
            x = (x1 * (width - 1) + j * (x2 - x1) * (width - 1) / (pw - 1)
                 if pw > 1 else 0.5 * (x1 + x2) * (width - 1))
            if y < 0 or y > height - 1 or x < 0 or x > width - 1:
                continue  # extrapolation value 0
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            yb, xb = int(np.ceil(y)), int(np.ceil(x))
            dy, dx = y - y0, x - x0
            top = feature[y0, x0] * (1 - dx) + feature[y0, xb] * dx
            bottom = feature[yb, x0] * (1 - dx) + feature[yb, xb] * dx
            out[i, j] = top * (1 - dy) + bottom * dy
    return out


def _meta(batch, size=1024, num_classes=3):
    return np.stack([compose_image_meta(i, (size, size, 3), (size, size, 3),
                                        (0, 0, size, size), 1.0, [1] * num_classes)
                     for i in range(batch)]).astype(np.float32)


def _square(side, y=0.1, x=0.2):
    return [y, x, y + side, x + side]


def test_level_assignment_hand_cases():
    # 1024 px image: a box of side s px gets 4 + round(log2(s / 224))
    sides_px = [224, 112, 56, 448, 1024, 10, 0, 300, 160]
    expected = [4, 3, 2, 5, 5, 2, 2, 4, 4]  # log2(300/224)=0.42, log2(160/224)=-0.49
    boxes = np.array([_square(s / 1024.0, 0.0, 0.0) for s in sides_px], np.float32)
    levels = roi_levels_graph(boxes, [1024, 1024, 3]).numpy()
    np.testing.assert_array_equal(levels, expected)
    # image area matters: on a 224 px image the full box is level 4
    np.testing.assert_array_equal(roi_levels_graph(np.array([[0, 0, 1, 1]], np.float32),
                                                   [224, 224, 3]).numpy(), [4])
    # rectangular: sqrt(h * w) with h = 448 px, w = 112 px -> 224 -> level 4
    np.testing.assert_array_equal(roi_levels_graph(
        np.array([[0, 0, 448 / 1024., 112 / 1024.]], np.float32), [1024, 1024, 3]).numpy(), [4])


def _pyramid(rng, batch, channels=3):
    return [rng.normal(size=(batch, 32 // 2 ** k, 32 // 2 ** k, channels)).astype(np.float32)
            for k in range(4)]


def _boxes(batch):
    # sides chosen to hit every level on a 1024 px image, plus a zero row
    rows = [_square(60 / 1024.), _square(120 / 1024., 0.3, 0.1), _square(230 / 1024., 0.5, 0.5),
            _square(600 / 1024., 0.2, 0.3), [0, 0, 0, 0], [0.05, 0.6, 0.95, 0.9],
            _square(0.9, 0.2, 0.3)]  # partly outside the image: extrapolation 0
    boxes = np.array([rows[i:] + rows[:i] for i in range(batch)], np.float32)
    return boxes


def _reference(boxes, meta, features, pool_shape):
    levels = roi_levels_graph(boxes, meta[0, 4:7]).numpy()
    batch, num = boxes.shape[:2]
    out = np.zeros((batch, num) + tuple(pool_shape) + (features[0].shape[-1],))
    for b in range(batch):
        for n in range(num):
            out[b, n] = naive_crop(features[levels[b, n] - 2][b], boxes[b, n], pool_shape)
    return out, levels


@pytest.mark.parametrize("pool_shape", [(7, 7), (4, 3), (1, 1)])
def test_matches_naive_bilinear_loop(pool_shape):
    rng = np.random.RandomState(0)
    batch = 2
    features = _pyramid(rng, batch)
    boxes, meta = _boxes(batch), _meta(batch)
    out = PyramidROIAlign(pool_shape, name="roi_align_classifier")([boxes, meta] + features)
    ref, levels = _reference(boxes, meta, features, pool_shape)
    assert set(levels.ravel()) == {2, 3, 4, 5}
    assert out.shape == ref.shape and out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-5)


def test_functional_model_dynamic_batch_and_gradient():
    rng = np.random.RandomState(1)
    boxes_in = keras.Input((7, 4))
    meta_in = keras.Input((15,))
    feats_in = [keras.Input((32 // 2 ** k, 32 // 2 ** k, 3)) for k in range(4)]
    layer = PyramidROIAlign([5, 5], name="roi_align_mask")
    pooled = layer([boxes_in, meta_in] + feats_in)
    assert tuple(pooled.shape) == (None, 7, 5, 5, 3)
    model = keras.Model([boxes_in, meta_in] + feats_in, pooled)
    for batch in (1, 3):
        features = _pyramid(rng, batch)
        boxes, meta = _boxes(batch), _meta(batch)
        out = model.predict_on_batch([boxes, meta] + features)
        ref, _ = _reference(boxes, meta, features, (5, 5))
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    # gradients reach every pyramid level used
    features = [tf.constant(f) for f in _pyramid(rng, 2)]
    with tf.GradientTape() as tape:
        tape.watch(features)
        loss = tf.reduce_sum(layer([_boxes(2), _meta(2)] + features))
    grads = tape.gradient(loss, features)
    assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)


def test_config_roundtrip():
    layer = PyramidROIAlign([14, 14], name="roi_align_mask")
    clone = PyramidROIAlign.from_config(layer.get_config())
    assert clone.pool_shape == (14, 14) and clone.name == "roi_align_mask"
    assert clone.get_config() == layer.get_config()
    # registered: deserializes by name, no custom_objects needed
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is type(layer) and revived.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="pool_shape"):
        PyramidROIAlign([7])


def test_bfloat16_features_under_mixed_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        rng = np.random.RandomState(2)
        features = _pyramid(rng, 2)
        features_bf16 = [tf.cast(f, tf.bfloat16) for f in features]
        boxes, meta = _boxes(2), _meta(2)
        layer = PyramidROIAlign([7, 7])
        out = layer([boxes, meta] + features_bf16)
        assert out.dtype == tf.bfloat16
        ref, _ = _reference(boxes, meta, [tf.cast(f, tf.float32).numpy() for f in features_bf16],
                            (7, 7))
        np.testing.assert_allclose(tf.cast(out, tf.float32).numpy(), ref, rtol=2e-2, atol=2e-2)
        # symbolic spec follows the features too
        ins = [keras.Input((7, 4)), keras.Input((15,))] + [
            keras.Input((32 // 2 ** k, 32 // 2 ** k, 3), dtype="bfloat16") for k in range(4)]
        assert PyramidROIAlign([7, 7])(ins).dtype == "bfloat16"
    finally:
        keras.config.set_dtype_policy(previous)


def test_nan_boxes_go_to_p2_and_do_not_break_the_pooling():
    """A diverged model can propose NaN boxes: they get level 2 and the
    layer still returns one (NaN) crop per box instead of failing in the
    inverse permutation."""
    boxes = np.array([[_square(0.5), [np.nan] * 4, _square(0.1)]], np.float32)
    np.testing.assert_array_equal(
        roi_levels_graph(boxes, [1024, 1024, 3]).numpy(), [[5, 2, 3]])
    meta = compose_image_meta(0, (1024, 1024, 3), (1024, 1024, 3),
                              (0, 0, 1024, 1024), 1.0, np.ones(2))[np.newaxis]
    rng = np.random.default_rng(0)
    out = PyramidROIAlign((2, 2))([boxes, meta.astype(np.float32)] +
                                  _pyramid(rng, 1)).numpy()
    assert out.shape == (1, 3, 2, 2, 3)
    assert np.all(np.isfinite(out[0, 0])) and np.all(np.isfinite(out[0, 2]))


def naive_crop_vjp(shape, boxes, box_indices, pool_shape, upstream):
    """The gradient of sum(crops * upstream) w.r.t. the image, by the
    crop_and_resize formula (naive_crop's samples, scattered back)."""
    _, height, width, _ = shape
    ph, pw = pool_shape
    grad = np.zeros(shape, np.float64)
    for n, (y1, x1, y2, x2) in enumerate(boxes.astype(np.float64)):
        for i in range(ph):
            y = (y1 * (height - 1) + i * (y2 - y1) * (height - 1) / (ph - 1)
                 if ph > 1 else 0.5 * (y1 + y2) * (height - 1))
            for j in range(pw):
                x = (x1 * (width - 1) + j * (x2 - x1) * (width - 1) / (pw - 1)
                     if pw > 1 else 0.5 * (x1 + x2) * (width - 1))
                if y < 0 or y > height - 1 or x < 0 or x > width - 1:
                    continue
                y0, x0 = int(np.floor(y)), int(np.floor(x))
                yb, xb = int(np.ceil(y)), int(np.ceil(x))
                dy, dx = y - y0, x - x0
                g, b = upstream[n, i, j], box_indices[n]
                grad[b, y0, x0] += g * (1 - dy) * (1 - dx)
                grad[b, y0, xb] += g * (1 - dy) * dx
                grad[b, yb, x0] += g * dy * (1 - dx)
                grad[b, yb, xb] += g * dy * dx
    return grad


def _crop_boxes(rng, count):
    """Boxes inside, partly outside and wholly outside [0, 1], a point
    box, the full image and a flat one."""
    y = rng.uniform(-0.3, 1.0, (count, 2))
    size = rng.uniform(0.0, 0.7, (count, 2))
    boxes = np.concatenate([y, y + size], axis=1)
    special = [[0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5], [-0.2, 0.1, 0.4, 1.2],
               [0.1, 0.2, 1.0, 1.0], [-1.5, -1.5, -1.1, -1.2], [0.3, 0.1, 0.3, 0.9]]
    return np.concatenate([boxes, special]).astype(np.float32)


@pytest.mark.parametrize("crop_size", [(7, 7), (14, 14), (1, 1), (3, 5)])
def test_gather_sampler_equals_crop_and_resize_values_and_gradients(crop_size):
    """crop_and_resize_gather = tf.image.crop_and_resize (extrapolation 0)
    in values and in the gradient w.r.t. the feature map, boxes partly
    outside the map included. The gradient is checked against the formula
    and against TF's own gradient; for the latter each box has its own
    image, since CropAndResizeGradImage on the CPU is not deterministic
    when many boxes of one image are summed (measured: differences up to
    2 on this machine, one call in six with 2000 boxes)."""
    rng = np.random.RandomState(0)
    boxes = _crop_boxes(rng, 30)
    n = len(boxes)
    image = tf.constant(rng.normal(size=(3, 17, 23, 4)).astype(np.float32))
    box_indices = rng.randint(0, 3, n).astype(np.int32)
    upstream = rng.normal(size=(n,) + crop_size + (4,)).astype(np.float32)

    def value_and_grad(fn, img, ind):
        with tf.GradientTape() as tape:
            tape.watch(img)
            crops = fn(img, boxes, ind, crop_size)
            loss = tf.reduce_sum(crops * upstream)
        return crops.numpy(), tape.gradient(loss, img).numpy()

    got, got_grad = value_and_grad(crop_and_resize_gather, image, box_indices)
    want = tf.image.crop_and_resize(image, boxes, box_indices, crop_size).numpy()
    assert got.shape == want.shape == (n,) + crop_size + (4,)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.any(got == 0.0) and np.any(got != 0.0)   # extrapolated + sampled
    np.testing.assert_allclose(got_grad, naive_crop_vjp(
        image.shape, boxes, box_indices, crop_size, upstream), rtol=1e-5, atol=2e-5)

    one_each = tf.constant(rng.normal(size=(n, 9, 6, 4)).astype(np.float32))
    own = np.arange(n, dtype=np.int32)
    got, got_grad = value_and_grad(crop_and_resize_gather, one_each, own)
    want, want_grad = value_and_grad(tf.image.crop_and_resize, one_each, own)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-5, atol=1e-5)


def test_pyramid_gather_sampler_equals_default_and_compiles_with_xla():
    """PyramidROIAlign(sampler="gather") pools the same values, with the
    same gradients w.r.t. every level, as the CropAndResize path, also when
    compiled by XLA (the default path cannot be: no XLA kernel)."""
    rng = np.random.RandomState(3)
    features = [tf.constant(f) for f in _pyramid(rng, 2, channels=5)]
    boxes, meta = _boxes(2), _meta(2)
    default = PyramidROIAlign([7, 7], name="roi_align_classifier")
    gather = PyramidROIAlign([7, 7], name="roi_align_classifier", sampler="gather")
    upstream = rng.normal(size=(2, 7, 7, 7, 5)).astype(np.float32)

    def run(layer, jit=False):
        @tf.function(jit_compile=jit)
        def fn(features):
            with tf.GradientTape() as tape:
                tape.watch(features)
                pooled = layer([boxes, meta] + features)
                loss = tf.reduce_sum(pooled * upstream)
            return pooled, tape.gradient(loss, features)
        pooled, grads = fn(features)
        return pooled.numpy(), [g.numpy() for g in grads]

    want, want_grads = run(default)
    for jit in (False, True):
        got, got_grads = run(gather, jit)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        for g, w in zip(got_grads, want_grads):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=2e-5)
    assert sum(float(np.abs(g).sum()) > 0 for g in want_grads) == 4
    # the sampler travels in the layer config; the default is not written
    assert "sampler" not in default.get_config()
    assert PyramidROIAlign.from_config(gather.get_config()).sampler == "gather"
    with pytest.raises(ValueError, match="roi_align_mask.*sampler"):
        PyramidROIAlign([7, 7], name="roi_align_mask", sampler="nearest")


def _crop_ops(concrete):
    """CropAndResize ops of a concrete function's graph."""
    return [op for op in concrete.graph.get_operations()
            if op.type == "CropAndResize"]


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
def test_crop_every_level_equals_the_level_partition(dtype):
    rng = np.random.RandomState(5)
    batch = 3
    features = [tf.cast(f, dtype) for f in _pyramid(rng, batch)]
    boxes, meta = _boxes(batch), _meta(batch)
    assert set(roi_levels_graph(boxes, meta[0, 4:7]).numpy().ravel()) == {2, 3, 4, 5}
    inputs = [boxes, meta] + features
    by_level = PyramidROIAlign([7, 7], name="roi_align_classifier")(inputs)
    every = PyramidROIAlign([7, 7], name="roi_align_classifier",
                            crop_every_level=True)(inputs)
    assert every.shape == by_level.shape and every.dtype == by_level.dtype
    # the same CropAndResize on the same boxes: bit-identical
    np.testing.assert_array_equal(tf.cast(every, tf.float32).numpy(),
                                  tf.cast(by_level, tf.float32).numpy())


def test_crop_every_level_gives_every_crop_a_static_box_count():
    # The level partition's crops have run-time box counts (TensorFlow's
    # cost model then logs "Error in PredictCost()" for each); crop_every_level's
    # have B * N boxes, known when B and N are.
    specs = [tf.TensorSpec([2, 7, 4]), tf.TensorSpec([2, 15])] + [
        tf.TensorSpec([2, None, None, 3]) for _ in range(4)]
    counts = {}
    for every in (False, True):
        layer = PyramidROIAlign([5, 5], name="roi_align_mask",
                                crop_every_level=every)
        concrete = tf.function(lambda *x: layer(list(x))).get_concrete_function(*specs)
        counts[every] = [op.inputs[1].shape[0] for op in _crop_ops(concrete)]
    assert counts[False] == [None] * 4
    assert counts[True] == [14] * 4
    # and the config says so
    layer = PyramidROIAlign([5, 5], name="roi_align_mask", crop_every_level=True)
    clone = PyramidROIAlign.from_config(layer.get_config())
    assert clone.crop_every_level and clone.get_config() == layer.get_config()
    assert "crop_every_level" not in PyramidROIAlign([5, 5]).get_config()


def test_gather_sampler_eagerly_rounds_far_edges_as_crop_and_resize():
    """Boxes with x2 = 1.0: CropAndResize's float32 arithmetic puts the last
    sample just past the map for some of them (0 there); the gather
    sampler, run eagerly, computes the same positions to the bit."""
    rng = np.random.default_rng(1)
    count, crop = 4000, 7
    image = rng.standard_normal((1, 64, 64, 1)).astype(np.float32) + 10.0
    x1 = rng.uniform(0.0, 0.99, count).astype(np.float32)
    boxes = np.stack([np.zeros(count), x1, np.full(count, 0.5), np.ones(count)],
                     axis=1).astype(np.float32)
    indices = np.zeros(count, np.int32)
    reference = tf.image.crop_and_resize(image, boxes, indices, (crop, crop)).numpy()
    zeroed = reference[:, 0, -1, 0] == 0
    assert 0 < zeroed.sum() < count        # the case exists
    gathered = crop_and_resize_gather(image, boxes, indices, (crop, crop)).numpy()
    np.testing.assert_array_equal(gathered[:, 0, -1, 0] == 0, zeroed)
    np.testing.assert_allclose(gathered, reference, rtol=1e-5, atol=1e-5)
