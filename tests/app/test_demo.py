"""Tests of mrcnn/app/demo.py that need no training: the recipe's settings (a
fixed step count, float32 by default, anchors that fit the shapes) and its
argument checks. The end-to-end ``mrcnn demo --quick`` run is in
tests/test_cli.py."""
import numpy as np
import pytest

from mrcnn import utils
from mrcnn.app import demo
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


def test_demo_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    """A demo interrupted after its first checkpoint resumes (resume=True)
    from that checkpoint's step, not from step 0: the weights are the
    checkpoint's, the schedule continues, and the run directory gets the
    remaining checkpoints."""
    import os
    import keras
    from mrcnn.modeling.checkpoints import find_last_checkpoint
    from mrcnn.modeling.weights.h5layout import open_h5, read_layers, weights_root
    monkeypatch.setattr(demo, "CHECKPOINT_STEPS", 2)

    class TinyDemo(demo.DemoConfig):
        IMAGES_PER_GPU = 1
        IMAGE_MIN_DIM = IMAGE_MAX_DIM = 64
        RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
        TOP_DOWN_PYRAMID_SIZE = 32
        FPN_CLASSIF_FC_LAYERS_SIZE = 32
        PRE_NMS_LIMIT = 256
        POST_NMS_ROIS_TRAINING = 64
        TRAIN_ROIS_PER_IMAGE = 8
        RPN_TRAIN_ANCHORS_PER_IMAGE = 32
        MINI_MASK_SHAPE = (16, 16)

    data = ShapesDataset()
    data.load_shapes(6, 64, 64, seed=1)
    data.prepare()
    model_dir = str(tmp_path / "logs")

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.optimizer.iterations.numpy() == 3:
                raise KeyboardInterrupt      # Ctrl-C in step 3

    with pytest.raises(KeyboardInterrupt):
        demo.train_demo_model(data, None, 6, model_dir, 3, quick=False,
                              config_class=TinyDemo, precision=None,
                              callbacks=[Interrupt()])
    first = find_last_checkpoint(model_dir, "shapes_demo")
    assert first.endswith("_0001.h5")
    with open_h5(first) as f:
        saved = {layer.name: [w for _, w in layer.weights] for layer in
                 read_layers(weights_root(f, first), first)}
        kernel = np.array(saved["mrcnn_class_conv1"][0])

    seen = []

    class Watch(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(self.model.inner_model.get_layer(
                "mrcnn_class_conv1").get_weights()[0].copy())

        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    model, _, steps = demo.train_demo_model(
        data, None, 6, model_dir, 3, quick=False, config_class=TinyDemo,
        precision=None, callbacks=[Watch()], resume=True)
    assert steps == 6
    # epochs 2 and 3 of 2 steps: 4 steps ran, not 6
    assert seen[1:] == [0, 1, 0, 1]
    assert os.path.dirname(model.find_last()) == os.path.dirname(first)
    assert model.find_last().endswith("_0003.h5")
    np.testing.assert_array_equal(seen[0], kernel)
