"""mrcnn/app/results.py: RLE records from masks held in their boxes equal
those from full-size masks."""
import numpy as np
from pycocotools import mask as mask_utils

from mrcnn.app import results
from mrcnn.core.masks import BoxMasks


def test_result_to_json_of_box_masks_is_that_of_full_masks():
    rng = np.random.default_rng(0)
    height, width, n = 57, 83, 9
    y1, x1 = rng.integers(-3, height - 3, n), rng.integers(-3, width - 3, n)
    boxes = np.stack([y1, x1, y1 + rng.integers(2, height, n),
                      x1 + rng.integers(2, width, n)], 1)
    boxes[0] = [0, 0, height, width]       # runs across columns
    small = rng.uniform(0, 1, (n, 28, 28)).astype(np.float32)
    small[1] = 0.0                          # an empty mask
    held = BoxMasks(small, boxes, (height, width, 3))
    result = {"rois": boxes.astype(np.int32),
              "class_ids": rng.integers(1, 3, n).astype(np.int32),
              "scores": rng.uniform(0, 1, n).astype(np.float32),
              "masks": held}
    names = ["BG", "cat", "dog"]
    boxed = results.result_to_json(result, names)
    full = results.result_to_json(dict(result, masks=held.to_dense()), names)
    assert boxed == full and len(boxed) == n
    for record, i in zip(boxed, range(n)):
        rle = dict(record["mask"], counts=record["mask"]["counts"].encode())
        np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool),
                                      held.mask(i))
    assert boxed[1]["mask"]["counts"] == mask_utils.encode(
        np.zeros((height, width), np.uint8, order="F"))["counts"].decode()
