"""Compatibility: Matterport's samples/demo.ipynb (COCO InferenceConfig, the
81 class names, load_weights(COCO_MODEL_PATH, by_name=True), detect on a real
demo photo, display_instances), plus the fine-tuning load every derived
script does (exclude the class-specific heads). Tiny R50 at 128 px; the
"COCO weights" file is written by the test in the same layout.
"""
import os
import random
import sys

import matplotlib
import numpy as np
import pytest
import skimage.io

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from conftest import REPO_ROOT, shared_path  # noqa: E402
from mrcnn import visualize  # noqa: E402
import mrcnn.model as modellib  # noqa: E402

class_names = ['BG', 'person', 'bicycle', 'car', 'motorcycle', 'airplane',
               'bus', 'train', 'truck', 'boat', 'traffic light',
               'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird',
               'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear',
               'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie',
               'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball',
               'kite', 'baseball bat', 'baseball glove', 'skateboard',
               'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup',
               'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
               'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza',
               'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed',
               'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
               'keyboard', 'cell phone', 'microwave', 'oven', 'toaster',
               'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
               'teddy bear', 'hair drier', 'toothbrush']


@pytest.fixture(scope="module")
def coco():
    path = os.path.join(REPO_ROOT, "samples/coco/")
    sys.path.append(path)
    try:
        import coco as module
    finally:
        sys.path.remove(path)
    return module


class Tiny:
    """Tiny-test sizes mixed in before the notebook's config classes."""
    BACKBONE = "resnet50"
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    PRE_NMS_LIMIT = 500
    POST_NMS_ROIS_INFERENCE = 100
    POST_NMS_ROIS_TRAINING = 200
    TRAIN_ROIS_PER_IMAGE = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 256
    DETECTION_MAX_INSTANCES = 20
    DETECTION_MIN_CONFIDENCE = 0.0


def test_demo_notebook(coco, tmp_path):
    IMAGE_DIR = shared_path("images")
    MODEL_DIR = str(tmp_path / "logs")
    COCO_MODEL_PATH = str(tmp_path / "mask_rcnn_coco.h5")

    class InferenceConfig(Tiny, coco.CocoConfig):
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1

    config = InferenceConfig()
    config.display()
    assert config.BACKBONE == "resnet50" and config.IMAGE_MAX_DIM == 128
    assert config.NUM_CLASSES == len(class_names) == 81

    # Stand-in for the released weights: a model of this config, saved in
    # the Keras 2 layout through keras_model.save_weights(".h5").
    source = modellib.MaskRCNN(mode="inference", model_dir=MODEL_DIR,
                               config=config)
    source.keras_model.save_weights(COCO_MODEL_PATH)

    model = modellib.MaskRCNN(mode="inference", model_dir=MODEL_DIR,
                              config=config)
    model.load_weights(COCO_MODEL_PATH, by_name=True)
    for a, b in zip(source.keras_model.weights, model.keras_model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    file_names = sorted(next(os.walk(IMAGE_DIR))[2])
    random.seed(1)
    image = skimage.io.imread(os.path.join(IMAGE_DIR, random.choice(file_names)))
    results = model.detect([image], verbose=1)
    r = results[0]
    visualize.display_instances(image, r['rois'], r['masks'], r['class_ids'],
                                class_names, r['scores'])
    plt.close("all")
    n = len(r["class_ids"])
    assert set(r) == {"rois", "class_ids", "scores", "masks"}
    assert r["masks"].shape == image.shape[:2] + (n,)
    assert r["rois"].shape == (n, 4)
    assert r["class_ids"].dtype == np.int32 and np.all(r["class_ids"] >= 1)
    assert np.all(r["class_ids"] < 81)
    # Boxes lie inside the original image.
    h, w = image.shape[:2]
    assert np.all(r["rois"] >= 0)
    assert np.all(r["rois"][:, [0, 2]] <= h) and np.all(r["rois"][:, [1, 3]] <= w)
    # Same weights, same image: the source model agrees.
    np.testing.assert_array_equal(source.detect([image])[0]["rois"], r["rois"])


def test_finetune_from_coco_weights(coco, tmp_path):
    COCO_MODEL_PATH = str(tmp_path / "mask_rcnn_coco.h5")

    class CocoTiny(Tiny, coco.CocoConfig):
        pass
    modellib.MaskRCNN(mode="inference", model_dir=str(tmp_path),
                      config=CocoTiny()).keras_model.save_weights(COCO_MODEL_PATH)

    class BalloonConfig(CocoTiny):
        NAME = "balloon"
        NUM_CLASSES = 1 + 1
    model = modellib.MaskRCNN(mode="training", config=BalloonConfig(),
                              model_dir=str(tmp_path))
    # Without exclude the 81-class heads cannot load: a clear error.
    with pytest.raises(ValueError) as err:
        model.load_weights(COCO_MODEL_PATH, by_name=True)
    assert "mrcnn_class_logits" in str(err.value) or \
        "mrcnn_bbox_fc" in str(err.value) or "mrcnn_mask" in str(err.value)
    model.load_weights(COCO_MODEL_PATH, by_name=True, exclude=[
        "mrcnn_class_logits", "mrcnn_bbox_fc",
        "mrcnn_bbox", "mrcnn_mask"])
    # Backbone weights came from the file.
    import h5py
    with h5py.File(COCO_MODEL_PATH, "r") as f:
        kernel = f["conv1"]["conv1"]["kernel:0"][()]
    np.testing.assert_array_equal(
        model.keras_model.get_layer("conv1").get_weights()[0], kernel)
