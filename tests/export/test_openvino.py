"""OpenVINO detector against MaskRCNN.detect(): same detections in f32,
close ones in bf16, and the saved folder loads back to the same detector.

Two tiny seeded models: random weights (DETECTION_MIN_CONFIDENCE 0, so
every non-background RoI is kept) on "square" resizing, and
write_detecting_weights (every proposal a class-1 detection, all scores
tied) on "pad64" resizing, so molded shapes differ per image. Images of
three sizes, one square and two not.
"""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import make_tiny_config, shared_path, write_detecting_weights
from mrcnn.core.images import read_image
from mrcnn.modeling.mask_rcnn import MaskRCNN
from mrcnn.nn.box_ops import norm_boxes_graph

ov = pytest.importorskip("openvino")
from mrcnn.export import openvino as mov  # noqa: E402  (needs openvino)

IMAGE_SHAPES = [(128, 128, 3), (96, 160, 3), (150, 80, 3)]


def _images(seed=0):
    """Smooth random images: blobs give the RPN something to rank."""
    rng = np.random.RandomState(seed)
    out = []
    for h, w, c in IMAGE_SHAPES:
        small = rng.randint(0, 256, (h // 8 + 1, w // 8 + 1, c)).astype(np.float64)
        image = np.kron(small, np.ones((8, 8, 1)))[:h, :w]
        out.append(np.clip(image + rng.normal(0, 10, image.shape), 0, 255)
                   .astype(np.uint8))
    return out


def _mask_iou(a, b):
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else np.logical_and(a, b).sum() / union


def _box_iou(a, b):
    y1, x1 = max(a[0], b[0]), max(a[1], b[1])
    y2, x2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, y2 - y1) * max(0, x2 - x1)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / max(area - inter, 1e-9)


def assert_same_detections(expected, got):
    """f32 tolerances: same class ids in order, |score diff| <= 1e-4,
    boxes within 1 px, mask IoU >= 0.99 for every pair.

    Returns:
        (max score diff, min mask IoU, number of detections).
    """
    assert len(expected) == len(got)
    score_diff, min_iou, count = 0.0, 1.0, 0
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g["class_ids"], e["class_ids"])
        assert g["masks"].shape == e["masks"].shape
        assert g["rois"].dtype == np.int32 and g["masks"].dtype == bool
        if len(e["class_ids"]) == 0:
            continue
        score_diff = max(score_diff, float(np.abs(g["scores"] - e["scores"]).max()))
        assert np.abs(g["rois"] - e["rois"]).max() <= 1
        ious = [_mask_iou(e["masks"][..., i], g["masks"][..., i])
                for i in range(len(e["class_ids"]))]
        min_iou, count = min(min_iou, min(ious)), count + len(ious)
    assert score_diff <= 1e-4
    assert min_iou >= 0.99
    return score_diff, min_iou, count


def match_detections(expected, got):
    """Pair each expected detection with the unused same-class detection of
    highest box IoU (>= 0.5). Returns (mask IoUs of the pairs, count of
    expected detections)."""
    ious, total = [], 0
    for e, g in zip(expected, got):
        used = set()
        total += len(e["class_ids"])
        for i in range(len(e["class_ids"])):
            best, best_iou = None, 0.5
            for j in range(len(g["class_ids"])):
                if j in used or g["class_ids"][j] != e["class_ids"][i]:
                    continue
                iou = _box_iou(e["rois"][i], g["rois"][j])
                if iou >= best_iou:
                    best, best_iou = j, iou
            if best is not None:
                used.add(best)
                ious.append(_mask_iou(e["masks"][..., i], g["masks"][..., best]))
    return np.array(ious), total


def _model(tmp_path, weights, **overrides):
    config = make_tiny_config(**overrides)
    keras.utils.set_random_seed(1)
    model = MaskRCNN(mode="inference", config=config, model_dir=str(tmp_path))
    if weights == "detecting":
        model.load_weights(write_detecting_weights(
            config, os.path.join(str(tmp_path), "detecting.h5")), by_name=True)
    return model


def _tame(keras_model, factor=0.01):
    """Scale the kernels of the last RPN and head layers by `factor`.

    Untrained, the network's logits and box deltas are huge: scores
    saturate at 1.0 and boxes collapse to slivers of a few pixels, where
    any rounding changes the mask IoU. Scaled, scores spread over
    0.25-0.65 and boxes keep anchor-like sizes, closer to a trained model.
    """
    rpn = keras_model.get_layer("rpn_model")
    for layer in [rpn.get_layer("rpn_class_raw"), rpn.get_layer("rpn_bbox_pred"),
                  keras_model.get_layer("mrcnn_class_logits"),
                  keras_model.get_layer("mrcnn_bbox_fc")]:
        weights = layer.get_weights()
        layer.set_weights([weights[0] * factor] + weights[1:])


