"""Helpers of the annotation-format tests: reference datasets from
../shared/data, writing a few of their images in a format, and comparing
what a reader gives back with the reference, instance by instance."""
import itertools
import os

import cv2
import numpy as np

from conftest import shared_path
from mrcnn.app import datasets
from mrcnn.data import formats


def reference(name, subset):
    """balloon (VIA 1.x) or coco_tiny (COCO), prepared."""
    return datasets.load_dataset(shared_path(name), subset)


def first_records(dataset, n):
    return itertools.islice(formats.records_from_dataset(dataset), n)


def iou(a, b):
    union = np.logical_or(a, b).sum()
    return np.logical_and(a, b).sum() / union if union else 1.0


def assert_same(ref, got, n_images, min_iou=0.98, exact=False):
    """Same classes, same images (by file name), per image the same class
    ids in the same order and each mask with IoU >= min_iou (or equal)."""
    assert got.class_names == ref.class_names
    assert got.num_images == n_images, got.skipped
    by_name = {os.path.basename(ref.image_info[i]["path"]): i
               for i in ref.image_ids}
    worst = 1.0
    for j in got.image_ids:
        i = by_name[os.path.basename(got.image_info[j]["path"])]
        m1, c1 = ref.load_mask(i)
        m2, c2 = got.load_mask(j)
        assert m1.shape == m2.shape
        np.testing.assert_array_equal(c1, c2)
        for k in range(m1.shape[2]):
            if exact:
                np.testing.assert_array_equal(m1[:, :, k], m2[:, :, k])
            worst = min(worst, iou(m1[:, :, k], m2[:, :, k]))
    assert worst >= min_iou, worst
    return worst


def write_image(path, height=48, width=64, value=90):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(value)
    cv2.imwrite(path, rng.integers(0, 255, (height, width, 3), np.uint8))
    return path


def reasons(dataset):
    return [r for _, r in dataset.skipped]


def synthetic_records(tmp_path, n=3, height=48, width=64):
    """Records of n images with 2 rectangles each (classes 1, 2), one of
    them in two parts, one with a hole; no overlaps."""
    out = []
    for i in range(n):
        path = write_image(str(tmp_path / "src" / "im{}.png".format(i)),
                           height, width, value=i)
        a = np.zeros((height, width), bool)
        a[4:20, 5:25] = True
        a[10:14, 12:16] = False  # a hole
        b = np.zeros((height, width), bool)
        b[30:40, 5:15] = True
        b[30:44, 40:60 - i] = True  # a second part
        out.append({"path": path, "file_name": os.path.basename(path),
                    "id": "im{}".format(i), "height": height, "width": width,
                    "instances": lambda a=a, b=b: [
                        {"mask": a, "class_id": 1, "score": None,
                         "crowd": False},
                        {"mask": b, "class_id": 2, "score": None,
                         "crowd": False}],
                    "masks": (a, b)})
    return out
