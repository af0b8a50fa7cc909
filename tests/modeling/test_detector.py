"""mrcnn.modeling.detector: one host pipeline (check, mold, group by shape,
anchors, engine, unmold) for MaskRCNN.detect and OpenVINODetector.detect.

"pad64" resizing on three image sizes: three molded shapes, so grouping,
per-shape anchors and unmolding from a non-square window all run.
"""
import numpy as np
import pytest

from conftest import make_tiny_config
from mrcnn.core.anchors import anchors_for_shape
from mrcnn.modeling.detector import Detector

SIZES = [(64, 64), (64, 128), (64, 64), (100, 70)]


def _config(**overrides):
    overrides = dict(dict(IMAGE_RESIZE_MODE="pad64", IMAGE_MIN_DIM=64,
                          IMAGE_MAX_DIM=None, IMAGES_PER_GPU=2), **overrides)
    return make_tiny_config(**overrides)


def _images(seed=0):
    rng = np.random.RandomState(seed)
    return [rng.randint(0, 256, s + (3,)).astype(np.uint8) for s in SIZES]


class Recorder(object):
    """An engine's run function, called through; keeps what it was given."""

    def __init__(self, run):
        self.run = run
        self.calls = []

    def __call__(self, molded_images, image_metas, anchors):
        self.calls.append((np.array(molded_images), np.array(image_metas),
                           anchors))
        return self.run(molded_images, image_metas, anchors)


def _window_engine(config):
    """A numpy engine: per image one class-1 detection, score 0.9, on the
    image's window (read from its meta), and an all-ones mask."""
    from mrcnn.core.boxes import norm_boxes
    from mrcnn.core.image_meta import parse_image_meta

    def run(molded_images, image_metas, anchors):
        batch = len(molded_images)
        windows = parse_image_meta(image_metas)["window"]
        detections = np.zeros([batch, config.DETECTION_MAX_INSTANCES, 6], np.float32)
        for j in range(batch):
            box = norm_boxes(windows[j][None], molded_images.shape[1:3])[0]
            detections[j, 0] = list(box) + [1, 0.9]
        masks = np.ones([batch, config.DETECTION_MAX_INSTANCES] +
                        list(config.MASK_SHAPE) + [config.NUM_CLASSES], np.float32)
        return detections, masks
    return run


def test_detector_groups_by_shape_anchors_each_batch_and_unmolds():
    config = _config()
    engine = Recorder(_window_engine(config))
    results = Detector(config, engine).detect(_images())
    # Shapes (64, 64) twice (one batch of 2), (64, 128), (128, 128).
    shapes = [call[0].shape for call in engine.calls]
    assert shapes == [(2, 64, 64, 3), (1, 64, 128, 3), (1, 128, 128, 3)]
    for molded, metas, anchors in engine.calls:
        cached = anchors_for_shape(config, molded.shape[1:3])
        assert anchors.shape == (len(molded),) + cached.shape
        assert np.shares_memory(anchors, cached)  # the cached array, broadcast
        assert metas.shape == (len(molded), config.IMAGE_META_SIZE)
    # Input order; the window's box is the whole original image.
    assert len(results) == len(SIZES)
    for (h, w), result in zip(SIZES, results):
        np.testing.assert_array_equal(result["rois"], [[0, 0, h, w]])
        np.testing.assert_array_equal(result["class_ids"], [1])
        assert result["masks"].shape == (h, w, 1) and result["masks"].all()


def test_detect_molded_uses_the_molded_frame():
    config = _config()
    detector = Detector(config, _window_engine(config))
    images = _images()[:2]
    molded = detector.mold(images[:1])[0]
    result = detector.detect_molded(molded[0][None], molded[1][None])[0]
    # Window [0, 0, 64, 64] of a 64 x 64 molded image, in its own frame.
    np.testing.assert_array_equal(result["rois"], [[0, 0, 64, 64]])
    with pytest.raises(ValueError, match="detect_molded: image_metas"):
        detector.detect_molded(molded[0][None], np.zeros((1, 5)))


def test_detector_names_the_bad_image():
    detector = Detector(_config(), lambda *args: pytest.fail("engine ran"))
    with pytest.raises(ValueError, match="image 1"):
        detector.detect([np.zeros((64, 64, 3), np.uint8),
                         np.zeros((64, 64, 4), np.uint8)])


def _zeros_ov_model(config):
    """An OpenVINO model with the inference model's inputs and the outputs
    detect() reads (zeros: no detections), built from opset ops in a
    second, so that the OpenVINODetector runs a real compiled model
    without converting a network."""
    ov = pytest.importorskip("openvino")
    import openvino.opset13 as ops
    from mrcnn.core.outputs import DETECT_OUTPUTS, INFERENCE_INPUTS
    image, meta, anchors = [
        ops.parameter(ov.PartialShape(shape), ov.Type.f32, name=name)
        for name, shape in zip(INFERENCE_INPUTS, (
            [-1, -1, -1, 3], [-1, config.IMAGE_META_SIZE], [-1, -1, 4]))]
    for p, name in zip((image, meta, anchors), INFERENCE_INPUTS):
        p.output(0).get_tensor().set_names({name})
    batch = ops.gather(ops.shape_of(image), ops.constant([0]), ops.constant(0))
    rows = config.DETECTION_MAX_INSTANCES
    outputs = []
    for name, tail in zip(DETECT_OUTPUTS, ([rows, 6], [rows] + list(
            config.MASK_SHAPE) + [config.NUM_CLASSES])):
        out = ops.broadcast(ops.constant(np.zeros([1] + tail, np.float32)),
                            ops.concat([batch, ops.constant(tail, np.int64)], 0))
        out.output(0).get_tensor().set_names({name})
        outputs.append(out)
    return ov.Model(outputs, [image, meta, anchors], "zeros")


def test_openvino_and_maskrcnn_share_the_host_pipeline(tmp_path):
    """Same molded inputs, metas and anchors (the very cached array) reach
    both engines for the same images; each engine's compiled model or
    graph is the only difference."""
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    config = _config()
    ov_model = _zeros_ov_model(config)
    from mrcnn.export.openvino import OpenVINODetector
    model = MaskRCNN("inference", config, str(tmp_path))
    detector = OpenVINODetector(ov_model, config)
    assert isinstance(model.detector, Detector)
    assert isinstance(detector.pipeline, Detector)
    keras_run = model._run_graph_batch = Recorder(model._run_graph_batch)
    ov_run = detector.pipeline.run = Recorder(detector.pipeline.run)
    images = _images()
    expected = model.detect(images)
    got = detector.detect(images)
    assert len(keras_run.calls) == len(ov_run.calls) == 3
    for (m1, meta1, a1), (m2, meta2, a2) in zip(keras_run.calls, ov_run.calls):
        np.testing.assert_array_equal(m1, m2)
        np.testing.assert_array_equal(meta1, meta2)
        cached = anchors_for_shape(config, m1.shape[1:3])
        assert np.shares_memory(a1, cached) and np.shares_memory(a2, cached)
    assert model.get_anchors((64, 128)) is detector.pipeline.anchors((64, 128, 3))
    # One compiled model per molded shape, sized by those anchors.
    assert len(detector._compiled) == 3
    for e, g, (h, w) in zip(expected, got, SIZES):
        assert e["masks"].shape[:2] == g["masks"].shape[:2] == (h, w)
        assert len(g["class_ids"]) == 0   # the zeros model detects nothing
