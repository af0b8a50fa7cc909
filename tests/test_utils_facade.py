"""Tests of the mrcnn.utils façade: Matterport names, signatures, batch_slice."""
import inspect
import subprocess
import sys

import numpy as np
import pytest

from mrcnn import utils

MATTERPORT_NAMES = [
    "extract_bboxes", "compute_iou", "compute_overlaps", "compute_overlaps_masks",
    "non_max_suppression", "apply_box_deltas", "box_refinement", "resize_image",
    "resize_mask", "minimize_mask", "expand_mask", "unmold_mask", "generate_anchors",
    "generate_pyramid_anchors", "trim_zeros", "compute_matches", "compute_ap",
    "compute_ap_range", "compute_recall", "batch_slice", "download_trained_weights",
    "norm_boxes", "denorm_boxes", "resize", "Dataset", "COCO_MODEL_URL",
    "compose_image_meta", "parse_image_meta", "mold_image", "unmold_image",
    "compute_backbone_shapes",
]


def params(fn):
    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]


def test_all_matterport_names_present():
    missing = [n for n in MATTERPORT_NAMES if not hasattr(utils, n)]
    assert not missing
    assert utils.COCO_MODEL_URL == (
        "https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5")


def test_matterport_signatures():
    empty = inspect.Parameter.empty
    assert params(utils.resize_image) == [("image", empty), ("min_dim", None), ("max_dim", None),
                                          ("min_scale", None), ("mode", "square")]
    assert params(utils.resize_mask) == [("mask", empty), ("scale", empty), ("padding", empty),
                                         ("crop", None)]
    assert params(utils.compute_ap)[-1] == ("iou_threshold", 0.5)
    assert params(utils.compute_matches)[-2:] == [("iou_threshold", 0.5), ("score_threshold", 0.0)]
    assert params(utils.compute_ap_range)[-2:] == [("iou_thresholds", None), ("verbose", 1)]
    assert params(utils.batch_slice) == [("inputs", empty), ("graph_fn", empty),
                                         ("batch_size", empty), ("names", None)]
    assert params(utils.download_trained_weights) == [("coco_model_path", empty), ("verbose", 1)]
    assert [n for n, _ in params(utils.resize)] == [
        "image", "output_shape", "order", "mode", "cval", "clip", "preserve_range",
        "anti_aliasing", "anti_aliasing_sigma"]
    assert params(utils.resize)[2:] == [("order", 1), ("mode", "constant"), ("cval", 0),
                                        ("clip", True), ("preserve_range", False),
                                        ("anti_aliasing", False), ("anti_aliasing_sigma", None)]
    assert params(utils.Dataset.__init__) == [("self", empty), ("class_map", None)]
    assert params(utils.Dataset.prepare) == [("self", empty), ("class_map", None)]
    assert [n for n, _ in params(utils.Dataset.add_image)] == [
        "self", "source", "image_id", "path", "kwargs"]
    assert [n for n, _ in params(utils.non_max_suppression)] == ["boxes", "scores", "threshold"]


def test_import_does_not_load_tensorflow():
    code = "import sys, mrcnn.utils; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_batch_slice_numpy():
    x = np.arange(12).reshape(3, 4)
    y = np.ones((3, 2))
    total, first = utils.batch_slice([x, y], lambda a, b: (a.sum() + b.sum(), a[:1]), 3)
    np.testing.assert_array_equal(total, [8, 24, 40])
    np.testing.assert_array_equal(first, [[0], [4], [8]])
    single = utils.batch_slice(x, lambda a: a * 2, 3)
    np.testing.assert_array_equal(single, x * 2)


def test_batch_slice_tensorflow():
    tf = pytest.importorskip("tensorflow")
    x = tf.reshape(tf.range(12, dtype=tf.float32), (3, 4))
    out = utils.batch_slice(x, lambda a: tf.reduce_max(a), 3, names=["max"])
    assert isinstance(out, tf.Tensor)
    np.testing.assert_array_equal(out.numpy(), [3, 7, 11])
