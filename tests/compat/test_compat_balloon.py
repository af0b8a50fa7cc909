"""Compatibility: user scripts derived from Matterport's samples/balloon/balloon.py.

BalloonConfig, a BalloonDataset written as in balloon.py (VIA json, masks
rasterised with skimage.draw.polygon), color_splash and a one-step training
run, against ../shared/data/balloon. 13 train polygons touch the border:
balloon.py's unclipped load_mask then indexes out of range; the package must
name the image and the fix, and the clipped variant must train.
"""
import datetime
import json
import os

import numpy as np
import pytest
import skimage.color
import skimage.draw
import skimage.io

from conftest import shared_path
from mrcnn.config import Config
from mrcnn import utils
import mrcnn.model as modellib


class BalloonConfig(Config):
    NAME = "balloon"
    IMAGES_PER_GPU = 2
    NUM_CLASSES = 1 + 1  # Background + balloon
    STEPS_PER_EPOCH = 1          # balloon.py: 100
    DETECTION_MIN_CONFIDENCE = 0.9
    # Tiny-test sizes (not in balloon.py).
    BACKBONE = "resnet50"
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    PRE_NMS_LIMIT = 500
    POST_NMS_ROIS_TRAINING = 200
    POST_NMS_ROIS_INFERENCE = 100
    TRAIN_ROIS_PER_IMAGE = 32
    RPN_TRAIN_ANCHORS_PER_IMAGE = 64
    FPN_CLASSIF_FC_LAYERS_SIZE = 256
    MAX_GT_INSTANCES = 10
    DETECTION_MAX_INSTANCES = 20
    VALIDATION_STEPS = 1


class BalloonDataset(utils.Dataset):
    """balloon.py's dataset, verbatim in behaviour (no clipping)."""

    def load_balloon(self, dataset_dir, subset, limit=None):
        self.add_class("balloon", 1, "balloon")
        assert subset in ["train", "val"]
        dataset_dir = os.path.join(dataset_dir, subset)
        annotations = json.load(open(os.path.join(dataset_dir, "via_region_data.json")))
        annotations = list(annotations.values())  # don't need the dict keys
        annotations = [a for a in annotations if a['regions']]
        for a in annotations[:limit]:
            if type(a['regions']) is dict:
                polygons = [r['shape_attributes'] for r in a['regions'].values()]
            else:
                polygons = [r['shape_attributes'] for r in a['regions']]
            image_path = os.path.join(dataset_dir, a['filename'])
            image = skimage.io.imread(image_path)
            height, width = image.shape[:2]
            self.add_image(
                "balloon",
                image_id=a['filename'],  # use file name as a unique image id
                path=image_path,
                width=width, height=height,
                polygons=polygons)

    def load_mask(self, image_id):
        image_info = self.image_info[image_id]
        if image_info["source"] != "balloon":
            return super(self.__class__, self).load_mask(image_id)
        info = self.image_info[image_id]
        mask = np.zeros([info["height"], info["width"], len(info["polygons"])],
                        dtype=np.uint8)
        for i, p in enumerate(info["polygons"]):
            rr, cc = skimage.draw.polygon(p['all_points_y'], p['all_points_x'])
            mask[rr, cc, i] = 1
        return mask.astype(np.bool), np.ones([mask.shape[-1]], dtype=np.int32)

    def image_reference(self, image_id):
        info = self.image_info[image_id]
        if info["source"] == "balloon":
            return info["path"]
        else:
            super(self.__class__, self).image_reference(image_id)


class ClippedBalloonDataset(BalloonDataset):
    """What careful users write: clip the polygon to the image."""

    def load_mask(self, image_id):
        info = self.image_info[image_id]
        mask = np.zeros([info["height"], info["width"], len(info["polygons"])],
                        dtype=np.uint8)
        for i, p in enumerate(info["polygons"]):
            rr, cc = skimage.draw.polygon(p['all_points_y'], p['all_points_x'],
                                          shape=(info["height"], info["width"]))
            mask[rr, cc, i] = 1
        return mask.astype(bool), np.ones([mask.shape[-1]], dtype=np.int32)


