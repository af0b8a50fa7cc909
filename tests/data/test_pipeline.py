"""Tests of mrcnn.data.pipeline: load_image_gt, data_generator, tf.data."""
import logging

import numpy as np
import pytest

from conftest import make_tiny_config
from mrcnn.data import pipeline
from mrcnn.data.pipeline import (build_sample, data_generator, load_image_gt,
                                 make_tf_dataset, sample_signature,
                                 training_anchors)


class RectDataset(object):
    """Duck-typed prepared Dataset: rectangles on a grey image.

    image i (H x W) holds `counts[i]` filled rectangles of class 1 + k % 3.
    """

    def __init__(self, counts, height=96, width=80, source="rects"):
        self.counts = counts
        self.height, self.width = height, width
        self.image_ids = np.arange(len(counts))
        self.image_info = [{"source": source, "id": i} for i in self.image_ids]
        self.num_classes = 4
        self.source_class_ids = {"": [0], source: [0, 1, 2, 3]}

    def image_reference(self, image_id):
        return "rect image #{}".format(image_id)

    def load_image(self, image_id):
        image = np.full((self.height, self.width, 3), 90, np.uint8)
        mask, _ = self.load_mask(image_id)
        for k in range(mask.shape[-1]):
            image[mask[:, :, k]] = (40 * k) % 255
        return image

    def load_mask(self, image_id):
        n = self.counts[image_id]
        mask = np.zeros((self.height, self.width, n), bool)
        for k in range(n):
            y, x = 4 + 7 * k % 60, 2 + 11 * k % 50
            mask[y:y + 20, x:x + 10 + k % 5, k] = True
        return mask, np.array([1 + k % 3 for k in range(n)], np.int32)


def test_load_image_gt_full_masks():
    config = make_tiny_config()
    ds = RectDataset([2, 3])
    image, meta, class_ids, bbox, mask = load_image_gt(ds, config, 1)
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert meta.shape == (config.IMAGE_META_SIZE,)
    assert class_ids.dtype == np.int32 and list(class_ids) == [1, 2, 3]
    assert bbox.shape == (3, 4) and bbox.dtype == np.int32
    assert mask.shape == (128, 128, 3) and mask.dtype == bool
    # Image 96x80 scaled by 128/96 and padded horizontally (square mode).
    scale = meta[11]
    assert scale == pytest.approx(128 / 96)
    np.testing.assert_array_equal(meta[12:], [1, 1, 1, 1])
    window = meta[7:11]
    y1, x1 = window[:2]
    # First rectangle [4:24, 2:12] of the original, resized.
    np.testing.assert_allclose(bbox[0], [y1 + 4 * scale, x1 + 2 * scale,
                                         y1 + 24 * scale, x1 + 12 * scale],
                               atol=1.5)
    # bbox agrees with the masks.
    for k in range(3):
        ys, xs = np.where(mask[:, :, k])
        assert [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1] == list(bbox[k])


def test_load_image_gt_mini_mask():
    config = make_tiny_config(MINI_MASK_SHAPE=(28, 28))
    ds = RectDataset([3])
    _, _, class_ids, bbox, mask = load_image_gt(ds, config, 0,
                                                use_mini_mask=True)
    assert mask.shape == (28, 28, 3) and mask.dtype == bool
    # A full rectangle fills its whole mini mask.
    assert mask.all()


def test_load_image_gt_horizontal_flip_moves_masks():
    A = pytest.importorskip("albumentations")
    config = make_tiny_config()
    ds = RectDataset([2])
    image0, _, ids0, bbox0, mask0 = load_image_gt(ds, config, 0)
    flip = A.Compose([A.HorizontalFlip(p=1.0)])
    image1, _, ids1, bbox1, mask1 = load_image_gt(ds, config, 0,
                                                  augmentation=flip)
    np.testing.assert_array_equal(image1, image0[:, ::-1])
    np.testing.assert_array_equal(mask1, mask0[:, ::-1])
    np.testing.assert_array_equal(bbox1[:, [1, 3]], 128 - bbox0[:, [3, 1]])
    np.testing.assert_array_equal(ids1, ids0)


def test_pixel_transform_leaves_masks_alone():
    A = pytest.importorskip("albumentations")
    config = make_tiny_config()
    ds = RectDataset([2])
    _, _, _, bbox0, mask0 = load_image_gt(ds, config, 0)
    aug = A.Compose([A.InvertImg(p=1.0)])
    image1, _, _, bbox1, mask1 = load_image_gt(ds, config, 0, augmentation=aug)
    np.testing.assert_array_equal(mask1, mask0)
    np.testing.assert_array_equal(bbox1, bbox0)


def test_refused_unsafe_transform_names_it():
    A = pytest.importorskip("albumentations")
    config = make_tiny_config()
    ds = RectDataset([2])
    aug = A.Compose([A.HorizontalFlip(p=0.5), A.LongestMaxSize(max_size=64)])
    with pytest.raises(ValueError, match="LongestMaxSize"):
        load_image_gt(ds, config, 0, augmentation=aug)
    with pytest.raises(ValueError, match="Normalize"):
        make_tf_dataset(ds, config, augmentation=A.Normalize())
    with pytest.raises(ValueError, match="RandomCrop"):
        load_image_gt(ds, config, 0, augmentation=A.RandomCrop(64, 64))


def test_vanished_instances_dropped():
    A = pytest.importorskip("albumentations")
    config = make_tiny_config()
    ds = RectDataset([2])
    # Shift everything far left: the rectangles (x < 20) leave the image.
    aug = A.Affine(translate_px={"x": -100, "y": 0}, p=1.0)
    _, _, ids, bbox, mask = load_image_gt(ds, config, 0, augmentation=aug)
    assert ids.shape == (0,) and bbox.shape == (0, 4) and mask.shape[-1] == 0