@pytest.fixture(scope="module")
def random_case(tmp_path_factory):
    """(MaskRCNN with random weights, images, its detect() results, an
    f32 OpenVINODetector converted in memory)."""
    model = _model(tmp_path_factory.mktemp("random"), "random",
                   DETECTION_MIN_CONFIDENCE=0.0)
    images = _images()
    return model, images, model.detect(images), \
        mov.OpenVINODetector.from_maskrcnn(model)


@pytest.fixture(scope="module")
def detecting_case(tmp_path_factory):
    """write_detecting_weights, "pad64" resizing (one molded shape per
    image); the detector is written by convert_to_openvino and loaded back
    from its folder. Returns (model, images, detect() results, detector,
    folder)."""
    tmp = tmp_path_factory.mktemp("detecting")
    model = _model(tmp, "detecting", IMAGE_RESIZE_MODE="pad64",
                   IMAGE_MAX_DIM=None)
    images = _images(seed=1)
    folder = mov.convert_to_openvino(model, str(tmp / "ov"),
                                     class_names=["BG", "a", "b", "c"])
    return model, images, model.detect(images), \
        mov.OpenVINODetector.load(folder), folder


def test_f32_random_weights_same_as_detect(random_case):
    model, images, expected, detector = random_case
    assert detector.precision == "f32"
    _, _, count = assert_same_detections(expected, detector.detect(images))
    assert count > 0


def test_graph_outputs_match_keras(random_case):
    """The raw outputs of one molded batch, before unmolding."""
    model, images, _, detector = random_case
    molded, metas, _ = model.mold_inputs(images[:2])
    detections, masks = detector.run_molded(molded, metas)
    expected_detections, expected_masks = model._run_inference(molded, metas)
    np.testing.assert_allclose(detections, expected_detections, atol=1e-4)
    np.testing.assert_allclose(masks, expected_masks, atol=1e-3)


def test_saved_folder_detects_as_detect(detecting_case):
    """Round trip through the folder, non-square molded shapes."""
    model, images, expected, detector, folder = detecting_case
    assert sorted(os.listdir(folder)) == ["config.json", "mask_rcnn.bin",
                                          "mask_rcnn.xml", "openvino.json"]
    assert detector.class_names == ["BG", "a", "b", "c"]
    assert detector.precision == "f32"
    assert detector.config.IMAGE_RESIZE_MODE == "pad64"
    assert detector.config.NUM_CLASSES == model.config.NUM_CLASSES
    got = detector.detect(images)
    # pad64: three molded shapes, one compiled model each
    assert len(detector._compiled) == 3
    _, _, count = assert_same_detections(expected, got)
    assert count >= 3 * model.config.DETECTION_MAX_INSTANCES // 2


def test_unknown_precision_is_refused(detecting_case, tmp_path):
    model = detecting_case[0]
    with pytest.raises(ValueError, match="precision"):
        mov.convert_to_openvino(model, str(tmp_path / "x"), precision="f8")
    assert not os.path.exists(tmp_path / "x")


@pytest.mark.skipif(not mov.bf16_supported(),
                    reason="this CPU has no BF16 (OPTIMIZATION_CAPABILITIES)")
def test_bf16_close_to_detect(tmp_path):
    """bf16 against float32 detect() on tamed random weights (see _tame).

    The issue's bar for reduced precision is mask IoU >= 0.95 for >= 95 %
    of matched pairs. Untrained tiny weights do not reach it (measured
    before the box math was kept f32: 57 of 60 detections matched, 93 %
    of pairs >= 0.95, median IoU 0.99; the misses are small boxes whose
    bf16 box deltas moved them). The asserts guard that level; the bar
    is measured on trained models by bench/bench_export.py --demo-weights
    (bench/RESULTS.md).
    """
    model = _model(tmp_path, "random", DETECTION_MIN_CONFIDENCE=0.0)
    _tame(model.keras_model)
    images = _images()
    expected = model.detect(images)
    detector = mov.OpenVINODetector.from_maskrcnn(model, "bf16")
    assert detector.precision == "bf16"
    got = detector.detect(images)
    for e, g in zip(expected, got):
        assert np.abs(np.sort(g["scores"]) - np.sort(e["scores"])).max() <= 0.01
    ious, total = match_detections(expected, got)
    assert total >= 30 and len(ious) >= 0.9 * total
    assert np.median(ious) >= 0.98
    assert np.mean(ious >= 0.95) >= 0.88


def _runtime_precisions(compiled):
    """{runtime layer name: (layer type, runtime precision)} of a compiled
    model (the CPU plugin's execution graph)."""
    out = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        out[op.get_friendly_name()] = (info["layerType"].astype(str),
                                       info["runtimePrecision"].astype(str))
    return out


