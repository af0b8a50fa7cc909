"""Compatibility: the body of Matterport's samples/shapes/train_shapes.ipynb.

The notebook's own code (config subclass, ShapesDataset with draw_shape /
random_shape / random_image, training heads then all, find_last, inference
model, detect, display, mAP loop) runs unchanged against this package;
only the sizes are tiny (R50, 2 images a batch, 1 step an epoch).
"""
import math
import os
import random

import h5py
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import cv2  # noqa: E402

from mrcnn.config import Config  # noqa: E402
from mrcnn import utils  # noqa: E402
import mrcnn.model as modellib  # noqa: E402
from mrcnn import visualize  # noqa: E402
from mrcnn.model import log  # noqa: E402


class ShapesConfig(Config):
    """Configuration for training on the toy shapes dataset."""
    NAME = "shapes"
    GPU_COUNT = 1
    IMAGES_PER_GPU = 2          # notebook: 8
    NUM_CLASSES = 1 + 3  # background + 3 shapes
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)  # anchor side in pixels
    TRAIN_ROIS_PER_IMAGE = 32
    STEPS_PER_EPOCH = 1         # notebook: 100
    VALIDATION_STEPS = 1        # notebook: 5
    # Tiny-test sizes (not in the notebook).
    BACKBONE = "resnet50"
    PRE_NMS_LIMIT = 500
    POST_NMS_ROIS_TRAINING = 200
    POST_NMS_ROIS_INFERENCE = 100
    RPN_TRAIN_ANCHORS_PER_IMAGE = 64
    FPN_CLASSIF_FC_LAYERS_SIZE = 256
    MAX_GT_INSTANCES = 10
    DETECTION_MAX_INSTANCES = 20


def get_ax(rows=1, cols=1, size=8):
    _, ax = plt.subplots(rows, cols, figsize=(size * cols, size * rows))
    return ax


