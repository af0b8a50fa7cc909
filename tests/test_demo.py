"""Tests of mrcnn/demo.py that need no training: the recipe's settings (a
fixed step count, float32 by default, anchors that fit the shapes) and its
argument checks. The end-to-end ``mrcnn demo --quick`` run is in
tests/test_cli.py."""
import numpy as np
import pytest

from mrcnn import demo, utils
from mrcnn.data.shapes import ShapesDataset


def test_default_demo_is_a_fixed_step_count_in_float32():
    # No time cap and one precision: the same seed trains the same steps,
    # and so gives the same mAP, on any machine.
    assert demo.DEFAULT_MINUTES is None
    assert demo.DEFAULT_PRECISION == "float32"
    assert demo.DEFAULT_STEPS >= 100


def test_demo_anchors_fit_the_shapes():
    """At least 90 % of the shapes' ground-truth boxes have an RPN anchor
    at IoU >= 0.7 (the RPN's positive threshold): the RPN gets positive
    anchors for nearly every object from the first step."""
    config = demo.DemoConfig()
    size = config.IMAGE_MAX_DIM
    dataset = ShapesDataset()
    dataset.load_shapes(100, size, size, seed=3)
    dataset.prepare()
    boxes = np.concatenate([utils.extract_bboxes(dataset.load_mask(i)[0])
                            for i in dataset.image_ids])
    shapes = [(int(np.ceil(size / s)),) * 2 for s in config.BACKBONE_STRIDES]
    anchors = utils.generate_pyramid_anchors(
        config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS, shapes,
        config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE)
    best = utils.compute_overlaps(anchors, boxes).max(axis=0)
    assert (best >= 0.7).mean() >= 0.9, np.percentile(best, [10, 50, 90])


@pytest.mark.parametrize("kwargs, word", [
    ({"precision": "float16"}, "precision"),
    ({"minutes": -1}, "--minutes"),
    ({"steps": -5}, "--steps"),
])
def test_run_demo_rejects_bad_options_before_work(tmp_path, kwargs, word):
    with pytest.raises(ValueError, match=word):
        demo.run_demo(output=str(tmp_path / "out"), **kwargs)
    # Nothing was generated or trained.
    assert not (tmp_path / "out" / "logs").exists()


def test_cli_help_states_the_demo_defaults():
    from mrcnn.cli import build_parser
    sub = build_parser()._subparsers._group_actions[0].choices["demo"]
    help_text = sub.format_help()
    assert "default: {}".format(demo.DEFAULT_STEPS) in help_text
    assert "default: {}".format(demo.DEFAULT_PRECISION) in help_text