def color_splash(image, mask):
    gray = skimage.color.gray2rgb(skimage.color.rgb2gray(image)) * 255
    if mask.shape[-1] > 0:
        mask = (np.sum(mask, -1, keepdims=True) >= 1)
        splash = np.where(mask, image, gray).astype(np.uint8)
    else:
        splash = gray.astype(np.uint8)
    return splash


def _border_image_ids(dataset):
    """Image ids with a polygon vertex at x >= width or y >= height."""
    out = []
    for image_id in dataset.image_ids:
        info = dataset.image_info[image_id]
        for p in info["polygons"]:
            if max(p["all_points_x"]) >= info["width"] or \
                    max(p["all_points_y"]) >= info["height"]:
                out.append(image_id)
                break
    return out


@pytest.fixture(scope="module")
def balloon_root():
    return shared_path("balloon")


def test_unclipped_load_mask_gets_a_clear_error(balloon_root):
    config = BalloonConfig()
    dataset = BalloonDataset()
    dataset.load_balloon(balloon_root, "train")
    dataset.prepare()
    assert dataset.class_names == ["BG", "balloon"]
    assert len(dataset.image_ids) == 61
    bad = _border_image_ids(dataset)
    assert bad, "the shared balloon set should have border polygons"
    image_id = bad[0]
    with pytest.raises(IndexError) as err:
        modellib.load_image_gt(dataset, config, image_id, use_mini_mask=False)
    message = str(err.value)
    assert dataset.image_info[image_id]["path"] in message
    assert "shape=(height, width)" in message
    # A clean image of the same unclipped dataset loads fine.
    good = [i for i in dataset.image_ids if i not in bad][0]
    image, meta, class_ids, bbox, mask = modellib.load_image_gt(
        dataset, config, good, use_mini_mask=False)
    assert image.shape == (128, 128, 3) and mask.shape[:2] == (128, 128)
    assert class_ids.dtype == np.int32 and np.all(class_ids == 1)


def test_balloon_train_then_splash(balloon_root, tmp_path):
    config = BalloonConfig()
    config.display()
    dataset_train = ClippedBalloonDataset()
    dataset_train.load_balloon(balloon_root, "train", limit=6)
    dataset_train.prepare()
    dataset_val = ClippedBalloonDataset()
    dataset_val.load_balloon(balloon_root, "val", limit=2)
    dataset_val.prepare()
    # Clipped masks of border images stay inside the image.
    for image_id in _border_image_ids(dataset_train):
        mask, class_ids = dataset_train.load_mask(image_id)
        assert mask.any(axis=(0, 1)).all()

    model = modellib.MaskRCNN(mode="training", config=config,
                              model_dir=str(tmp_path))
    print("Training network heads")
    model.train(dataset_train, dataset_val,
                learning_rate=config.LEARNING_RATE,
                epochs=1,
                layers='heads')
    checkpoint = os.path.join(model.log_dir, "mask_rcnn_balloon_0001.h5")
    assert os.path.isfile(checkpoint)

    # detect_and_color_splash(model, image_path=...)
    class InferenceConfig(BalloonConfig):
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1
        DETECTION_MIN_CONFIDENCE = 0.0  # untrained: keep some detections
    model = modellib.MaskRCNN(mode="inference", config=InferenceConfig(),
                              model_dir=str(tmp_path))
    weights_path = model.find_last()
    assert weights_path == checkpoint
    model.load_weights(weights_path, by_name=True)
    image_path = dataset_val.image_info[0]["path"]
    image = skimage.io.imread(image_path)
    r = model.detect([image], verbose=1)[0]
    assert r["masks"].shape[:2] == image.shape[:2]
    splash = color_splash(image, r['masks'])
    assert splash.shape == image.shape and splash.dtype == np.uint8
    covered = r["masks"].any(axis=-1)
    np.testing.assert_array_equal(splash[covered], image[covered])
    empty = color_splash(image, np.zeros(image.shape[:2] + (0,), bool))
    assert np.all(empty[..., 0] == empty[..., 1])  # gray everywhere
    file_name = str(tmp_path / "splash_{:%Y%m%dT%H%M%S}.png".format(
        datetime.datetime.now()))
    skimage.io.imsave(file_name, splash)
    assert os.path.getsize(file_name) > 0