class ShapesDataset(utils.Dataset):
    """The notebook's synthetic shapes dataset (squares, circles, triangles)."""

    def load_shapes(self, count, height, width):
        self.add_class("shapes", 1, "square")
        self.add_class("shapes", 2, "circle")
        self.add_class("shapes", 3, "triangle")
        for i in range(count):
            bg_color, shapes = self.random_image(height, width)
            self.add_image("shapes", image_id=i, path=None,
                           width=width, height=height,
                           bg_color=bg_color, shapes=shapes)

    def load_image(self, image_id):
        info = self.image_info[image_id]
        bg_color = np.array(info['bg_color']).reshape([1, 1, 3])
        image = np.ones([info['height'], info['width'], 3], dtype=np.uint8)
        image = image * bg_color.astype(np.uint8)
        for shape, color, dims in info['shapes']:
            image = self.draw_shape(image, shape, dims, color)
        return image

    def image_reference(self, image_id):
        info = self.image_info[image_id]
        if info["source"] == "shapes":
            return info["shapes"]
        else:
            super(self.__class__).image_reference(self, image_id)

    def load_mask(self, image_id):
        info = self.image_info[image_id]
        shapes = info['shapes']
        count = len(shapes)
        mask = np.zeros([info['height'], info['width'], count], dtype=np.uint8)
        for i, (shape, _, dims) in enumerate(info['shapes']):
            mask[:, :, i:i + 1] = self.draw_shape(mask[:, :, i:i + 1].copy(),
                                                  shape, dims, 1)
        # Handle occlusions
        occlusion = np.logical_not(mask[:, :, -1]).astype(np.uint8)
        for i in range(count - 2, -1, -1):
            mask[:, :, i] = mask[:, :, i] * occlusion
            occlusion = np.logical_and(occlusion, np.logical_not(mask[:, :, i]))
        # Map class names to class IDs.
        class_ids = np.array([self.class_names.index(s[0]) for s in shapes])
        return mask.astype(np.bool), class_ids.astype(np.int32)

    def draw_shape(self, image, shape, dims, color):
        x, y, s = dims
        if shape == 'square':
            cv2.rectangle(image, (x - s, y - s), (x + s, y + s), color, -1)
        elif shape == "circle":
            cv2.circle(image, (x, y), s, color, -1)
        elif shape == "triangle":
            points = np.array([[(x, y - s),
                                (x - s / math.sin(math.radians(60)), y + s),
                                (x + s / math.sin(math.radians(60)), y + s),
                                ]], dtype=np.int32)
            cv2.fillPoly(image, points, color)
        return image

    def random_shape(self, height, width):
        shape = random.choice(["square", "circle", "triangle"])
        color = tuple([random.randint(0, 255) for _ in range(3)])
        buffer = 20
        y = random.randint(buffer, height - buffer - 1)
        x = random.randint(buffer, width - buffer - 1)
        s = random.randint(buffer, height // 4)
        return shape, color, (x, y, s)

    def random_image(self, height, width):
        bg_color = np.array([random.randint(0, 255) for _ in range(3)])
        shapes = []
        boxes = []
        N = random.randint(1, 4)
        for _ in range(N):
            shape, color, dims = self.random_shape(height, width)
            shapes.append((shape, color, dims))
            x, y, s = dims
            boxes.append([y - s, x - s, y + s, x + s])
        keep_ixs = utils.non_max_suppression(np.array(boxes), np.arange(N), 0.3)
        shapes = [s for i, s in enumerate(shapes) if i in keep_ixs]
        return bg_color, shapes


def test_train_shapes_notebook(tmp_path, capsys):
    MODEL_DIR = str(tmp_path / "logs")

    # ---- Configurations
    config = ShapesConfig()
    config.display()
    printed = capsys.readouterr().out
    assert "BATCH_SIZE" in printed and "IMAGE_SHAPE" in printed
    assert config.BATCH_SIZE == 2
    assert list(config.IMAGE_SHAPE) == [128, 128, 3]

    # ---- Dataset
    dataset_train = ShapesDataset()
    dataset_train.load_shapes(6, config.IMAGE_SHAPE[0], config.IMAGE_SHAPE[1])
    dataset_train.prepare()
    dataset_val = ShapesDataset()
    dataset_val.load_shapes(3, config.IMAGE_SHAPE[0], config.IMAGE_SHAPE[1])
    dataset_val.prepare()
    assert dataset_train.class_names == ["BG", "square", "circle", "triangle"]
    assert list(dataset_train.image_ids) == list(range(6))

    image_ids = np.random.choice(dataset_train.image_ids, 4)
    for image_id in image_ids:
        image = dataset_train.load_image(image_id)
        mask, class_ids = dataset_train.load_mask(image_id)
        visualize.display_top_masks(image, mask, class_ids,
                                    dataset_train.class_names)
    plt.close("all")

    # ---- Create model in training mode; start from "last" is impossible
    # (no run yet) and there are no COCO weights: random init.
    model = modellib.MaskRCNN(mode="training", config=config,
                              model_dir=MODEL_DIR)
    with pytest.raises(FileNotFoundError):
        model.find_last()

    # ---- Training: heads, then all
    model.train(dataset_train, dataset_val,
                learning_rate=config.LEARNING_RATE,
                epochs=1,
                layers='heads')
    model.train(dataset_train, dataset_val,
                learning_rate=config.LEARNING_RATE / 10,
                epochs=2,
                layers="all")
    assert model.epoch == 2
    run_dir = model.log_dir
    assert os.path.basename(run_dir).startswith("shapes")
    assert sorted(f for f in os.listdir(run_dir) if f.endswith(".h5")) == [
        "mask_rcnn_shapes_0001.h5", "mask_rcnn_shapes_0002.h5"]
    losses = model.keras_model.metrics_names
    assert losses[0] == "loss" and "mrcnn_mask_loss" in losses

    # ---- Save weights manually (plain .h5: Matterport's Keras 2 layout)
    model_path = os.path.join(MODEL_DIR, "mask_rcnn_shapes.h5")
    model.keras_model.save_weights(model_path)
    with h5py.File(model_path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n
                 for n in f.attrs["layer_names"]]
        assert "rpn_model" in names and "mrcnn_mask" in names
        assert "conv1/kernel:0" in [
            n.decode() if isinstance(n, bytes) else n
            for n in f["conv1"].attrs["weight_names"]]
    trained_mask_kernel = model.keras_model.get_layer(
        "mrcnn_mask").get_weights()[0]

    # ---- Detection
    class InferenceConfig(ShapesConfig):
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1

    inference_config = InferenceConfig()
    model = modellib.MaskRCNN(mode="inference",
                              config=inference_config,
                              model_dir=MODEL_DIR)
    model_path = model.find_last()
    assert model_path == os.path.join(run_dir, "mask_rcnn_shapes_0002.h5")
    print("Loading weights from ", model_path)
    model.load_weights(model_path, by_name=True)
    np.testing.assert_array_equal(
        model.keras_model.get_layer("mrcnn_mask").get_weights()[0],
        trained_mask_kernel)

    image_id = random.choice(dataset_val.image_ids)
    original_image, image_meta, gt_class_id, gt_bbox, gt_mask = \
        modellib.load_image_gt(dataset_val, inference_config,
                               image_id, use_mini_mask=False)
    log("original_image", original_image)
    log("image_meta", image_meta)
    log("gt_class_id", gt_class_id)
    log("gt_bbox", gt_bbox)
    log("gt_mask", gt_mask)
    assert original_image.shape == (128, 128, 3)
    assert original_image.dtype == np.uint8
    assert image_meta.shape == (inference_config.IMAGE_META_SIZE,)
    assert gt_mask.shape[:2] == (128, 128) and gt_mask.dtype == bool
    assert gt_bbox.shape == (len(gt_class_id), 4)
    visualize.display_instances(original_image, gt_bbox, gt_mask, gt_class_id,
                                dataset_train.class_names, figsize=(8, 8))

    results = model.detect([original_image], verbose=1)
    assert len(results) == 1
    r = results[0]
    visualize.display_instances(original_image, r['rois'], r['masks'],
                                r['class_ids'], dataset_val.class_names,
                                r['scores'], ax=get_ax())
    plt.close("all")
    n = len(r["class_ids"])
    assert r["rois"].shape == (n, 4)
    assert r["masks"].shape == (128, 128, n) and r["masks"].dtype == bool
    assert r["scores"].shape == (n,)
    assert np.all(r["scores"] >= inference_config.DETECTION_MIN_CONFIDENCE)
    assert np.all((r["class_ids"] >= 1) & (r["class_ids"] <= 3))

    # The manually saved plain .h5 loads into the inference model as well.
    model.keras_model.load_weights(model_path, by_name=True)
    again = model.detect([original_image])[0]
    np.testing.assert_array_equal(again["rois"], r["rois"])

    # ---- Evaluation: VOC-style mAP @ IoU=0.5
    image_ids = np.random.choice(dataset_val.image_ids, 3)
    APs = []
    for image_id in image_ids:
        image, image_meta, gt_class_id, gt_bbox, gt_mask = \
            modellib.load_image_gt(dataset_val, inference_config,
                                   image_id, use_mini_mask=False)
        molded_images = np.expand_dims(
            modellib.mold_image(image, inference_config), 0)
        assert molded_images.shape == (1, 128, 128, 3)
        results = model.detect([image], verbose=0)
        r = results[0]
        AP, precisions, recalls, overlaps = \
            utils.compute_ap(gt_bbox, gt_class_id, gt_mask,
                             r["rois"], r["class_ids"], r["scores"], r['masks'])
        assert overlaps.shape == (len(r["class_ids"]), len(gt_class_id))
        APs.append(AP)
    print("mAP: ", np.mean(APs))
    assert 0.0 <= np.mean(APs) <= 1.0