@pytest.mark.skipif(not mov.bf16_supported(),
                    reason="this CPU has no BF16 (OPTIMIZATION_CAPABILITIES)")
def test_keep_float32_marks_only_the_named_ops():
    """Two convolutions under the bf16 hint: the one named stays f32."""
    import openvino.opset13 as ops
    x = ops.parameter([1, 16, 12, 12], np.float32, name="x")
    w = ops.constant(np.random.RandomState(0).randn(16, 16, 3, 3)
                     .astype(np.float32))
    conv1 = ops.convolution(x, w, [1, 1], [1, 1], [1, 1], [1, 1], name="conv1")
    conv2 = ops.convolution(conv1, w, [1, 1], [1, 1], [1, 1], [1, 1],
                            name="conv2")
    model, marked = mov.keep_float32(ov.Model([conv2], [x]), {"conv2"})
    assert marked == 1
    hint = {"INFERENCE_PRECISION_HINT": "bf16"}
    precisions = _runtime_precisions(ov.Core().compile_model(model, "CPU", hint))
    assert precisions["conv1"] == ("Convolution", "bf16")
    assert precisions["conv2"] == ("Convolution", "f32")
    # The copy computes what the original does (f32 conv2 on bf16 conv1).
    data = np.random.RandomState(1).rand(1, 16, 12, 12).astype(np.float32)
    exact = ov.Core().compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": "f32"})([data])[0]
    np.testing.assert_allclose(
        ov.Core().compile_model(model, "CPU", hint)([data])[0], exact,
        rtol=0.05, atol=0.05 * np.abs(exact).max())


@pytest.mark.skipif(not mov.bf16_supported(),
                    reason="this CPU has no BF16 (OPTIMIZATION_CAPABILITIES)")
def test_bf16_detector_keeps_box_math_in_f32(random_case):
    """A "bf16" detector: convolutions in bf16, the ops of boxes and scores
    (proposals, RoIAlign, detection) in f32; without the marks the plugin
    runs some of them in bf16."""
    model, images = random_case[0], random_case[1]
    detector = mov.OpenVINODetector.from_maskrcnn(model, "bf16")
    names = mov.box_math_ops(detector.ov_model)
    types = {op.get_friendly_name(): op.get_type_name()
             for op in detector.ov_model.get_ordered_ops()}
    assert {"TopK", "NonMaxSuppression"} & {types[n] for n in names}
    assert not any(types[n] in mov.HEAVY_OPS for n in names)
    detector.detect(images[:1])
    marked = _runtime_precisions(next(iter(detector._compiled.values())))
    plain = mov.OpenVINODetector(detector.ov_model, model.config, "bf16")
    plain._run_model = plain.ov_model          # the conversion, unmarked
    plain.detect(images[:1])
    unmarked = _runtime_precisions(next(iter(plain._compiled.values())))
    # RoIAlign (ROIPooling "bilinear", from crop_and_resize) reads the
    # boxes: bf16 in the plain conversion, f32 in the detector.
    roi_pooling = [n for n, v in marked.items() if v[0] == "ROIPooling"]
    assert len(roi_pooling) >= 2
    assert all(marked[n][1] == "f32" for n in roi_pooling)
    assert all(unmarked[n][1] == "bf16" for n in roi_pooling)
    # The ops that compute (layout ops pass their input's bf16 through;
    # an eltwise op or two fused by the plugin keep its choice).
    computing = [n for n in names if n in marked and marked[n][0] not in
                 ("Reorder", "Input", "Output", "Const", "Reshape", "Transpose")]
    assert len(computing) >= 50
    in_bf16 = [n for n in computing if marked[n][1] == "bf16"]
    assert len(in_bf16) <= 0.05 * len(computing), \
        [(n, marked[n]) for n in in_bf16][:5]
    assert any(v == ("Convolution", "bf16") for v in marked.values())


def _convert(function, *specs):
    concrete = tf.function(function, input_signature=list(specs)) \
        .get_concrete_function()
    return ov.convert_model(concrete)


