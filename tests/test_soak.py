"""Long runs stay flat: no retracing across detect() shapes and across
train() calls with the same layers (bench/bench_soak.py has the long run)."""
import gc
import os

import numpy as np

from conftest import load_bench, make_tiny_config


def test_detect_on_three_sizes_twice_traces_once(tmp_path):
    from mrcnn.core.anchors import (ANCHOR_CACHE_SIZE, anchor_cache_len,
                                    clear_anchor_cache)
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    bench = load_bench("bench_soak")
    clear_anchor_cache()
    config = make_tiny_config(IMAGE_RESIZE_MODE="pad64", IMAGE_MIN_DIM=64,
                              IMAGE_MAX_DIM=128, IMAGES_PER_GPU=2)
    model = MaskRCNN("inference", config, str(tmp_path))
    rng = np.random.RandomState(0)
    sizes = [(64, 64), (64, 128), (128, 96)]
    calls = [[rng.randint(0, 255, s + (3,)).astype(np.uint8)] for s in sizes]
    calls.append([rng.randint(0, 255, s + (3,)).astype(np.uint8)
                  for s in sizes + sizes[:1]])
    for images in calls:
        model.detect(images)
    gc.collect()
    traces = model._predict_fn.experimental_get_tracing_count()
    functions = bench.registered_functions()
    assert anchor_cache_len() == 3  # three molded shapes
    for images in calls:
        model.detect(images)
    gc.collect()
    assert traces == 1
    assert model._predict_fn.experimental_get_tracing_count() == traces
    assert bench.registered_functions() == functions
    # The anchor cache stays bounded with ever new shapes ("none" resizing).
    for k in range(ANCHOR_CACHE_SIZE + 5):
        last = model.get_anchors((64, 64 * (k + 1)))
    assert anchor_cache_len() == ANCHOR_CACHE_SIZE
    assert model.get_anchors((64, 64 * (ANCHOR_CACHE_SIZE + 5))) is last


def test_train_again_with_the_same_layers_does_not_retrace(tmp_path):
    from mrcnn.data.shapes import ShapesDataset
    from mrcnn.modeling.mask_rcnn import MaskRCNN
    bench = load_bench("bench_soak")
    config = make_tiny_config(
        IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64, IMAGES_PER_GPU=1,
        STEPS_PER_EPOCH=2, VALIDATION_STEPS=0, TRAIN_ROIS_PER_IMAGE=16,
        POST_NMS_ROIS_TRAINING=64, PRE_NMS_LIMIT=256,
        RPN_TRAIN_ANCHORS_PER_IMAGE=32, FPN_CLASSIF_FC_LAYERS_SIZE=64,
        TOP_DOWN_PYRAMID_SIZE=64, MINI_MASK_SHAPE=(16, 16),
        MAX_GT_INSTANCES=4)
    ds = ShapesDataset()
    ds.load_shapes(4, 64, 64, seed=0)
    ds.prepare()
    model = MaskRCNN("training", config, str(tmp_path))
    model.verbose = 0
    model.train(ds, ds, 0.01, 1, "heads")
    first = model.trainer
    gc.collect()
    functions = bench.registered_functions()
    traces = bench.train_traces(first)
    assert traces >= 1
    model.train(ds, ds, 0.002, 2, "heads")
    gc.collect()
    assert model.trainer is first
    assert bench.train_traces(first) == traces
    assert bench.registered_functions() == functions
    # The optimizer restarted as a fresh one: 2 steps of this call only,
    # at this call's learning rate.
    assert int(first.optimizer.iterations.numpy()) == 2
    np.testing.assert_allclose(float(first.optimizer.learning_rate.numpy()),
                               0.002, rtol=1e-6)
    assert model.epoch == 2
    assert os.path.exists(model.checkpoint_path.format(epoch=2))
    # Other layers, other trainable variables: the key differs.
    from mrcnn.modeling import training
    model.set_trainable(r"mrcnn\_mask.*", verbose=0)
    key = training._trainer_key(model, config.LEARNING_MOMENTUM,
                                first.distribute_strategy)
    assert training._reusable_trainer(model, 0.002, key) is None