def test_build_sample_fixed_shapes_and_truncation(caplog):
    config = make_tiny_config(MAX_GT_INSTANCES=4)
    ds = RectDataset([7])
    anchors = training_anchors(config)
    with caplog.at_level(logging.INFO, logger="mrcnn"):
        sample = build_sample(ds, config, 0, anchors)
    assert "MAX_GT_INSTANCES" in caplog.text
    for value, spec in zip(sample, sample_signature(config)):
        assert value.dtype == spec.dtype.as_numpy_dtype
        assert list(value.shape) == spec.shape.as_list()
    assert np.count_nonzero(sample[4]) == 4
    assert sample[2].shape == (anchors.shape[0], 1)


def test_data_generator_skips_empty_and_batches(caplog):
    config = make_tiny_config()
    ds = RectDataset([0, 2, 3])
    gen = data_generator(ds, config, shuffle=False, batch_size=2)
    with caplog.at_level(logging.INFO, logger="mrcnn"):
        inputs, outputs = next(gen)
    assert "no instances" in caplog.text
    assert len(inputs) == 7 and outputs == []
    assert inputs[0].shape == (2, 128, 128, 3)
    # Images 1 and 2, in order (image 0 skipped).
    np.testing.assert_array_equal(inputs[1][:, 0], [1, 2])
    assert inputs[6].shape == (2, 28, 28, config.MAX_GT_INSTANCES)
    gen = data_generator(ds, config, shuffle=False, batch_size=2,
                         random_rois=40, detection_targets=True)
    inputs, outputs = next(gen)
    assert len(inputs) == 9 and inputs[7].shape == (2, 40, 4)
    assert inputs[8].shape == (2, config.TRAIN_ROIS_PER_IMAGE, 4)
    assert outputs[0].shape == (2, config.TRAIN_ROIS_PER_IMAGE, 1)
    assert outputs[2].shape == (2, config.TRAIN_ROIS_PER_IMAGE, 28, 28, 4)


def test_no_augmentation_sources():
    A = pytest.importorskip("albumentations")
    config = make_tiny_config()
    ds = RectDataset([2], source="plain")
    flip = A.HorizontalFlip(p=1.0)
    plain = next(data_generator(ds, config, shuffle=False))[0]
    kept = next(data_generator(ds, config, shuffle=False, augmentation=flip,
                               no_augmentation_sources=["plain"]))[0]
    flipped = next(data_generator(ds, config, shuffle=False,
                                  augmentation=flip))[0]
    np.testing.assert_array_equal(kept[0], plain[0])
    np.testing.assert_array_equal(flipped[0], plain[0][:, :, ::-1])


def test_tf_dataset_fixed_shapes_and_reshuffle():
    import tensorflow as tf
    config = make_tiny_config(IMAGES_PER_GPU=2)
    ds = RectDataset([1, 2, 0, 3, 1, 2])
    monitor = pipeline.DataWaitMonitor()
    data = make_tf_dataset(ds, config, monitor=monitor, seed=3)
    for spec, elem in zip(sample_signature(config), data.element_spec):
        assert elem.shape.as_list() == [2] + spec.shape.as_list()
        assert elem.dtype == spec.dtype
    it = iter(data)
    seen = []
    for _ in range(10):   # 5 non-empty images per pass -> 4 passes
        batch = next(it)
        seen.extend(batch[1][:, 0].numpy().astype(int).tolist())
    assert 2 not in seen                          # empty image skipped
    assert set(seen) == {0, 1, 3, 4, 5}
    passes = [tuple(seen[i:i + 5]) for i in range(0, 20, 5)]
    assert len(set(passes)) > 1                   # a new order every pass
    assert len(monitor._pulls) >= 1               # batches were stamped


def test_tf_dataset_random_rois_without_rpn_rois():
    """USE_RPN_ROIS = False: an 8th element, input_roi, of random pixel RoIs
    inside the image, 90% of them near a gt box (inside the box grown by its
    own height / width on each side, Matterport's random_rois)."""
    config = make_tiny_config(IMAGES_PER_GPU=2, USE_RPN_ROIS=False,
                              POST_NMS_ROIS_TRAINING=40)
    ds = RectDataset([2, 3, 1])
    signature = sample_signature(config)
    assert len(signature) == 8
    assert signature[7].shape.as_list() == [40, 4]
    data = make_tf_dataset(ds, config, seed=1)
    assert len(data.element_spec) == 8
    batch = next(iter(data))
    rois = batch[7].numpy()
    assert rois.shape == (2, 40, 4) and rois.dtype == np.int32
    h, w = config.IMAGE_SHAPE[:2]
    assert np.all(rois[..., 0] < rois[..., 2])       # no empty boxes
    assert np.all(rois[..., 1] < rois[..., 3])
    assert rois.min() >= 0 and rois[..., 2].max() <= h and \
        rois[..., 3].max() <= w
    for b in range(2):
        count = int(np.count_nonzero(batch[4][b].numpy()))
        gt = batch[5][b].numpy()[:count]
        gh, gw = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
        grown = np.stack([gt[:, 0] - gh, gt[:, 1] - gw, gt[:, 2] + gh,
                          gt[:, 3] + gw], axis=1)          # [G, 4]
        r = rois[b][:, np.newaxis]                          # [R, 1, 4]
        near = np.all(r[..., :2] >= grown[:, :2], axis=-1) & \
            np.all(r[..., 2:] <= grown[:, 2:], axis=-1)      # [R, G]
        assert np.mean(near.any(axis=1)) >= 0.85, (rois[b], gt)