def _run(model, *inputs):
    compiled = ov.Core().compile_model(model, "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled(list(inputs))[0]


def test_norm_boxes_of_a_non_square_shape_after_ellipsis_fix():
    """norm_boxes_graph(window, image_shape[:2]) of a 128 x 256 image: the
    ellipsis slices convert wrongly (w read as h) until written out."""
    model = _convert(lambda w, s: norm_boxes_graph(w, s[:2]),
                     tf.TensorSpec([1, 4]), tf.TensorSpec([3]))
    assert mov._expand_ellipsis_slices(model) == 2
    window = np.array([[0, 21, 128, 234]], np.float32)
    got = _run(model, window, np.array([128, 256, 3], np.float32))
    # (box - [0, 0, 1, 1]) / [h - 1, w - 1, h - 1, w - 1]
    np.testing.assert_allclose(got, [[0, 21 / 255, 127 / 127, 233 / 255]],
                               rtol=1e-6)


def test_batched_gather_rewritten_to_gather_nd():
    """tf.gather(anchors, top_k indices, batch_dims=1) as in ProposalLayer;
    the CPU plugin's own Gather(batch_dims=1) gives wrong rows here (or
    crashes), so only the rewritten model is run."""
    model = _convert(lambda a, i: tf.gather(a, i, batch_dims=1),
                     tf.TensorSpec([1, 4092, 4]),
                     tf.TensorSpec([1, 500], tf.int32))
    assert mov._rewrite_batched_gathers(model) == 1
    assert "Gather" not in {op.get_type_name() for op in model.get_ordered_ops()}
    rng = np.random.RandomState(0)
    anchors = rng.rand(1, 4092, 4).astype(np.float32)
    ix = rng.randint(0, 4092, (1, 500)).astype(np.int32)
    np.testing.assert_array_equal(_run(model, anchors, ix), anchors[:, ix[0]])


def test_int8_quantized_folder_round_trip(random_case, tmp_path):
    """NNCF int8 calibrated on ../shared/data/images: the quantized model
    is written and read back as "int8" and detects as before saving.
    Agreement with float32 is not asserted: untrained weights give int8
    no meaningful ranges (measured on tamed random weights, 10 calibration
    images, 4 test images: 29 of 80 detections matched by box, median mask
    IoU 0.36, class ids in the same order, scores within 0.007)."""
    pytest.importorskip("nncf")
    folder = shared_path("images")
    images = [read_image(os.path.join(folder, name))
              for name in sorted(os.listdir(folder))[:5]]
    model, test_images, _, f32 = random_case
    int8 = mov.quantize_int8(f32, images[:4])
    assert int8.precision == "int8" and mov.is_quantized(int8.ov_model)
    with pytest.raises(ValueError, match="int8"):
        mov.OpenVINODetector(f32.ov_model, model.config, "int8")
    expected = int8.detect(images[4:] + test_images[:1])
    loaded = mov.OpenVINODetector.load(int8.save(str(tmp_path / "int8")))
    assert loaded.precision == "int8"
    got = loaded.detect(images[4:] + test_images[:1])
    for e, g in zip(expected, got):
        assert g["masks"].shape[:2] == e["masks"].shape[:2]
        assert ((g["scores"] >= 0) & (g["scores"] <= 1)).all()
    assert_same_detections(expected, got)


@pytest.mark.parametrize("levels", [None, 2, 50, 100000])
def test_stable_top_k_rewrite_equals_tf_top_k(levels):
    """ProposalLayer's top_k, rewritten out of the CPU plugin's slow stable
    TopK: same values and indices as tf.nn.top_k, ties (equal values:
    lower index first) included, also at the k-th value."""
    model = _convert(lambda x, k: tf.nn.top_k(x, k, sorted=True),
                     tf.TensorSpec([None, None]), tf.TensorSpec([], tf.int32))
    assert mov._rewrite_stable_top_k(model) == 1
    assert not any(op.get_type_name() == "TopK" and
                   op.get_attributes()["sort"] == "value" and
                   op.get_attributes()["stable"]
                   for op in model.get_ordered_ops())
    compiled = ov.Core().compile_model(model, "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    rng = np.random.RandomState(0)
    for n, k in [(20000, 600), (300, 300), (1000, 17), (7, 1)]:
        x = rng.rand(2, n).astype(np.float32)
        if levels:
            x = (np.round(x * levels) / levels).astype(np.float32)
        values, indices = tf.nn.top_k(x, k, sorted=True)
        got = compiled([x, np.int32(k)])
        np.testing.assert_array_equal(got[0], values.numpy())
        np.testing.assert_array_equal(got[1], indices.numpy())


def test_roi_fc_convolution_rewritten_to_matmul():
    """A 7 x 7 valid convolution on [R, 7, 7, C] (the classifier's fc1)
    becomes a MatMul with the same results."""
    rng = np.random.RandomState(0)
    kernel = tf.constant(rng.normal(0, 0.05, (7, 7, 16, 32)).astype(np.float32))
    model = _convert(lambda x: tf.nn.conv2d(x, kernel, 1, "VALID"),
                     tf.TensorSpec([None, 7, 7, 16]))
    assert mov._rewrite_roi_fc_convolutions(model) == 1
    types = {op.get_type_name() for op in model.get_ordered_ops()}
    assert "Convolution" not in types and "MatMul" in types
    x = rng.rand(5, 7, 7, 16).astype(np.float32)
    np.testing.assert_allclose(_run(model, x), tf.nn.conv2d(x, kernel, 1, "VALID"),
                               rtol=1e-5, atol=1e-5)
